//! The crates can be published: `cargo package` packages every publishable
//! crate of the workspace (every path dependency with a version), and the
//! packages, unpacked side by side, compile together from their own files
//! alone (no file outside a package: sources, included files and build
//! scripts, which `cargo check` runs). Each crate is checked once, as a
//! user's build takes it from crates.io, where `cargo publish --dry-run`
//! would verify each package apart and compile the engine three times; a
//! check rather than a build, since code generation proves nothing more
//! about a package's files and would take minutes of CI.

use std::path::Path;
use std::process::Command;

use bpfcompat_e2e::mentions;

const CRATES: &[&str] = &[
    "bpfcompat-test",
    "bpfcompat",
    "bpfcompat-engine",
    "bpfcompat-validator",
    "cargo-bpfcompat",
];

#[test]
fn every_crate_packages_and_builds_from_its_package() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("target");
    let out = Command::new(&cargo)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "package",
            "--workspace",
            "--exclude",
            "bpfcompat-e2e",
            "--no-verify",
            "--allow-dirty",
        ])
        .output()
        .expect("cargo runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The packages side by side, as one workspace whose path patches stand
    // for crates.io: each builds from what its package holds.
    let unpacked = work.path().join("unpacked");
    let mut members = Vec::new();
    for krate in CRATES {
        mentions(&err, &[&format!("Packaging {krate} v")]);
        let file = std::fs::read_dir(target.join("package"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.ends_with(".crate")
                    && name
                        .strip_prefix(&format!("{krate}-"))
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            })
            .unwrap_or_else(|| panic!("no package of {krate}"));
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap());
        tar::Archive::new(gz).unpack(&unpacked).unwrap();
        let dir = file.file_stem().unwrap().to_string_lossy().into_owned();
        members.push((krate, dir));
    }
    let list = members
        .iter()
        .map(|(_, d)| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let patches: String = members
        .iter()
        .map(|(k, d)| format!("{k} = {{ path = {d:?} }}\n"))
        .collect();
    std::fs::write(
        unpacked.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{list}]\n\n[patch.crates-io]\n{patches}"
        ),
    )
    .unwrap();
    // The dependencies the repository tests with, not newer ones.
    std::fs::copy(root.join("Cargo.lock"), unpacked.join("Cargo.lock")).unwrap();
    let out = Command::new(&cargo)
        .current_dir(&unpacked)
        .env("CARGO_TARGET_DIR", &target)
        .args(["check", "--workspace"])
        .output()
        .expect("cargo runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (krate, dir) in &members {
        // Built from the unpacked package, not from the repository.
        // (A proc-macro crate is compiled even by a check.)
        assert!(
            err.contains(&format!("Checking {krate} v"))
                || err.contains(&format!("Compiling {krate} v")),
            "{krate}: {err}"
        );
        assert!(err.contains(&format!("unpacked/{dir})")), "{krate}: {err}");
    }
}
