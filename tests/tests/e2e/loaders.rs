//! The user's own loader in each kernel (command mode): loaders that run
//! until stopped, their output in every view, and loaders that write what
//! they should not, where the tool must keep its verdicts.

use bpfcompat_e2e::{
    Args, assert_code, cell, cli, examples, in_workspace, mentions, says, with_report,
    workspace_bin,
};
use serde_json::Value;

const KERNELS: &[&str] = &["debian-11-5.10", "debian-12-6.1"];

#[test]
fn a_daemon_loader_passes_once_ready_and_fails_with_libbpfs_words_in_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.args(["--bin", "probes-loader", "--ready-line", "^ready$"])
        .args([
            "--command",
            "$BPFCOMPAT_BIN --daemon --only ringbuf --only bounded_loop",
        ])
        .arg("--markdown")
        .arg(file("r.md"))
        .arg("--junit")
        .arg(file("r.xml"))
        .arg("--html")
        .arg(file("r.html"))
        .kernels(KERNELS);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    // 6.1: loaded, attached, ready, then stopped by SIGINT and gone.
    let passed = cell(&report, "probes-loader", "debian-12-6.1");
    assert_eq!(passed["status"], "pass", "{passed:#}");
    says(
        passed,
        "message",
        &["ready after", "exited with 0 on SIGINT"],
    );
    assert_eq!(passed["command"]["stop"], "clean", "{passed:#}");
    says(
        &passed["command"],
        "output",
        &["ok   ringbuf", "ready\ndetaching"],
    );
    // 5.10: bpf_loop is missing, so it dies before it is ready; its own
    // refused load names the cause, and what libbpf said is in every view.
    let failed = cell(&report, "probes-loader", "debian-11-5.10");
    assert_code(failed, "UNSUPPORTED_HELPER");
    assert_eq!(failed["program"], "count_with_loop", "{failed:#}");
    says(
        failed,
        "message",
        &["bpf_loop", "exited with 1 before it was ready"],
    );
    let words = ["FAIL bounded_loop", "failed to load BPF skeleton"];
    says(&failed["command"], "output", &words);
    mentions(&String::from_utf8_lossy(&out.stdout), &words);
    for view in ["r.md", "r.xml", "r.html"] {
        mentions(&std::fs::read_to_string(file(view)).unwrap(), &words);
    }

    // Fire mode: once it is ready the built-in workload runs, and each
    // program it loaded must have run.
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.args([
        "--bin",
        "probes-loader",
        "--ready-line",
        "^ready$",
        "--mode",
        "fire",
    ])
    .args([
        "--command",
        "$BPFCOMPAT_BIN --daemon --only ringbuf --only fentry",
    ])
    .kernels(&["debian-12-6.1"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let fired = cell(&report, "probes-loader", "debian-12-6.1");
    says(
        fired,
        "message",
        &["its programs ran (on_getpid", "on_unlink"],
    );
}

/// probes-loader with libbpf silenced, run as a command on `kernels`.
fn quiet_loader(only: &str, kernels: &[&str], extra: &[&str]) -> (Option<i32>, Value) {
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.args(["--bin", "probes-loader"])
        .args([
            "--command",
            &format!("$BPFCOMPAT_BIN --quiet --only {only}"),
        ])
        .args(extra)
        .kernels(kernels);
    let (out, report) = with_report(c);
    (out.status.code(), report)
}

#[test]
fn a_loaders_own_refused_call_explains_its_failure_as_object_mode_does() {
    // The loader prints nothing of libbpf's: only its traced calls tell.
    let (code, report) = quiet_loader("bounded_loop", KERNELS, &[]);
    assert_eq!(code, Some(2), "{report:#}");
    let failed = cell(&report, "probes-loader", "debian-11-5.10");
    assert!(
        !failed["command"]["output"]
            .as_str()
            .unwrap()
            .contains("libbpf"),
        "{failed:#}"
    );
    assert_code(failed, "UNSUPPORTED_HELPER");
    assert_eq!(failed["program"], "count_with_loop", "{failed:#}");
    assert_eq!(failed["stage"], "load", "{failed:#}");
    says(failed, "message", &["bpf_loop", "exited with 1"]);
    says(failed, "remediation", &["5.17"]);
    says(failed, "verifier_tail", &["number of funcs in func_info"]);
    // libbpf asked again with a log itself: its first, log-less attempt is
    // not made a third time by the tracer.
    let loads: Vec<&Value> = failed["command"]["trace"]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["call"]["name"] == "count_with_loop")
        .collect();
    assert_eq!(loads.len(), 2, "{loads:#?}");
    assert!(
        loads.iter().all(|c| c["call"]["replay"].is_null()),
        "{loads:#?}"
    );
    // Where it loads: the program, attached, with the kernel's figures.
    let passed = cell(&report, "probes-loader", "debian-12-6.1");
    assert_eq!(passed["status"], "pass", "{passed:#}");
    let program = &passed["programs"][0];
    assert_eq!(program["name"], "count_with_loop", "{passed:#}");
    assert_eq!(
        (&program["load"], &program["attach"]),
        (&"ok".into(), &"ok".into())
    );
    assert!(
        program["complexity"]["insns_processed"].as_u64().unwrap() > 0,
        "{passed:#}"
    );

    // Untraced, the same run has only its exit code to go by.
    let (_, report) = quiet_loader("bounded_loop", &["debian-11-5.10"], &["--no-trace"]);
    let failed = cell(&report, "probes-loader", "debian-11-5.10");
    assert_code(failed, "COMMAND_FAILED");
    says(&failed["command"]["trace"], "not_traced", &["--no-trace"]);

    // A program the verifier refuses: its name and the verifier's words.
    let (_, report) = quiet_loader("task_state", &["debian-11-5.10"], &[]);
    let failed = cell(&report, "probes-loader", "debian-11-5.10");
    assert_code(failed, "CORE_RELOCATION");
    assert_eq!(failed["program"], "read_state", "{failed:#}");
    says(failed, "verifier_tail", &["195896080"]);

    // A ring buffer before 5.8: the map it asked for, by name.
    let (kernels, _) = bpfcompat_e2e::plus_mirrored(&[], &["ubuntu-20.04-5.4"]);
    if !kernels.is_empty() {
        let (_, report) = quiet_loader("ringbuf", &kernels, &[]);
        let failed = cell(&report, "probes-loader", "ubuntu-20.04-5.4");
        assert_code(failed, "UNSUPPORTED_MAP_TYPE");
        assert_eq!(failed["findings"][0]["map"], "events", "{failed:#}");
        says(failed, "remediation", &["5.8"]);
    }
}

