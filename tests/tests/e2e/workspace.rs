//! `cargo bpfcompat test` in a real libbpf-cargo workspace (examples/):
//! build, discovery of the skeleton objects, configuration, expectations.

use std::path::{Path, PathBuf};

use bpfcompat_e2e::{
    Args, assert_code, cli, copy_examples, examples, in_workspace, mentions, run, says, with_report,
};
use serde_json::Value;

const KERNELS: &[&str] = &["debian-11-5.10", "debian-12-6.1"];

fn test_in(manifest: &Path, target: &Path) -> (Option<i32>, String, Value) {
    let mut c = in_workspace("test", manifest);
    c.arg("--target-dir").arg(target).kernels(KERNELS);
    let (out, report) = with_report(c);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        report,
    )
}

#[test]
fn example_workspace_declared_floors_pass_and_a_missing_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let target = examples().join("target");

    // `list` names every object the build produced.
    let out = run(in_workspace("list", &examples().join("Cargo.toml")));
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout);
    for o in [
        "bounded_loop",
        "fentry",
        "ringbuf",
        "task_state",
        "task_state_guarded",
    ] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(o) && l.contains("embedded in")),
            "{o} not listed:\n{listed}"
        );
    }
    // For tools: one JSON record per object, its reason first.
    let mut c = in_workspace("list", &examples().join("Cargo.toml"));
    c.args(["--message-format", "json"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0));
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"reason\":\"object\","), "{l}");
            serde_json::from_str(l).unwrap()
        })
        .collect();
    let ringbuf = records.iter().find(|r| r["name"] == "ringbuf").unwrap();
    assert_eq!(ringbuf["sha256"].as_str().unwrap().len(), 64);
    assert!(ringbuf["bytes"].as_u64().unwrap() > 0);
    assert!(std::path::Path::new(ringbuf["path"].as_str().unwrap()).is_file());

    // As shipped: every floor on these kernels is declared, so exit 0.
    let (code, _, report) = test_in(&examples().join("Cargo.toml"), &target);
    assert_eq!(code, Some(0), "{report:#}");
    let status = |r: &Value, o: &str, k: &str| bpfcompat_e2e::cell(r, o, k)["status"].clone();
    assert_eq!(
        status(&report, "bounded_loop", "debian-11-5.10"),
        "expected_fail"
    );
    assert_eq!(
        status(&report, "task_state", "debian-11-5.10"),
        "expected_fail"
    );
    assert_eq!(status(&report, "bounded_loop", "debian-12-6.1"), "pass");
    assert_eq!(
        status(&report, "task_state_guarded", "debian-11-5.10"),
        "pass"
    );
    assert_eq!(report["summary"]["expected_fail"], 2);

    // Without bounded_loop's 5.10 floor, the same run fails and names the cell.
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    copy_examples(&ws);
    let config = std::fs::read_to_string(ws.join("bpfcompat.toml")).unwrap();
    let edited = config.replace("\"debian-11-5.10\" = \"UNSUPPORTED_HELPER\"\n", "");
    assert_ne!(config, edited);
    std::fs::write(ws.join("bpfcompat.toml"), edited).unwrap();
    let (code, stdout, report) = test_in(&ws.join("Cargo.toml"), &target);
    assert_eq!(code, Some(2));
    assert_eq!(status(&report, "bounded_loop", "debian-11-5.10"), "fail");
    mentions(&stdout, &["FAIL bounded_loop on debian-11-5.10"]);

    // A declared floor that no longer fails is reported too.
    let edited = config.replace(
        "[objects.ringbuf.expect_fail]\n",
        "[objects.ringbuf.expect_fail]\n\"debian-12-6.1\" = \"UNSUPPORTED_MAP_TYPE\"\n",
    );
    std::fs::write(ws.join("bpfcompat.toml"), edited).unwrap();
    let (code, stdout, report) = test_in(&ws.join("Cargo.toml"), &target);
    assert_eq!(code, Some(2));
    assert_eq!(
        status(&report, "ringbuf", "debian-12-6.1"),
        "unexpected_pass"
    );
    mentions(&stdout, &["UNEXPECTED PASS ringbuf on debian-12-6.1"]);
}

