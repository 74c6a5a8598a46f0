//! `#[bpfcompat::kernel_test]` in the example project, under `cargo test`
//! and `cargo nextest run`: one trial per (test × kernel), each run inside a
//! real guest by the test binary itself.

use std::path::Path;
use std::process::{Command, Output};

use bpfcompat_e2e::{assert_trial, examples, mentions};

fn cargo_in(dir: &Path, args: &[&str]) -> Output {
    cargo_with(dir, args, |_| {})
}

fn cargo_with(dir: &Path, args: &[&str], env: impl FnOnce(&mut Command)) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(args)
        .current_dir(dir)
        // The examples share one target dir, whichever copy runs.
        .env("CARGO_TARGET_DIR", examples().join("target"))
        // The thin `bpfcompat` boots kernels with the installed CLI: this build's.
        .env(
            "BPFCOMPAT_CLI",
            bpfcompat_e2e::workspace_bin("cargo-bpfcompat"),
        );
    env(&mut c);
    let out = c.output().expect("cargo runs");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One test, steps in order: they share the example's target dir, and a
/// rebuild must not replace a test binary another step is running.
#[test]
fn kernel_tests_under_cargo_test_and_nextest_and_what_fails_a_trial() {
    without_the_cli_every_trial_fails_saying_how_to_install_it();
    cargo_test_runs_each_test_on_each_kernel();
    nextest_runs_one_process_per_trial_with_junit();
    let tmp = tempfile::tempdir().unwrap();
    bpfcompat_e2e::copy_examples(tmp.path());
    a_broken_expectation_fails_exactly_its_trial_saying_which_kernel_and_why(tmp.path());
    a_hang_fails_only_its_trial_at_its_timeout_with_its_console(tmp.path());
    an_unavailable_required_kernel_fails_its_trials_unless_the_project_allows_it(tmp.path());
}

