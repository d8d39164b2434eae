//! Stamps the binary with the git commit it was built from (`switchboard --version`,
//! `switchboard_build_info` in `/metrics`). A build outside a git checkout (a source
//! tarball, a Docker context without `.git`) may set `SWITCHBOARD_COMMIT` itself.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_COMMIT");
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if std::env::var_os("SWITCHBOARD_COMMIT").is_some() {
        return;
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    println!("cargo:rustc-env=SWITCHBOARD_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