#[test]
fn the_loaders_contract_makes_object_mode_judge_what_it_loads() {
    // The example loader in its adaptive mode chooses per kernel (parts left
    // out where the kernel's probes say no, the ring buffer sized at run
    // time): its contract, read from its traced calls.
    let (kernels, _) = bpfcompat_e2e::plus_mirrored(KERNELS, &["ubuntu-20.04-5.4"]);
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("contract.toml");
    let mut c = in_workspace("contract", &examples().join("Cargo.toml"));
    c.args(["--bin", "probes-loader"])
        .args(["--command", "$BPFCOMPAT_BIN --adaptive"])
        .arg("--contract")
        .arg(&contract)
        .kernels(&kernels);
    let (out, command) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{command:#}");
    let text = std::fs::read_to_string(&contract).unwrap();
    mentions(
        &text,
        &[
            "[objects.ringbuf.maps.events]\nmax_entries = 262144",
            "created with max_entries 262144 (declared 4096)",
        ],
    );
    let left_out = text
        .lines()
        .find(|l| l.contains("`bounded_loop` is not loaded at all on"))
        .unwrap_or_else(|| panic!("bpf_loop's part is left out on 5.10:\n{text}"));
    assert!(left_out.contains("debian-11-5.10"), "{left_out}");
    // Object mode with the example's configuration and the contract: every
    // object the loader loaded on a kernel passes there, as the loader did.
    let config = std::fs::read_to_string(examples().join("bpfcompat.toml")).unwrap();
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.kernels(&kernels);
    let (_, objects) = bpfcompat_e2e::report_with_config(c, &format!("{config}\n{text}"));
    let mut compared = 0;
    for k in &kernels {
        let trace = &cell(&command, "probes-loader", k)["command"]["trace"]["calls"];
        let loaded: Vec<&str> = trace
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["call"]["kind"] == "prog_load" && c["result"].get("ok").is_some())
            .filter_map(|c| c["call"]["name"].as_str())
            .collect();
        for (object, program) in [
            ("ringbuf", "on_getpid"),
            ("bounded_loop", "count_with_loop"),
            ("fentry", "on_unlink"),
            ("task_state_guarded", "read_state_gua"),
        ] {
            if loaded.iter().any(|p| p.starts_with(program)) {
                let o = cell(&objects, object, k);
                assert_eq!(o["status"], "pass", "{object} on {k}: {o:#}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 5, "{compared} cells compared");
}

/// `unruly-loader MODE…` on both kernels: the report.
fn unruly(args: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut c = cli(&["test", "--loader"]);
    c.arg(workspace_bin("unruly-loader"))
        .args(["--command", &format!("$BPFCOMPAT_BIN {args}")])
        .args(extra)
        .kernels(KERNELS);
    let (out, report) = with_report(c);
    (out.status.code(), report)
}

#[test]
fn a_refused_load_that_asked_for_no_log_is_replayed_with_one() {
    // A raw loader (no libbpf): its program uses a map and calls bpf_loop
    // without a callback; it asks for no verifier log and prints only the
    // errno. The tracer loads it again with a log, the map lent from it.
    let (kernels, _) = bpfcompat_e2e::plus_mirrored(KERNELS, &["ubuntu-20.04-5.4"]);
    let mut c = cli(&["test", "--loader"]);
    c.arg(workspace_bin("unruly-loader"))
        .args(["--command", "$BPFCOMPAT_BIN raw-load"])
        .kernels(&kernels);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    let load = |c: &Value| {
        c["command"]["trace"]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["call"]["name"] == "raw_loop")
            .map(|x| x["call"].clone())
            .unwrap_or_else(|| panic!("its load is traced: {c:#}"))
    };
    // 5.10 has no bpf_loop: the replay's words and the kernel's probe say so.
    let old = cell(&report, "unruly-loader", "debian-11-5.10");
    assert_code(old, "UNSUPPORTED_HELPER");
    assert_eq!(old["program"], "raw_loop", "{old:#}");
    says(old, "verifier_tail", &["unknown#181"]);
    assert_eq!(load(old)["replay"], "replayed", "{old:#}");
    // 6.1 has it, and refuses the missing callback in its own words.
    let new = cell(&report, "unruly-loader", "debian-12-6.1");
    assert_code(new, "VERIFIER_REJECTED");
    says(new, "message", &["R2 type=scalar expected=func"]);
    assert_eq!(load(new)["replay"], "replayed", "{new:#}");
    // Before 5.6 the loader's descriptors cannot be lent: said, and the
    // kernel's probe still names the helper.
    if kernels.contains(&"ubuntu-20.04-5.4") {
        let c = cell(&report, "unruly-loader", "ubuntu-20.04-5.4");
        assert_code(c, "UNSUPPORTED_HELPER");
        says(&load(c), "replay", &["Linux 5.6"]);
    }
}

#[test]
fn a_loader_cannot_speak_for_the_guest_on_any_serial_port_nor_fake_a_panic() {
    // Old kernels too, where a mirror is set: namespaces and the signature
    // hold on 4.15 and 5.4.
    let (kernels, _) =
        bpfcompat_e2e::plus_mirrored(KERNELS, &["ubuntu-16.04-4.15", "ubuntu-20.04-5.4"]);
    let mut c = cli(&["test", "--loader"]);
    c.arg(workspace_bin("unruly-loader"))
        .args(["--command", "$BPFCOMPAT_BIN forge"])
        .kernels(&kernels);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    for k in &kernels {
        let c = cell(&report, "unruly-loader", k);
        assert_code(c, "COMMAND_FAILED");
        assert_eq!(c["command"]["exit_code"], 1, "{c:#}");
        bpfcompat_e2e::assert_release_of(c, k);
        // It did write on the result port: ignored, and said.
        says(c, "assumptions", &["not signed by it"]);
    }
    for k in report["kernels"].as_array().unwrap() {
        assert!(!k["release"].as_str().unwrap().contains("forged"), "{k:#}");
    }
}

#[test]
fn output_that_is_not_utf8_or_one_huge_line_and_leftover_children_keep_the_exit_codes_verdict() {
    let (code, report) = unruly("not-utf8", &["--command-timeout", "60s"]);
    assert_eq!(code, Some(0), "{report:#}");
    for k in KERNELS {
        let c = cell(&report, "unruly-loader", k);
        says(
            &c["command"],
            "output",
            &["before\n\u{fffd}\u{fffd}\u{fffd} not utf-8\nafter\n"],
        );
    }

    let (code, report) = unruly("huge-line 100", &[]);
    assert_eq!(code, Some(0), "{report:#}");
    for k in KERNELS {
        let cmd = &cell(&report, "unruly-loader", k)["command"];
        assert!(
            cmd["output_bytes"].as_u64().unwrap() > 100 << 20,
            "{}",
            cmd["output_bytes"]
        );
        let kept = cmd["output"].as_str().unwrap();
        assert!(kept.len() <= 64 << 10, "{}", kept.len());
        assert!(kept.ends_with("x\nend\n"));
    }

    // A child in a session of its own holds the output: the run still
    // ends when the loader does (no TIMEOUT at the command's limit).
    let (code, report) = unruly("setsid", &[]);
    assert_eq!(code, Some(0), "{report:#}");

    // A daemon without a SIGINT handler: SIGINT's default action ends it.
    let (code, report) = unruly("daemon", &["--ready-line", "^ready$"]);
    assert_eq!(code, Some(0), "{report:#}");
    for k in KERNELS {
        let c = cell(&report, "unruly-loader", k);
        assert_eq!(c["command"]["stop"], "default_action", "{c:#}");
    }
    // Fire mode, but the loader loaded no program at all: NOT_FIRED.
    let (code, report) = unruly("daemon", &["--ready-line", "^ready$", "--mode", "fire"]);
    assert_eq!(code, Some(2), "{report:#}");
    let c = cell(&report, "unruly-loader", "debian-12-6.1");
    assert_code(c, "NOT_FIRED");
    // Never ready: TIMEOUT at the command's limit, with its output.
    let (code, report) = unruly(
        "daemon",
        &["--ready-line", "^never$", "--command-timeout", "3s"],
    );
    assert_eq!(code, Some(2), "{report:#}");
    let c = cell(&report, "unruly-loader", "debian-12-6.1");
    assert_code(c, "TIMEOUT");
    says(c, "message", &["never ready", "^never$"]);
}
