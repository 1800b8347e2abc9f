//! `params`: every built-in pack's parameters with their kind, default and doc, read from the
//! same pack files that resolve them, so what the listing says is what the spec accepts.

use serde::Serialize;

use crate::spec::pack::{self, Pack, ParamKind};

/// One pack's parameters, in the order its file declares them (a table before its columns).
#[derive(Debug, Serialize)]
pub struct PackParams {
    pub pack: String,
    pub title: String,
    pub params: Vec<Param>,
}

#[derive(Debug, Serialize)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: crate::spec::config::ParamValue,
    pub doc: String,
}

/// The parameters of the named packs (every built-in pack when `only` is empty). An unknown name
/// is an error naming the known ones.
pub fn list(only: &[String]) -> Result<Vec<PackParams>, String> {
    let known: Vec<&str> = pack::BUILTIN.iter().map(|(n, _)| *n).collect();
    if let Some(unknown) = only.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(format!("unknown pack `{unknown}` (built-in packs: {})", known.join(", ")));
    }
    let mut out = Vec::new();
    for (name, text) in pack::BUILTIN {
        if !only.is_empty() && !only.iter().any(|n| n == name) {
            continue;
        }
        let def: Pack = match crate::spec::builtin_pack(name) {
            Some(Ok(def)) => def,
            Some(Err(e)) => return Err(e.to_string()),
            None => continue,
        };
        let order = declared_order(text);
        let mut names: Vec<&String> = def.params.keys().collect();
        names.sort_by_key(|n| order.iter().position(|o| o == *n).unwrap_or(usize::MAX));
        let params = names
            .into_iter()
            .map(|n| {
                let p = &def.params[n];
                Param { name: n.clone(), kind: p.kind, default: p.default.clone(), doc: p.doc.clone() }
            })
            .collect();
        out.push(PackParams { pack: def.name.clone(), title: def.title.clone(), params });
    }
    Ok(out)
}

/// The names under `params:` in the order written. A pack's parameters are a map, which keeps
/// no order; the file's order groups a table with its columns, which is how a user fits them.
fn declared_order(text: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Order {
        #[serde(default, deserialize_with = "keys_in_order")]
        params: Vec<String>,
    }
    fn keys_in_order<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(key);
                }
                Ok(keys)
            }
        }
        d.deserialize_map(Keys)
    }
    serde_saphyr::from_str::<Order>(text).map(|o| o.params).unwrap_or_default()
}

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Identifier => "identifier",
        ParamKind::Interval => "interval",
        ParamKind::Text => "text",
        ParamKind::Number => "number",
        ParamKind::Path => "path",
    }
}

/// What a kind's value is, for the listing's legend.
const KINDS: [(&str, &str); 5] = [
    ("identifier", "a table or column name, `schema.name` allowed; checked by `check --database`"),
    ("interval", "a duration such as `10m`"),
    ("text", "a string, taken as written"),
    ("number", "a number"),
    ("path", "a file path or glob"),
];

/// For people: per pack, each parameter with its kind and default on one line, its doc below.
pub fn text(packs: &[PackParams]) -> String {
    let mut out = String::from("# Set a parameter in the spec: packs: {PACK: {params: {NAME: VALUE}}}\n# Kinds: ");
    let kinds: Vec<String> = KINDS.iter().map(|(k, what)| format!("{k} ({what})")).collect();
    out.push_str(&kinds.join("; "));
    out.push('\n');
    for p in packs {
        out.push_str(&format!("\n{} ({})\n", p.pack, p.title));
        let width = p.params.iter().map(|param| param.name.len()).max().unwrap_or(0);
        for param in &p.params {
            let default = param.default.to_string();
            let default = if default.is_empty() { "\"\"".to_string() } else { default };
            let kind = kind_name(param.kind);
            out.push_str(&format!("  {:<width$}  {kind}, default {default}\n", param.name));
            out.push_str(&format!("      {}\n", param.doc));
        }
    }
    out
}

/// For tools: one JSON document, a list of packs.
pub fn json(packs: &[PackParams]) -> String {
    serde_json::to_string_pretty(packs).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_lists_every_parameter_in_file_order() {
        let packs = list(&[]).unwrap();
        assert_eq!(packs.len(), pack::BUILTIN.len());
        for p in &packs {
            let def = crate::spec::builtin_pack(&p.pack).unwrap().unwrap();
            assert_eq!(p.params.len(), def.params.len(), "{}", p.pack);
        }
        let token = packs.iter().find(|p| p.pack == "token_refresh").unwrap();
        assert_eq!(token.params[0].name, "tokens_table");
        assert_eq!(token.params[1].name, "token_expires_at");
        assert!(list(&["nope".into()]).unwrap_err().starts_with("unknown pack `nope`"));
    }
}
