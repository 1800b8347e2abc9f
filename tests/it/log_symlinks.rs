//! A log path that is a symlink switched between files and back (`app.log` -> a.log -> b.log ->
//! a.log, as a deploy switching releases does), through the real binary and across a restart:
//! a file read before continues where it was, never from byte 0, also when the exporter was
//! killed after it closed that file.

use crate::support;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use support::exporter::Exporter;

const TICKS: &str = "app_ticks_total";
/// Long enough for the exporter to close a file the link no longer points at (rotate_wait 2s,
/// longer than the 1 s between saves: the last save before the close still has the file open).
const CLOSED: Duration = Duration::from_millis(3500);

fn append(path: &Path, n: usize) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for _ in 0..n {
        writeln!(f, "tick").unwrap();
    }
}

fn retarget(link: &Path, target: &Path) {
    let tmp = link.with_extension("new-link");
    symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

fn ticks(exporter: &Exporter, want: f64, what: &str) {
    let m = exporter.wait_for(&format!("{what}: {TICKS} {want}"), |m| m.get(TICKS) >= Some(want));
    // A second look: a file read again from 0 shows up a moment later.
    std::thread::sleep(Duration::from_millis(400));
    let again = exporter.metrics();
    assert_eq!((m.get(TICKS), again.get(TICKS)), (Some(want), Some(want)), "{what}");
}

#[test]
fn a_symlink_pointed_back_at_a_file_continues_it_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Releases in directories of their own, as deploys lay them out: a restart cannot find a
    // file next to the link, only through what the checkpoint remembers.
    let (link, a, b) = (d.join("app.log"), d.join("releases/a/app.log"), d.join("releases/b/app.log"));
    std::fs::create_dir_all(a.parent().unwrap()).unwrap();
    std::fs::create_dir_all(b.parent().unwrap()).unwrap();
    append(&a, 3);
    append(&b, 0);
    symlink(&a, &link).unwrap();
    let port = support::free_port();
    let spec = d.join("spec.yaml");
    let body = support::ticks_spec(&link.display().to_string()).replace("  app:\n", "  app:\n    rotate_wait: 2s\n");
    std::fs::write(&spec, format!("listen: 127.0.0.1:{port}\nstate_dir: {}/state\n{body}", d.display())).unwrap();
    let mut exporter = Exporter::serve(&spec, port).start();
    ticks(&exporter, 3.0, "a.log read");

    retarget(&link, &b);
    append(&b, 2);
    ticks(&exporter, 5.0, "b.log read");
    std::thread::sleep(CLOSED);
    retarget(&link, &a);
    append(&a, 1);
    ticks(&exporter, 6.0, "back to a.log: only its new line");

    retarget(&link, &b);
    append(&b, 1);
    ticks(&exporter, 7.0, "b.log again");
    std::thread::sleep(CLOSED);
    exporter.restart();
    ticks(&exporter, 7.0, "restored");
    retarget(&link, &a);
    append(&a, 1);
    ticks(&exporter, 8.0, "back to a.log after a restart");
}
