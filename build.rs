//! Stamps the binary with what `--version` and `integration_exporter_build_info` report: the git
//! revision and branch, the build date and the compiler. Each falls back to "unknown" (no git, or
//! a source tree without `.git`, as in the container build); `INTEGRATION_EXPORTER_REVISION` and
//! `INTEGRATION_EXPORTER_BRANCH` override git (the Dockerfile passes them as build arguments), and
//! `SOURCE_DATE_EPOCH` fixes the date for reproducible builds.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["INTEGRATION_EXPORTER_REVISION", "INTEGRATION_EXPORTER_BRANCH", "SOURCE_DATE_EPOCH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // Rerun when a commit or checkout moves HEAD, not on every edit: a new date on each run would
    // rebuild the crate for nothing.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={}", Path::new(&dir).join("HEAD").display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(common) = git(&["rev-parse", "--git-common-dir"])
        {
            // Cargo rebuilds every time for a watched path that does not exist, so only what
            // exists is watched: the branch's loose ref, else the folder it will appear in (a
            // branch without commits, or one only in `packed-refs`), and `packed-refs` once written.
            let loose = Path::new(&common).join(&reference);
            let packed = Path::new(&common).join("packed-refs");
            if loose.exists() {
                println!("cargo:rerun-if-changed={}", loose.display());
            } else if let Some(folder) = loose.parent().filter(|f| f.exists()) {
                println!("cargo:rerun-if-changed={}", folder.display());
            }
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    let revision = env_or("INTEGRATION_EXPORTER_REVISION", || git(&["rev-parse", "HEAD"]));
    let branch = env_or("INTEGRATION_EXPORTER_BRANCH", || git(&["rev-parse", "--abbrev-ref", "HEAD"]));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = run(Command::new(rustc).arg("-V")).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=INTEGRATION_EXPORTER_REVISION={revision}");
    println!("cargo:rustc-env=INTEGRATION_EXPORTER_BRANCH={branch}");
    println!("cargo:rustc-env=INTEGRATION_EXPORTER_BUILD_DATE={}", build_date());
    println!("cargo:rustc-env=INTEGRATION_EXPORTER_RUSTC={rustc}");
    let target = |var: &str| std::env::var(var).unwrap_or_else(|_| "unknown".into());
    println!(
        "cargo:rustc-env=INTEGRATION_EXPORTER_PLATFORM={}/{}",
        target("CARGO_CFG_TARGET_OS"),
        target("CARGO_CFG_TARGET_ARCH")
    );
}

fn env_or(var: &str, otherwise: impl FnOnce() -> Option<String>) -> String {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty()).or_else(otherwise).unwrap_or_else(|| "unknown".into())
}

fn git(args: &[&str]) -> Option<String> {
    run(Command::new("git").args(args))
}

/// Trimmed stdout of a command that succeeded, `None` otherwise.
fn run(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// RFC 3339 UTC, from `SOURCE_DATE_EPOCH` when set. Civil date from days since the epoch
/// (Howard Hinnant's algorithm), so the build script needs no dependency.
fn build_date() -> String {
    let secs =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
        });
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}