#[test]
fn config_typo_names_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    copy_examples(tmp.path());
    let config = std::fs::read_to_string(tmp.path().join("bpfcompat.toml")).unwrap();
    std::fs::write(
        tmp.path().join("bpfcompat.toml"),
        config.replace("matrix = \"default\"", "matirx = \"default\""),
    )
    .unwrap();
    let out = run(in_workspace("test", &tmp.path().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(examples().join("target")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    mentions(&err, &["matirx", "line 4", "bpfcompat.toml"]);
}

#[test]
fn workspace_without_bpf_objects_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("src")).unwrap();
    std::fs::write(tmp.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    // Every command that builds the workspace for its objects says so alike.
    for sub in ["test", "check", "list"] {
        let out = run(in_workspace(sub, &tmp.path().join("Cargo.toml")));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sub}: {err}");
        mentions(
            &err,
            &[
                "produced no BPF object",
                "OUT_DIR",
                "hint:",
                "--object FILE",
            ],
        );
    }
}

/// A workspace in a temporary directory whose BPF objects sit in
/// `<target>/bpf/` (as `cargo libbpf build` leaves them), with the given
/// configuration: the directory and the manifest.
fn workspace_with_objects(objects: &[&str], config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = one_package("fn main() {}\n");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("target/bpf")).unwrap();
    for o in objects {
        std::fs::copy(
            bpfcompat_e2e::fixture(o),
            dir.join(format!("target/bpf/{o}.bpf.o")),
        )
        .unwrap();
    }
    std::fs::write(dir.join("bpfcompat.toml"), config).unwrap();
    let manifest = dir.join("Cargo.toml");
    (tmp, manifest)
}

#[test]
fn loader_fixups_decide_the_verdict_as_the_real_loader_would() {
    let config = "[objects.contract.maps.sized_at_runtime]\nmax_entries = 1024\n\n\
                  [objects.variants]\nvariants = [[\"count_with_loop\", \"sum_unrolled\"]]\n\n\
                  [objects.rodata.variables]\nunsafe_path = 0\n";
    let (tmp, manifest) = workspace_with_objects(&["contract", "variants", "rodata"], config);
    let (out, report) = with_report(in_workspace("test", &manifest).kernels(KERNELS));
    assert_eq!(out.status.code(), Some(0));
    let cell = |o: &str, k: &str| bpfcompat_e2e::cell(&report, o, k).clone();
    for k in KERNELS {
        for o in ["contract", "variants", "rodata"] {
            assert_eq!(cell(o, k)["status"], "pass", "{o} on {k}");
        }
    }
    // bpf_loop (5.17) is missing on 5.10: the fallback is chosen there.
    assert_eq!(
        cell("variants", "debian-11-5.10")["variants"][0]["chosen"],
        "sum_unrolled"
    );
    assert_eq!(
        cell("variants", "debian-12-6.1")["variants"][0]["chosen"],
        "count_with_loop"
    );

    // The same objects as compiled, nothing assumed: the loader contract and
    // the constant decide.
    let mut c = bpfcompat_e2e::test_on(&["debian-12-6.1"], &["contract", "rodata"]);
    c.arg("--strict-maps");
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2));
    assert_code(&report["cells"][0], "MAP_CONTRACT");
    assert_code(&report["cells"][1], "VERIFIER_REJECTED");

    // The same objects with the workspace's configuration: fix-ups apply
    // with --object too.
    let mut c = bpfcompat_e2e::test_on(&["debian-12-6.1"], &["contract", "rodata"]);
    c.arg("--config-file")
        .arg(tmp.path().join("bpfcompat.toml"));
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
}

