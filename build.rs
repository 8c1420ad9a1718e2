//! Records the commit mldeploy is built from, for `mldeploy --version`: `git rev-parse` when the
//! source is a git checkout, else "unknown" (a crates.io package has no history).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MLDEPLOY_COMMIT={commit}");
    // A new commit (or a checkout of another) rebuilds with its id.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
