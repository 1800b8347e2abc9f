//! What `build.rs` asks cargo to watch. Cargo reruns a build script, and so recompiles the
//! crate, on every build for a watched path that does not exist: a checkout that never packed its
//! refs (no `.git/packed-refs`) rebuilt everything each time.

use std::path::Path;

#[test]
fn the_build_script_watches_only_paths_that_exist() {
    let output = Path::new(env!("OUT_DIR")).with_file_name("output");
    let text = std::fs::read_to_string(&output).unwrap_or_else(|e| panic!("{}: {e}", output.display()));
    let watched: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("cargo:rerun-if-changed=")).collect();
    assert!(watched.contains(&"build.rs"), "{text}");
    for path in watched {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        assert!(path.exists(), "build.rs watches {}, which does not exist: every build reruns it", path.display());
    }
}
