//! The crates can be published: `cargo publish --dry-run` packages every
//! publishable crate of the workspace and builds each from its package
//! alone (no file outside it, every path dependency with a version).

use std::path::Path;
use std::process::Command;

use bpfcompat_e2e::mentions;

#[test]
fn every_crate_packages_and_builds_from_its_package() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "publish",
            "--dry-run",
            "--workspace",
            "--exclude",
            "bpfcompat-e2e",
            "--allow-dirty",
        ])
        .output()
        .expect("cargo runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for krate in [
        "bpfcompat-test",
        "bpfcompat",
        "bpfcompat-validator",
        "cargo-bpfcompat",
    ] {
        mentions(
            &err,
            &[
                &format!("Packaging {krate} v"),
                &format!("Verifying {krate} v"),
            ],
        );
    }
    mentions(&err, &["aborting upload due to dry run"]);
}
