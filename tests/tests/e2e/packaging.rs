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
    // Cargo unpacks the packages it verifies into its home, keyed by the
    // path of their temporary registry and their version: a second run from
    // the same target dir would build the first run's sources. A fresh
    // target dir each run, and its unpacked sources removed afterwards.
    let target = tempfile::tempdir().unwrap();
    let unpacked = cargo_home().join("registry/src");
    let before = local_registries(&unpacked);
    let out = Command::new(cargo)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", target.path())
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
    for dir in local_registries(&unpacked).difference(&before) {
        let _ = std::fs::remove_dir_all(unpacked.join(dir));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for krate in [
        "bpfcompat-test",
        "bpfcompat",
        "bpfcompat-engine",
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

fn cargo_home() -> std::path::PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo")
        })
}

/// The unpacked sources of local registries (named `-<hash>`).
fn local_registries(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('-'))
        .collect()
}
