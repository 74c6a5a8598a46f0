//! `#[bpfcompat::kernel_test]` in the example project, under `cargo test`
//! and `cargo nextest run`: one trial per (test × kernel), each run inside a
//! real guest by the test binary itself.

use std::path::Path;
use std::process::{Command, Output};

use bpfcompat_e2e::{examples, mentions};

fn cargo_in(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        // The examples share one target dir, whichever copy runs.
        .env("CARGO_TARGET_DIR", examples().join("target"))
        .output()
        .expect("cargo runs");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One test, three steps in order: they share the example's target dir, and
/// a rebuild must not replace a test binary another step is running.
#[test]
fn kernel_tests_under_cargo_test_and_nextest_and_a_broken_expectation() {
    cargo_test_runs_each_test_on_each_kernel();
    nextest_runs_one_process_per_trial_with_junit();
    a_broken_expectation_fails_exactly_its_trial_saying_which_kernel_and_why();
}

fn cargo_test_runs_each_test_on_each_kernel() {
    // `debian-1` selects the trials of debian-11, -12 and -13: three boots.
    let out = cargo_in(
        &examples(),
        &["test", "--test", "kernels", "--", "debian-1"],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for test in [
        "ringbuf_loads",
        "bounded_loop_loads",
        "guarded_core_read_loads",
    ] {
        for kernel in ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"] {
            let line = format!("{test}::{kernel}");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&line) && l.ends_with("ok")),
                "{line} not ok:\n{stdout}"
            );
        }
    }
    mentions(&stdout, &["9 passed; 0 failed"]);
}

fn nextest_runs_one_process_per_trial_with_junit() {
    let probe = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bpfcompat_e2e::skip(
            "nextest_runs_one_process_per_trial_with_junit: cargo-nextest is not installed",
        );
        return;
    }
    let out = cargo_in(
        &examples(),
        &[
            "nextest",
            "run",
            "--test",
            "kernels",
            "-E",
            "test(/debian-1[12]/)",
        ],
    );
    assert!(out.status.success());
    let junit =
        std::fs::read_to_string(examples().join("target/nextest/default/junit.xml")).unwrap();
    for test in [
        "ringbuf_loads",
        "bounded_loop_loads",
        "guarded_core_read_loads",
    ] {
        for kernel in ["debian-11-5.10", "debian-12-6.1"] {
            assert!(
                junit.contains(&format!("<testcase name=\"{test}::{kernel}\"")),
                "{test}::{kernel} missing from JUnit"
            );
        }
    }
    assert_eq!(junit.matches("<testcase ").count(), 6, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

fn a_broken_expectation_fails_exactly_its_trial_saying_which_kernel_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    bpfcompat_e2e::copy_examples(tmp.path());
    let tests = tmp.path().join("probes/tests/kernels.rs");
    let source = std::fs::read_to_string(&tests).unwrap();
    let broken = source.replace(
        ", \"debian-11-5.10\"])]\nfn bounded_loop_loads",
        "])]\nfn bounded_loop_loads",
    );
    assert_ne!(source, broken, "the expectation to remove was not found");
    std::fs::write(&tests, broken).unwrap();

    let out = cargo_in(
        tmp.path(),
        &["test", "--test", "kernels", "--", "debian-11"],
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(&stdout, &["2 passed; 1 failed"]);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("bounded_loop_loads::debian-11-5.10") && l.ends_with("FAILED")),
        "{stdout}"
    );
    assert!(
        stdout.contains("on debian-11-5.10 (5.10."),
        "the message names the kernel and release:\n{stdout}"
    );
    assert!(
        stdout.contains("Invalid argument"),
        "the message says why:\n{stdout}"
    );
}
