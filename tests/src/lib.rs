//! Helpers for the end-to-end tests: the compiled fixture objects (built by
//! `build.rs` with clang) and the workspace's binaries.

pub mod mirror;

use std::borrow::BorrowMut;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The compiled fixture `<name>.bpf.o`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("BPFCOMPAT_FIXTURES")).join(format!("{name}.bpf.o"))
}

/// The complexity fixture (`walk.bpf.o`) built with a loop of `iterations`
/// (100 or 10000): one program name, two lengths.
pub fn complexity_fixture(iterations: u32) -> PathBuf {
    PathBuf::from(env!("BPFCOMPAT_FIXTURES"))
        .join("complexity")
        .join(iterations.to_string())
        .join("walk.bpf.o")
}

/// A binary of the workspace, from the target directory this test runs in.
pub fn workspace_bin(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let bin = me
        .parent()
        .and_then(|d| d.parent())
        .expect("target layout")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` so the binaries are built",
        bin.display()
    );
    bin
}

/// `cargo-bpfcompat` with the given arguments.
pub fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(workspace_bin("cargo-bpfcompat"));
    // Tables are not wrapped, nor labels coloured, for whoever runs the tests.
    c.args(args)
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE");
    c
}

/// Arguments the tests give often.
pub trait Args {
    /// `--kernel K` for each kernel.
    fn kernels(&mut self, kernels: &[&str]) -> &mut Self;
    /// `--object F` for each named fixture.
    fn fixtures(&mut self, fixtures: &[&str]) -> &mut Self;
}

impl Args for Command {
    fn kernels(&mut self, kernels: &[&str]) -> &mut Self {
        for k in kernels {
            self.args(["--kernel", k]);
        }
        self
    }

    fn fixtures(&mut self, fixtures: &[&str]) -> &mut Self {
        for f in fixtures {
            self.arg("--object").arg(fixture(f));
        }
        self
    }
}

/// `cargo-bpfcompat test` on the named fixtures and kernels; add more
/// arguments to the command.
pub fn test_on(kernels: &[&str], fixtures: &[&str]) -> Command {
    let mut c = cli(&["test"]);
    c.kernels(kernels).fixtures(fixtures);
    c
}

/// `cargo bpfcompat <sub> --manifest-path M`, as cargo runs the subcommand.
pub fn in_workspace(sub: &str, manifest: &std::path::Path) -> Command {
    let mut c = cli(&["bpfcompat", sub, "--manifest-path"]);
    c.arg(manifest);
    c
}

/// Writes `text` as a `bpfcompat.toml` and adds `--config-file FILE` to `c`;
/// the returned directory must outlive the run.
pub fn with_config(c: &mut Command, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("bpfcompat.toml");
    std::fs::write(&file, text).expect("the configuration is written");
    c.arg("--config-file").arg(file);
    dir
}

/// Runs `c` with `--json FILE`: the output and the JSON report.
pub fn with_report(mut c: impl BorrowMut<Command>) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("report.json");
    c.borrow_mut().arg("--json").arg(&json);
    let out = run(c);
    let text = std::fs::read(&json).unwrap_or_else(|e| panic!("no JSON report ({e}): {out:?}"));
    (
        out,
        serde_json::from_slice(&text).expect("the report parses"),
    )
}

/// Runs `c` with the configuration `text` and `--json FILE`: the output
/// and the JSON report.
pub fn report_with_config(mut c: Command, text: &str) -> (Output, serde_json::Value) {
    let _config = with_config(&mut c, text);
    with_report(c)
}

/// `cargo-bpfcompat <args> --json FILE`: the output and the JSON report.
pub fn run_with_report(args: &[&str]) -> (Output, serde_json::Value) {
    with_report(cli(args))
}

/// Runs and returns the output, printing it for the test log.
pub fn run(mut c: impl BorrowMut<Command>) -> Output {
    let out = c.borrow_mut().output().expect("cargo-bpfcompat runs");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The example project (examples/), absolute.
pub fn examples() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .canonicalize()
        .unwrap()
}

/// Whether the tests run as root (the pre-load gate and some fault tests need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A copy of the example project (examples/) at `to`, with its path
/// dependency on bpfcompat made absolute so the copy builds anywhere.
pub fn copy_examples(to: &std::path::Path) {
    let from = examples();
    for f in ["Cargo.toml", "Cargo.lock", "bpfcompat.toml"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let status = Command::new("cp")
        .arg("-r")
        .arg(from.join("probes"))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = to.join("probes/Cargo.toml");
    let bpfcompat = from.join("../bpfcompat").canonicalize().unwrap();
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("../../bpfcompat", bpfcompat.to_str().unwrap())
        // Another version, so that the copy's artifacts in the shared target
        // directory never stand in for the original's (cargo hashes a path
        // package by its workspace-relative path, the same in both).
        .replace("version = \"0.1.0\"", "version = \"0.1.0-copy\"");
    std::fs::write(&manifest, text).unwrap();
}

/// Says that a test (or part of one) is skipped and why. It writes to the
/// stderr handle directly: libtest captures `eprintln!` of passing tests,
/// and a skip must show in CI logs.
/// True as root; otherwise says `SKIP <why>` and returns false.
pub fn root_or_skip(why: &str) -> bool {
    let root = is_root();
    if !root {
        skip(why);
    }
    root
}

pub fn skip(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {message}");
}

/// `always`, then those of `mirrored` whose archive has a mirror here (CI
/// has none), and whether any of the latter is among them.
pub fn plus_mirrored(
    always: &[&'static str],
    mirrored: &[&'static str],
) -> (Vec<&'static str>, bool) {
    let here = kernels_with_mirror(mirrored);
    let extra: Vec<&'static str> = mirrored
        .iter()
        .copied()
        .filter(|k| here.iter().any(|h| h == k))
        .collect();
    let any = !extra.is_empty();
    (always.iter().copied().chain(extra).collect(), any)
}

/// The profiles of the shipped matrix whose archive has a mirror here; the
/// others are named on stderr so a skipped kernel is never silent.
pub fn kernels_with_mirror(names: &[&str]) -> Vec<String> {
    let matrix = bpfcompat_engine::matrix::Matrix::load("default").expect("shipped matrix");
    let mirrors = bpfcompat_engine::kernel::Mirrors::discover();
    let mut out = Vec::new();
    for n in names {
        let pin = matrix.lock.get(n).expect("pinned");
        match mirrors.get(&pin.archive) {
            Ok(_) => out.push(n.to_string()),
            Err(e) => skip(&format!("{n}: {}", e.to_string().replace('\n', " "))),
        }
    }
    out
}

/// The default matrix's kernels this machine can fetch: the Debian ones
/// always, the Ubuntu ones when a mirror is configured (else skipped with
/// the hint).
pub fn default_kernels() -> Vec<String> {
    let mut kernels: Vec<String> = [
        "debian-11-5.10",
        "debian-12-6.1",
        "debian-13-6.12",
        "debian-sid",
    ]
    .map(String::from)
    .to_vec();
    kernels.extend(kernels_with_mirror(&[
        "ubuntu-16.04-4.15",
        "ubuntu-20.04-5.4",
        "ubuntu-22.04-5.15",
        "ubuntu-24.04-6.8",
    ]));
    kernels
}

/// Asserts that `text` contains every one of `needles`, naming the first
/// missing one.
#[track_caller]
pub fn mentions(text: &str, needles: &[&str]) {
    if let Some(missing) = needles.iter().find(|n| !text.contains(**n)) {
        panic!("expected {missing:?} in:\n{text}");
    }
}

/// Asserts that the string `key` of a JSON record (a cell, a finding), or
/// its lines where it is an array of them (a log tail), contains every one
/// of `needles`; on failure shows the whole record.
#[track_caller]
pub fn says(record: &serde_json::Value, key: &str, needles: &[&str]) {
    let text = match &record[key] {
        serde_json::Value::Array(lines) => {
            let lines: Vec<&str> = lines.iter().filter_map(|l| l.as_str()).collect();
            lines.join("\n")
        }
        v => v.as_str().unwrap_or_default().to_string(),
    };
    if let Some(missing) = needles.iter().find(|n| !text.contains(**n)) {
        panic!("expected {missing:?} in {key} of:\n{record:#}");
    }
}

/// The entry of the JSON array `value[list]` whose fields have the given
/// values (a cell, a kernel run, a program); on failure shows the whole value.
#[track_caller]
pub fn entry<'a>(
    value: &'a serde_json::Value,
    list: &str,
    wanted: &[(&str, &str)],
) -> &'a serde_json::Value {
    value[list]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| wanted.iter().all(|(field, v)| e[*field] == *v))
        .unwrap_or_else(|| panic!("no {wanted:?} in `{list}` of:\n{value:#}"))
}

/// The cell of `object` (its name in the report) on `kernel`.
#[track_caller]
pub fn cell<'a>(
    report: &'a serde_json::Value,
    object: &str,
    kernel: &str,
) -> &'a serde_json::Value {
    entry(report, "cells", &[("object", object), ("kernel", kernel)])
}

/// Asserts that libtest's output `stdout` ends the trial `name` with
/// `outcome` (`ok`, `FAILED`).
#[track_caller]
pub fn assert_trial(stdout: &str, name: &str, outcome: &str) {
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(name) && l.ends_with(outcome)),
        "{name} not {outcome}:\n{stdout}"
    );
}

/// Asserts that a cell's code is `code`; on failure shows the cell.
#[track_caller]
pub fn assert_code(cell: &serde_json::Value, code: &str) {
    assert_eq!(cell["code"], code, "{cell:#}");
}

/// Asserts that a cell's guest ran the kernel its profile names: the
/// release starts with the profile's version (`debian-12-6.1` → `6.1.`).
#[track_caller]
pub fn assert_release_of(cell: &serde_json::Value, profile: &str) {
    let version = profile.rsplit('-').next().unwrap_or(profile);
    let release = cell["kernel_release"].as_str().unwrap_or_default();
    assert!(release.starts_with(&format!("{version}.")), "{cell:#}");
}