#[test]
fn fixup_naming_a_missing_map_is_reported_not_ignored() {
    let (_tmp, manifest) = workspace_with_objects(
        &["contract"],
        "[objects.contract.maps.no_such_map]\nmax_entries = 1\n",
    );
    let out = run(in_workspace("test", &manifest).kernels(&["debian-12-6.1"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a configuration error is a tool failure: {stdout}"
    );
    mentions(&stdout, &["no map `no_such_map`", "sized_at_runtime"]);
}

#[test]
fn command_mode_runs_the_users_loader_on_each_kernel() {
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.args(["--bin", "probes-loader"]).kernels(KERNELS);
    let (out, report) = with_report(c);
    // The loader loads everything: bpf_loop and task_struct::__state are missing on 5.10.
    assert_eq!(out.status.code(), Some(2));
    let cells = report["cells"].as_array().unwrap();
    let on = |k: &str| cells.iter().find(|c| c["kernel"] == k).unwrap();
    assert_eq!(
        on("debian-12-6.1")["status"],
        "pass",
        "{:#}",
        on("debian-12-6.1")
    );
    // A passing cell keeps the command's output too.
    let passed = &on("debian-12-6.1")["command"];
    assert_eq!(passed["exit_code"], 0, "{passed:#}");
    says(passed, "output", &["ok   bounded_loop"]);
    // On 5.10 its own refused call names the cause, as object mode would.
    let failed = on("debian-11-5.10");
    assert_eq!(failed["code"], "CORE_RELOCATION", "{failed:#}");
    says(
        failed,
        "message",
        &["task_struct.__state", "exited with 1 (expected 0)"],
    );
    assert_eq!(failed["command"]["exit_code"], 1, "{failed:#}");
    // The last call the kernel refused (task_state's program, traced)
    // names it; the whole output is attached.
    assert_eq!(failed["program"], "read_state", "{failed:#}");
    says(
        &failed["command"],
        "output",
        &["FAIL bounded_loop", "ok   ringbuf"],
    );
}

#[test]
fn command_mode_timeouts_and_expected_exit_codes() {
    let loader = |path: &str| {
        let mut c = cli(&["test", "--loader", path]);
        c.kernels(&["debian-12-6.1"]);
        c
    };
    let mut c = loader("/bin/sleep");
    c.args(["--command", "$BPFCOMPAT_BIN 30", "--command-timeout", "2"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2));
    assert_code(&report["cells"][0], "TIMEOUT");

    let out = run(loader("/bin/false").args(["--expect-exit", "1"]));
    assert_eq!(out.status.code(), Some(0), "false exits 1, as expected");
    let out = run(loader("/bin/true").args(["--expect-exit", "1"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exited with 0 (expected 1)"));
}

#[test]
fn a_trigger_that_does_not_parse_is_a_configuration_error() {
    let (_tmp, manifest) = workspace_with_objects(
        &["kprobe"],
        "[objects.kprobe]\ntrigger = \"sh -c 'unterminated\"\n",
    );
    let mut c = in_workspace("test", &manifest);
    // Refused before any guest: QEMU is never needed.
    c.kernels(&["debian-12-6.1"])
        .env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let out = run(c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    mentions(&stderr, &["[objects.\"kprobe\"] trigger", "bpfcompat.toml"]);
}

#[test]
fn a_loader_finds_loopback_working_and_the_test_interface_up_in_every_guest() {
    let loader = bpfcompat_e2e::workspace_bin("lo-echo");
    let (out, report) = with_report(cli(&["test", "--loader"]).arg(loader).kernels(KERNELS));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for c in report["cells"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
}

/// A workspace package whose build script leaves `object` in its OUT_DIR
/// (as libbpf-cargo's does) and whose loader is `main_rs`.
fn package_with_object(object: &str, main_rs: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = one_package(main_rs);
    let dir = tmp.path();
    std::fs::write(
        dir.join("build.rs"),
        format!(
            "fn main() {{ let out = std::env::var(\"OUT_DIR\").unwrap(); std::fs::copy({:?}, format!(\"{{out}}/{object}.bpf.o\")).unwrap(); }}\n",
            bpfcompat_e2e::fixture(object)
        ),
    )
    .unwrap();
    let manifest = dir.join("Cargo.toml");
    (tmp, manifest)
}

/// A one-package workspace `fx` in a temporary directory, its loader
/// `src/main.rs` being `main_rs`.
fn one_package(main_rs: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"fx\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.rs"), main_rs).unwrap();
    tmp
}

#[test]
fn a_workspace_loader_that_never_reads_its_globals_is_not_held_to_the_skeleton_contract() {
    // The loader's own source decides: one that never reads `.bss` after
    // load passes on 5.4 (no mmap-able arrays); one that does fails there.
    let (kernels, ubuntu) =
        bpfcompat_e2e::plus_mirrored(&["debian-11-5.10"], &["ubuntu-20.04-5.4"]);
    let (_tmp, manifest) = package_with_object("globals", "fn main() {}\n");
    let (_, report) = with_report(in_workspace("test", &manifest).kernels(&kernels));
    mentions(
        &report["notes"].to_string(),
        &["reads no global variable through the skeleton after load"],
    );
    let reads = "// let hits = skel.maps.bss_data.as_deref().unwrap().hits;\nfn main() {}\n";
    let (_tmp2, manifest2) = package_with_object("globals", reads);
    let (_, report2) = with_report(in_workspace("test", &manifest2).kernels(&kernels));
    assert!(
        !report2["notes"].to_string().contains("skeleton after load"),
        "{report2:#}"
    );
    if !ubuntu {
        return;
    }
    let cell = |r: &Value| bpfcompat_e2e::cell(r, "globals", "ubuntu-20.04-5.4").clone();
    assert_eq!(cell(&report)["status"], "pass", "{report:#}");
    assert_code(&cell(&report2), "UNSUPPORTED_FEATURE");
}
