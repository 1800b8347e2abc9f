//! `integration_exporter_log_files{log}`: the files of a log source the exporter has open now,
//! through the real binary. A glob that matches nothing is 0 (the source-health alert fires on
//! it), an empty file is 1 (present and readable, only quiet), a file the exporter's user cannot
//! open is not counted, and a rotation's gap ends when the new file appears.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::exporter::Exporter;

const SERIES: &str = "integration_exporter_log_files{log=\"app\"}";

fn files_become(exporter: &Exporter, want: f64, what: &str) {
    exporter.wait_for(&format!("{what}: {SERIES} {want}"), |m| m.get(SERIES) == Some(want));
}

#[test]
fn files_gauge_follows_what_the_paths_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = support::free_port();
    let spec = d.join("spec.yaml");
    let paths = format!("\"{}/app-*.log\"", d.display());
    std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\n{}", support::ticks_spec(&paths))).unwrap();
    let exporter = Exporter::serve(&spec, port).start();

    // Nothing matches the glob yet: exported as 0, not left out.
    files_become(&exporter, 0.0, "no file");
    // An empty file is there to read: 1, even before a line is written.
    std::fs::write(d.join("app-1.log"), "").unwrap();
    files_become(&exporter, 1.0, "empty file");
    std::fs::write(d.join("app-2.log"), "tick\n").unwrap();
    files_become(&exporter, 2.0, "second file");

    // A file the exporter cannot open does not count (root reads everything: skip that part).
    let locked = d.join("app-3.log");
    std::fs::write(&locked, "tick\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_err() {
        std::thread::sleep(Duration::from_millis(500));
        files_become(&exporter, 2.0, "unreadable file");
    }
    std::fs::remove_file(&locked).unwrap();

    // Every file gone (deleted, or rotated away with no new file): back to 0.
    std::fs::remove_file(d.join("app-1.log")).unwrap();
    std::fs::remove_file(d.join("app-2.log")).unwrap();
    files_become(&exporter, 0.0, "files removed");
    std::fs::write(d.join("app-1.log"), "tick\n").unwrap();
    files_become(&exporter, 1.0, "file back");
}

/// A restart resumes the files from the checkpoint: they count at once, also when nothing new
/// was written meanwhile (a quiet application) and when the file is empty. Counting them only at
/// their next line made every quiet log "unreadable" after a restart, and paged 5 minutes later.
#[test]
fn files_resumed_from_the_checkpoint_count_without_a_new_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = support::free_port();
    let spec = d.join("spec.yaml");
    let paths = format!("\"{}/app-*.log\"", d.display());
    let text = format!("listen: 127.0.0.1:{port}\nstate_dir: {}/state\n{}", d.display(), support::ticks_spec(&paths));
    std::fs::write(&spec, text).unwrap();
    std::fs::write(d.join("app-1.log"), "tick\n").unwrap();
    std::fs::write(d.join("app-2.log"), "").unwrap();
    let mut exporter = Exporter::serve(&spec, port).start();
    files_become(&exporter, 2.0, "first start");
    // The checkpoint (saved about once a second) holds both files before the restart.
    let checkpoint = d.join("state/app.checkpoint.json");
    let saved = || std::fs::read_to_string(&checkpoint).unwrap_or_default();
    support::wait::until("a checkpoint of both files", Duration::from_secs(10), saved, |c| {
        (c.contains("app-1.log") && c.contains("app-2.log")).then_some(())
    });
    exporter.restart();
    files_become(&exporter, 2.0, "after a restart, no line written");
}