fn without_the_cli_every_trial_fails_saying_how_to_install_it() {
    let out = cargo_with(&examples(), &["test", "--test", "kernels"], |c| {
        c.env("BPFCOMPAT_CLI", "/nonexistent/cargo-bpfcompat");
    });
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(
        &stdout,
        &["cargo install --locked cargo-bpfcompat", "BPFCOMPAT_CLI"],
    );
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
            assert_trial(&stdout, &line, "ok");
        }
    }
    for kernel in ["debian-11-5.10", "debian-12-6.1"] {
        assert_trial(
            &stdout,
            &format!("loader_runs_until_stopped::{kernel}"),
            "ok",
        );
    }
    mentions(&stdout, &["11 passed; 0 failed"]);
    // An expected failure passes, and says with what it failed.
    let stderr = String::from_utf8_lossy(&out.stderr);
    mentions(
        &stderr,
        &[
            "bounded_loop_loads::debian-11-5.10 failed as expected on debian-11-5.10 (5.10.",
            // Its own refused load (traced in the guest) names the cause.
            "UNSUPPORTED_HELPER: program `count_with_loop`: bpf_loop",
        ],
    );
    // Each kernel's guest was restored from its saved machine.
    assert!(!stderr.contains("booting cold"), "{stderr}");
    // Booted cold, every trial ends as it did warm.
    let cold = cargo_with(
        &examples(),
        &["test", "--test", "kernels", "--", "debian-1"],
        |c| {
            c.env("BPFCOMPAT_COLD", "1");
        },
    );
    let outcomes = |out: &Output| -> Vec<String> {
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("test ") && !l.starts_with("test result"))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(outcomes(&out), outcomes(&cold));
    assert!(!String::from_utf8_lossy(&cold.stderr).contains("saving its machine"));
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
            "--success-output",
            "final",
        ],
    );
    assert!(out.status.success());
    // Every trial's process restored its kernel's saved machine.
    let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!output.contains("booting cold"), "{output}");
    let junit =
        std::fs::read_to_string(examples().join("target/nextest/default/junit.xml")).unwrap();
    for test in [
        "ringbuf_loads",
        "bounded_loop_loads",
        "guarded_core_read_loads",
        "loader_runs_until_stopped",
    ] {
        for kernel in ["debian-11-5.10", "debian-12-6.1"] {
            assert!(
                junit.contains(&format!("<testcase name=\"{test}::{kernel}\"")),
                "{test}::{kernel} missing from JUnit"
            );
        }
    }
    assert_eq!(junit.matches("<testcase ").count(), 8, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

fn a_broken_expectation_fails_exactly_its_trial_saying_which_kernel_and_why(copy: &Path) {
    let tests = copy.join("probes/tests/kernels.rs");
    let source = std::fs::read_to_string(&tests).unwrap();
    let broken = source.replace(
        "    \"debian-11-5.10\" = \"UNSUPPORTED_HELPER\",\n})]\nfn bounded_loop_loads",
        "})]\nfn bounded_loop_loads",
    );
    assert_ne!(source, broken, "the expectation to remove was not found");
    // And a test that hangs on one kernel, for the next step.
    let hangs = "\n#[bpfcompat::kernel_test(kernels = [\"debian-12-6.1\"], timeout = \"5s\")]\nfn hangs() {\n    eprintln!(\"about to hang\");\n    loop {\n        std::thread::sleep(std::time::Duration::from_secs(1));\n    }\n}\n";
    // And a test whose expected failure names a cause, but that panics
    // for a reason of its own: not the expected failure.
    let panics = "\n#[bpfcompat::kernel_test(kernels = [\"debian-11-5.10\"], expect_fail = { \"debian-11-5.10\" = \"UNSUPPORTED_HELPER\" })]\nfn panics_for_its_own_reason() {\n    panic!(\"unrelated\");\n}\n";
    std::fs::write(&tests, broken + hangs + panics).unwrap();

    let out = cargo_in(copy, &["test", "--test", "kernels", "--", "debian-11"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(&stdout, &["3 passed; 2 failed"]);
    assert_trial(&stdout, "bounded_loop_loads::debian-11-5.10", "FAILED");
    assert_trial(
        &stdout,
        "panics_for_its_own_reason::debian-11-5.10",
        "FAILED",
    );
    mentions(
        &stdout,
        &[
            "expected to fail with UNSUPPORTED_HELPER (expect_fail), but it failed with its own panicked: unrelated",
        ],
    );
    assert!(
        stdout.contains("on debian-11-5.10 (5.10."),
        "the message names the kernel and release:\n{stdout}"
    );
    // The cause its own refused load gives (the call, traced in the
    // guest, and the kernel's probes), and the test's own error.
    mentions(
        &stdout,
        &[
            "UNSUPPORTED_HELPER: program `count_with_loop`: bpf_loop",
            "fix: bpf_loop needs Linux 5.17",
            "the test said: Invalid argument",
        ],
    );
}

fn a_hang_fails_only_its_trial_at_its_timeout_with_its_console(copy: &Path) {
    let out = cargo_in(copy, &["test", "--test", "kernels", "--", "debian-12-6.1"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(&stdout, &["4 passed; 1 failed"]);
    assert_trial(&stdout, "hangs::debian-12-6.1", "FAILED");
    mentions(
        &stdout,
        &[
            "timed out",
            "timeout = \"5s\"",
            "console during the test",
            "about to hang",
        ],
    );
}

fn an_unavailable_required_kernel_fails_its_trials_unless_the_project_allows_it(copy: &Path) {
    // No mirror for Ubuntu and an empty kernel cache: the kernel cannot be had.
    let empty_cache = tempfile::tempdir().unwrap();
    let run = || {
        cargo_with(
            copy,
            &["test", "--test", "kernels", "--", "ubuntu-22.04-5.15"],
            |c| {
                c.env_remove("BPFCOMPAT_MIRROR_UBUNTU")
                    .env("BPFCOMPAT_CACHE", empty_cache.path());
            },
        )
    };
    let out = run();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(
        &stdout,
        &[
            "0 passed; 3 failed",
            "is required but cannot be had",
            "BPFCOMPAT_MIRROR_UBUNTU",
        ],
    );
    let config = copy.join("bpfcompat.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("allow_unavailable = true\n{text}")).unwrap();
    let out = run();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(&stdout, &["0 failed; 3 ignored"]);
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["ignored trials", "BPFCOMPAT_MIRROR_UBUNTU"],
    );
}
