//! The status page as one self-contained HTML document: styles and the refresh script inline,
//! no font, image or script from elsewhere, so it works offline and behind any proxy. It reads
//! whole without JavaScript (a table per pack, verdicts in words as well as colours); with it,
//! the page fetches itself again every [`REFRESH_SECONDS`] and swaps its content in place.

use std::fmt::Write;

use super::{PackStatus, Row, Status};
use crate::verdict::{Level, show};

/// How often the page refreshes itself when JavaScript runs.
pub const REFRESH_SECONDS: u64 = 15;

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped (safe in content and quoted attributes).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn clock(at: f64) -> (String, String) {
    match chrono::DateTime::from_timestamp(at.floor() as i64, 0) {
        // RFC 3339's `Z` for UTC, as `/status.json` and the logs write times.
        Some(t) => (t.to_rfc3339(), t.format("%Y-%m-%d %H:%M:%SZ").to_string()),
        None => (String::new(), format!("{at}")),
    }
}

/// `12s ago`, `3m ago`, `2h 5m ago`.
fn ago(now: f64, at: f64) -> String {
    let secs = (now - at).max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h {}m ago", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d ago", secs / 86_400),
    }
}

const STYLE: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--row:#f6f8fa;
--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#7d4e00;--warn-bg:#fff1c2;--crit:#a40e26;--crit-bg:#ffe3e6;--unk:#6639ba;--unk-bg:#efe5ff;--link:#0550ae}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;--line:#30363d;--row:#161b22;
--ok:#56d364;--ok-bg:#0f2d1a;--warn:#e3b341;--warn-bg:#2e2105;--crit:#ff7b72;--crit-bg:#3a0d10;--unk:#d2a8ff;--unk-bg:#271a44;--link:#79c0ff}}
*{box-sizing:border-box}
body{margin:0;padding:1rem 1.25rem 2rem;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--link)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;border-bottom:1px solid var(--line);padding-bottom:.5rem}
h1{font-size:1.3rem;margin:0}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem;display:flex;gap:.6rem;align-items:center}
h2 small{font-weight:normal;color:var(--muted)}
nav a{margin-right:.8rem}
.summary{margin:.25rem 0;color:var(--muted)}
.summary .badge{margin-right:.3rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid var(--line)}
thead th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tbody tr:nth-child(even){background:var(--row)}
tbody th{font-weight:600}
.sub{font-weight:normal;color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}
.why{font-weight:normal;font-size:.85rem}
.next{font-weight:normal;font-size:.85rem;margin-top:.2rem}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;border-radius:1rem;padding:.05rem .55rem;font-size:.8rem;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)} .badge.ok{background:var(--ok-bg)}
.warning{color:var(--warn)} .badge.warning{background:var(--warn-bg)}
.critical{color:var(--crit)} .badge.critical{background:var(--crit-bg)}
.unknown{color:var(--unk)} .badge.unknown{background:var(--unk-bg)}
tr.row-critical td:first-child{box-shadow:inset 4px 0 var(--crit)}tr.row-warning td:first-child{box-shadow:inset 4px 0 var(--warn)}
tr.row-unknown td:first-child{box-shadow:inset 4px 0 var(--unk)}
td.src{min-width:11rem}td.rb{min-width:9rem}td.thr{max-width:16rem;overflow-wrap:anywhere}tbody th{max-width:30rem}
.spark{color:var(--fg);overflow:visible}.spark polyline{fill:none;stroke:currentColor;stroke-width:1.4}
.spark .thr{stroke:var(--crit);stroke-width:1;stroke-dasharray:3 2}.spark circle{fill:currentColor}
.none{color:var(--muted);font-size:.85rem}
.live-only{display:none}.live .live-only{display:inline}
.stale{color:var(--crit)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
"#;

/// Refetches the page and swaps `#status` and `#summary` in; on failure says the data is stale.
const SCRIPT: &str = r#"
(function(){
  var root=document.documentElement; root.className+=" live";
  function again(){
    fetch(location.pathname,{cache:"no-store",credentials:"same-origin"}).then(function(r){
      if(!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function(html){
      var doc=new DOMParser().parseFromString(html,"text/html");
      ["summary","status"].forEach(function(id){
        var fresh=doc.getElementById(id), old=document.getElementById(id);
        if(fresh&&old) old.replaceWith(fresh);
      });
      document.title=doc.title;
      document.getElementById("stale").hidden=true;
      root.setAttribute("data-refreshes", String(Number(root.getAttribute("data-refreshes")||0)+1));
    }).catch(function(){
      document.getElementById("stale").hidden=false;
    }).then(function(){ setTimeout(again, EVERY); });
  }
  setTimeout(again, EVERY);
})();
"#;

/// The page for `status`; `telemetry_path` is linked beside the probes.
pub fn html(status: &Status, telemetry_path: &str) -> String {
    let (iso, human) = clock(status.at);
    let mut out = String::with_capacity(64 * 1024);
    let worst = status.verdict.as_str();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{worst} · integration-exporter</title><style>{STYLE}</style></head><body>\
<header><h1>integration-exporter</h1><nav aria-label=\"Endpoints\">\
<a href=\"{tp}\">{tp}</a><a href=\"/status.json\">/status.json</a><a href=\"/healthz\">/healthz</a><a href=\"/ready\">/ready</a></nav></header>",
        tp = esc(telemetry_path),
    );
    let _ = write!(out, "<div id=\"summary\" class=\"summary\" role=\"status\"><p>");
    for level in [Level::Critical, Level::Warning, Level::Unknown, Level::Ok] {
        let n = status.counts.get(level.as_str()).copied().unwrap_or(0);
        let _ = write!(out, "<span class=\"badge {0}\">{n} {0}</span>", level.as_str());
    }
    let _ = write!(
        out,
        " Read <time datetime=\"{iso}\">{human}</time>. Verdicts judge each alert's condition now, before its <code>for</code>.\
<span class=\"live-only\"> Refreshes every {REFRESH_SECONDS}s.</span>\
<span id=\"stale\" class=\"stale\" hidden> The last refresh failed; this is older data.</span></p></div>"
    );
    out.push_str("<main id=\"status\">");
    if status.packs.is_empty() {
        out.push_str("<p>No enabled signal.</p>");
    }
    for (i, pack) in status.packs.iter().enumerate() {
        section(&mut out, i, pack, status.at);
    }
    out.push_str("</main>");
    let _ = writeln!(
        out,
        "<script>{}</script></body></html>",
        SCRIPT.replace("EVERY", &(REFRESH_SECONDS * 1000).to_string())
    );
    out
}

fn section(out: &mut String, i: usize, pack: &PackStatus, now: f64) {
    let id = format!("pack-{i}");
    let runbook = pack.runbook.as_deref().map(|r| format!(" <small>{}</small>", esc(r))).unwrap_or_default();
    let _ = write!(
        out,
        "<section aria-labelledby=\"{id}\" data-pack=\"{}\"><h2 id=\"{id}\"><span class=\"badge {v}\">{v}</span> {}{runbook}</h2>",
        esc(pack.pack.as_deref().unwrap_or("")),
        esc(&pack.title),
        v = pack.verdict.as_str(),
    );
    let _ = write!(
        out,
        "<table><caption class=\"visually-hidden\">{} checks, worst first</caption><thead><tr>\
<th scope=\"col\">Verdict</th><th scope=\"col\">Check</th><th scope=\"col\">Value</th><th scope=\"col\">Threshold</th>\
<th scope=\"col\">Last hour</th><th scope=\"col\">Source</th><th scope=\"col\">Runbook</th></tr></thead><tbody>",
        esc(&pack.title)
    );
    for row in &pack.rows {
        row_html(out, row, now);
    }
    out.push_str("</tbody></table></section>");
}

fn row_html(out: &mut String, row: &Row, now: f64) {
    let f = &row.finding;
    let v = f.verdict.as_str();
    let alert = f.alert.as_deref().unwrap_or("");
    let _ = write!(
        out,
        "<tr class=\"row-{v}\" data-signal=\"{}\" data-alert=\"{}\" data-severity=\"{}\" data-verdict=\"{v}\">",
        esc(&f.signal),
        esc(alert),
        f.severity.map(|s| s.as_str()).unwrap_or("")
    );
    let _ = write!(out, "<td><span class=\"badge {v}\">{v}</span></td>");
    let _ = write!(
        out,
        "<th scope=\"row\">{}<div class=\"sub\">{}</div>",
        esc(&f.title),
        esc(if alert.is_empty() { &f.signal } else { alert })
    );
    if !f.why.is_empty() {
        let why = if f.series.is_empty() { f.why.clone() } else { format!("{} [{}]", f.why, f.series) };
        let _ = write!(out, "<div class=\"why\">{}</div>", esc(&why));
    }
    if let (Some(step), Level::Warning | Level::Critical) = (&f.step, f.verdict) {
        let _ = write!(out, "<div class=\"next\"><strong>Next:</strong> {}</div>", esc(step));
    }
    out.push_str("</th>");
    match f.value {
        Some(value) => {
            let reading = f
                .reading
                .as_ref()
                .map(|r| {
                    format!(
                        " data-series=\"{}\" data-reading=\"{}\"",
                        esc(&r.series),
                        crate::exposition::text::format_value(r.value)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"num\"><data value=\"{}\"{reading}>{}</data></td>",
                crate::exposition::text::format_value(value),
                esc(&f.value_text)
            );
        }
        None => out.push_str("<td class=\"num\">-</td>"),
    }
    let _ = write!(out, "<td class=\"thr\">{}</td>", esc(&f.threshold));
    let unit = row.unit;
    let points: Vec<(f64, f64)> = row.history.iter().map(|[t, v]| (*t, *v)).collect();
    let _ = write!(out, "<td>{}</td>", super::sparkline::svg(&points, now, row.threshold_value, &|v| show(unit, v)));
    let s = &row.source;
    let (class, state) = match s.ok {
        Some(true) if s.error_kind.is_none() => ("ok", "ok".to_string()),
        None => ("unknown", "not read yet".to_string()),
        _ => ("critical", format!("failing: {}", s.error_kind.as_deref().unwrap_or("error"))),
    };
    let last = match (s.last_success, s.files) {
        (Some(t), Some(_)) => format!("last line read {}", ago(now, t)),
        (Some(t), None) => format!("last success {}", ago(now, t)),
        (None, Some(1)) => "1 file open".into(),
        (None, Some(n)) => format!("{n} files open"),
        (None, None) => "no success yet".into(),
    };
    let _ = write!(
        out,
        "<td class=\"src\"><span class=\"{class}\">{} {}</span><div class=\"sub\">{} · {last}</div></td>",
        s.kind,
        esc(&state),
        esc(&s.name)
    );
    match &f.runbook_url {
        Some(url) => {
            let text = row.runbook_section.as_deref().unwrap_or("runbook");
            let _ = write!(out, "<td class=\"rb\"><a href=\"{}\">{}</a></td>", esc(url), esc(text));
        }
        None => out.push_str("<td>-</td>"),
    }
    out.push_str("</tr>");
}
