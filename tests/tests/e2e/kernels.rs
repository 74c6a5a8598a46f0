//! End to end: real QEMU, real distro kernels, fixture objects compiled with
//! clang. Each assertion is a verdict the kernel itself gave.

use bpfcompat_e2e::{
    default_kernels, entry, kernels_with_mirror, mentions, report_with_config, run, says, test_on,
    with_report,
};
use serde_json::Value;

const FIXTURES: &[&str] = &[
    "ringbuf",
    "loop",
    "core_state",
    "kfunc",
    "weak_kfunc",
    "prototype",
    "rejected",
    "kprobe",
    "cgrp_storage",
    "netfilter",
];

/// The cell of the fixture `object` on `kernel`.
pub(super) fn cell<'a>(report: &'a Value, object: &str, kernel: &str) -> &'a Value {
    bpfcompat_e2e::cell(report, &format!("{object}.bpf.o"), kernel)
}

fn assert_pass(report: &Value, object: &str, kernel: &str) {
    let c = cell(report, object, kernel);
    assert_eq!(c["status"], "pass", "{object} on {kernel}: {c:#}");
    for p in c["programs"].as_array().unwrap() {
        assert_eq!(p["load"], "ok", "{c:#}");
        // Netfilter programs have no hook the validator picks by itself.
        let attach = p["attach"].as_str().unwrap();
        let skipped_ok = object == "netfilter" && attach.starts_with("skipped");
        assert!(attach == "ok" || skipped_ok, "{c:#}");
    }
}

/// The report of the fixture on debian-11-5.10, where it must pass, and on
/// ubuntu-20.04-5.4; `None` (said as a skip of `test`) where no Ubuntu
/// mirror is configured.
fn passing_on_5_10_then_5_4(fixture: &str, test: &str) -> Option<Value> {
    let mut kernels = vec!["debian-11-5.10".to_string()];
    kernels.extend(kernels_with_mirror(&["ubuntu-20.04-5.4"]));
    let kernels: Vec<&str> = kernels.iter().map(String::as_str).collect();
    let (_, report) = with_report(test_on(&kernels, &[fixture]));
    assert_pass(&report, fixture, "debian-11-5.10");
    if kernels.len() == 1 {
        bpfcompat_e2e::skip(&format!("{test}: 5.4 part needs BPFCOMPAT_MIRROR_UBUNTU"));
        return None;
    }
    Some(report)
}

fn assert_fail(report: &Value, object: &str, kernel: &str, code: &str) -> Value {
    let c = cell(report, object, kernel);
    assert_eq!(c["status"], "fail", "{object} on {kernel}: {c:#}");
    assert_eq!(c["code"], code, "{object} on {kernel}: {c:#}");
    assert!(
        c["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{c:#}"
    );
    c.clone()
}

/// The fixtures on `kernels`, with `extra` arguments.
fn test_fixtures(kernels: &[&str], extra: &[&str]) -> (std::process::Output, Value) {
    let mut c = test_on(kernels, FIXTURES);
    c.args(["--accel", "auto"]).args(extra);
    with_report(c)
}

#[test]
fn debian_kernels_give_the_expected_verdicts() {
    let kernels = ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"];
    let evidence = tempfile::tempdir().unwrap();
    let md = evidence.path().join("report.md");
    let (out, report) = test_fixtures(
        &kernels,
        &[
            "--evidence",
            evidence.path().to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a required cell fails, so exit 2"
    );
    assert_eq!(report["schema_version"], 1);

    for k in kernels {
        assert_pass(&report, "ringbuf", k);
        assert_pass(&report, "kprobe", k);
        let c = assert_fail(&report, "rejected", k, "VERIFIER_REJECTED");
        assert_eq!(c["program"], "unchecked_lookup");
        says(&c, "verifier_tail", &["map_value_or_null"]);
    }
    for k in ["debian-11-5.10", "debian-12-6.1"] {
        let c = assert_fail(&report, "kfunc", k, "MISSING_KFUNC");
        says(&c, "message", &["bpf_rcu_read_lock"]);
        says(&c, "remediation", &["needs Linux 6.2"]);
        // A __weak kfunc (6.4): the verifier refuses only the unguarded call.
        let c = assert_fail(&report, "weak_kfunc", k, "MISSING_KFUNC");
        assert_eq!(c["program"], "unguarded", "{c:#}");
        says(
            &c,
            "remediation",
            &["bpf_dynptr_from_xdp needs Linux 6.4", "bpf_ksym_exists"],
        );
        assert_eq!(
            entry(&c, "programs", &[("name", "guarded")])["load"],
            "ok",
            "{c:#}"
        );
        // The kernel's own type probes, for types newer than 6.1.
        let c = assert_fail(&report, "cgrp_storage", k, "UNSUPPORTED_MAP_TYPE");
        let fix = c["remediation"].as_str().unwrap();
        assert!(fix.contains("cgrp_storage map needs Linux 6.2"), "{c:#}");
        // The refused map blocks the program that needs it, not the other.
        let load = |name: &str| {
            let p = entry(&c, "programs", &[("name", name)]);
            p["load"].as_str().unwrap_or_default().to_string()
        };
        assert_eq!(load("touch"), "ok", "{c:#}");
        assert!(load("on_mkdir").contains("needs map `per_cgroup`"), "{c:#}");
        let c = assert_fail(&report, "netfilter", k, "UNSUPPORTED_PROG_TYPE");
        assert_eq!(c["program"], "accept_all");
        let fix = c["remediation"].as_str().unwrap();
        assert!(fix.contains("netfilter program needs Linux 6.4"), "{c:#}");
    }
    // Linux 6.12 has everything the fixtures use.
    for o in [
        "loop",
        "core_state",
        "kfunc",
        "weak_kfunc",
        "cgrp_storage",
        "netfilter",
    ] {
        assert_pass(&report, o, "debian-13-6.12");
    }
    // sched_switch's fourth argument (5.18), missing on 5.10: each way of
    // reading it is refused, by the verifier or at attach, and named.
    // Where both load, the two are alternatives on one hook: one is chosen.
    for k in ["debian-12-6.1", "debian-13-6.12"] {
        let c = cell(&report, "prototype", k);
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    let c = assert_fail(&report, "prototype", "debian-11-5.10", "VERIFIER_REJECTED");
    says(&c, "message", &["doesn't have 4-th argument"]);
    says(&c, "remediation", &["reads an argument", "prototype"]);
    let raw = entry(&c, "findings", &[("program", "raw_switch")]);
    assert_eq!(raw["code"], "ATTACH_FAILED", "{c:#}");
    says(
        raw,
        "remediation",
        &["more arguments than this raw tracepoint has"],
    );
    // Linux 5.10: no bpf_loop (5.17), no task_struct::__state (5.14).
    let c = assert_fail(&report, "loop", "debian-11-5.10", "UNSUPPORTED_HELPER");
    assert_eq!(c["program"], "count_with_loop");
    says(&c, "remediation", &["bpf_loop needs Linux 5.17"]);
    let c = assert_fail(&report, "core_state", "debian-11-5.10", "CORE_RELOCATION");
    says(&c, "message", &["__state"]);
    assert_pass(&report, "loop", "debian-12-6.1");
    assert_pass(&report, "core_state", "debian-12-6.1");

    // The kernels really were those kernels, with BTF, and phases were timed.
    for (k, release) in [
        ("debian-11-5.10", "5.10."),
        ("debian-12-6.1", "6.1."),
        ("debian-13-6.12", "6.12."),
    ] {
        let kr = entry(&report, "kernels", &[("kernel", k)]);
        assert!(
            kr["release"].as_str().unwrap().starts_with(release),
            "{kr:#}"
        );
        assert_eq!(kr["kernel_btf"], true);
        assert_eq!(kr["outcome"]["kind"], "completed");
        assert!(kr["timings"]["boot_ms"].as_u64().unwrap() > 0);
        assert!(kr["timings"]["validate_ms"].as_u64().unwrap() > 0);
        let ev = evidence.path().join(k);
        for f in ["console.log", "records.jsonl", "qemu-argv.txt", "config"] {
            assert!(ev.join(f).is_file(), "evidence {k}/{f} missing");
        }
        let records = std::fs::read_to_string(ev.join("records.jsonl")).unwrap();
        assert_eq!(
            records
                .lines()
                .filter(|l| l.contains("\"record\":\"object\""))
                .count(),
            FIXTURES.len()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("UNSUPPORTED_HELPER") && stdout.contains("fix:"),
        "terminal shows causes"
    );
    let md = std::fs::read_to_string(md).unwrap();
    mentions(&md, &["| `loop.bpf.o` |", "❌ UNSUPPORTED_HELPER"]);
    // Each program's state per kernel, for objects that do not pass everywhere.
    mentions(
        &md,
        &[
            "### Programs of `cgrp_storage.bpf.o`",
            "| `touch` | load ok, attach ok |",
        ],
    );
}

#[test]
fn only_passing_objects_exit_zero() {
    let mut c = test_on(&["debian-12-6.1"], &["ringbuf", "kprobe", "loader_uprobe"]);
    // Cold: a restored guest prints "Restoring" instead (see warm.rs).
    c.args(["--mode", "attach", "--cold"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["summary"]["pass"], 3);
    // Not a terminal: progress is status lines, and the TCG note is kept.
    let stderr = String::from_utf8_lossy(&out.stderr);
    mentions(&stderr, &["     Booting debian-12-6.1"]);
    mentions(
        &stderr,
        &["    Finished debian-12-6.1: 3 objects validated"],
    );
    if report["kernels"][0]["accel"] == "tcg" {
        mentions(&stderr, &["note: using TCG"]);
    }
    // A uprobe whose loader names the target is loaded, not attached here.
    let uprobe = &cell(&report, "loader_uprobe", "debian-12-6.1")["programs"][0];
    assert_eq!(uprobe["load"], "ok", "{uprobe:#}");
    let attach = uprobe["attach"].as_str().unwrap();
    assert!(attach.starts_with("skipped: set by the loader"), "{attach}");
    assert_eq!(report["exit_code"], "pass");
}

#[test]
fn guest_that_never_reaches_the_agent_is_retried_then_reported_without_verdict() {
    // One second is too short for any kernel to boot under TCG: every boot
    // times out before the agent starts, is retried once, then reported.
    // Cold: a restored guest starts with its agent already running.
    let mut c = test_on(&["debian-11-5.10"], &["ringbuf"]);
    c.args([
        "--accel",
        "tcg",
        "--timeout",
        "1",
        "--retries",
        "1",
        "--cold",
    ]);
    let (out, report) = with_report(c);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no verdict on a required kernel is a tool failure"
    );
    let k = &report["kernels"][0];
    assert_eq!(k["outcome"]["kind"], "infra", "{k:#}");
    assert_eq!(k["retries"].as_array().unwrap().len(), 1, "{k:#}");
    assert!(
        k["retries"][0]
            .as_str()
            .unwrap()
            .contains("before the agent started")
    );
    assert_eq!(report["cells"][0]["status"], "infra_error");
}

#[test]
fn ubuntu_kernels_when_a_mirror_is_configured() {
    let kernels = kernels_with_mirror(&["ubuntu-16.04-4.15", "ubuntu-20.04-5.4"]);
    if kernels.is_empty() {
        bpfcompat_e2e::skip(
            "ubuntu_kernels_when_a_mirror_is_configured: set BPFCOMPAT_MIRROR_UBUNTU to run it",
        );
        return;
    }
    let refs: Vec<&str> = kernels.iter().map(String::as_str).collect();
    let (out, report) = test_fixtures(&refs, &[]);
    assert_eq!(out.status.code(), Some(2));
    if kernels.iter().any(|k| k == "ubuntu-16.04-4.15") {
        let k = "ubuntu-16.04-4.15";
        assert_fail(&report, "core_state", k, "MISSING_BTF");
        assert_fail(&report, "ringbuf", k, "UNSUPPORTED_MAP_TYPE");
        assert_fail(&report, "kprobe", k, "MISSING_ATTACH_TARGET");
        // The type is unknown there and its probe gives no answer: no verdict
        // may blame a loader contract for the zero entries it requires.
        let c = cell(&report, "cgrp_storage", k);
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_ne!(c["code"], "MAP_CONTRACT", "{c:#}");
    }
    let k = "ubuntu-20.04-5.4";
    assert_fail(&report, "ringbuf", k, "UNSUPPORTED_MAP_TYPE");
    assert_fail(&report, "core_state", k, "CORE_RELOCATION");
    assert_fail(&report, "loop", k, "UNSUPPORTED_HELPER");
}

#[test]
fn broken_kvm_falls_back_to_tcg_once_and_still_gives_verdicts() {
    // BPFCOMPAT_KVM_SKIP_CPU_CHECK makes `auto` try KVM wherever /dev/kvm
    // opens. Where KVM guests cannot run (hosts without VMX, like the one this
    // suite was written on), the first guest fails and every kernel falls back.
    // Where KVM works, the guests simply run on it.
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        bpfcompat_e2e::skip(
            "broken_kvm_falls_back_to_tcg_once_and_still_gives_verdicts: no /dev/kvm here",
        );
        return;
    }
    let mut c = test_on(&["debian-11-5.10", "debian-12-6.1"], &["ringbuf"]);
    c.args(["--accel", "auto"])
        .env("BPFCOMPAT_KVM_SKIP_CPU_CHECK", "1");
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0));
    let accels: Vec<&str> = report["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["accel"].as_str().unwrap())
        .collect();
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    if accels.contains(&"tcg") {
        assert!(accels.iter().all(|a| *a == "tcg"), "{accels:?}");
        assert_eq!(
            notes
                .iter()
                .filter(|n| n.contains("falling back to TCG"))
                .count(),
            1,
            "{notes:?}"
        );
        for k in report["kernels"].as_array().unwrap() {
            assert!(
                k["retries"].as_array().unwrap().is_empty(),
                "a fallback is not a retry: {k:#}"
            );
        }
    }
    assert_eq!(report["summary"]["pass"], 2);
}

#[test]
fn a_crashing_or_hanging_validator_costs_only_its_object() {
    // The agent's test hook makes its worker abort on one object and hang on
    // another; the objects around them must still get their real verdicts.
    for (fault, victim, code) in [("crash", "kprobe", "INFRA"), ("hang", "kprobe", "TIMEOUT")] {
        let mut c = test_on(&["debian-12-6.1"], &["ringbuf", victim, "loop"]);
        c.args(["--object-timeout", "20"])
            .env("BPFCOMPAT_AGENT_FAULT", format!("{fault}:{victim}.bpf.o"));
        let (out, report) = with_report(c);
        let v = cell(&report, victim, "debian-12-6.1");
        assert_eq!(v["code"], code, "{fault}: {v:#}");
        assert_pass(&report, "ringbuf", "debian-12-6.1");
        assert_pass(&report, "loop", "debian-12-6.1");
        let expected_exit = if fault == "hang" { 2 } else { 1 };
        assert_eq!(out.status.code(), Some(expected_exit), "{fault}");
    }
}

#[test]
fn kernel_panic_is_a_verdict_at_once_not_a_timeout() {
    let started = std::time::Instant::now();
    let mut c = test_on(&["debian-12-6.1"], &["ringbuf", "kprobe", "loop"]);
    c.args(["--timeout", "240"])
        .env("BPFCOMPAT_AGENT_FAULT", "panic:kprobe.bpf.o");
    let (out, report) = with_report(c);
    assert!(
        started.elapsed().as_secs() < 120,
        "the panic must end the guest at once, not at the timeout"
    );
    assert_eq!(out.status.code(), Some(2));
    assert_pass(&report, "ringbuf", "debian-12-6.1");
    let c = cell(&report, "kprobe", "debian-12-6.1");
    assert_eq!(c["code"], "KERNEL_PANIC", "{c:#}");
    says(c, "message", &["Kernel panic"]);
    let c = cell(&report, "loop", "debian-12-6.1");
    assert_eq!(
        c["status"], "infra_error",
        "not validated after the panic: {c:#}"
    );
    assert_eq!(report["kernels"][0]["outcome"]["kind"], "panic");
    assert!(
        report["kernels"][0]["retries"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a panic after the agent started is a verdict, not retried"
    );
}

#[test]
fn fire_mode_counts_runs_and_flags_a_hook_that_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("fire.md");
    let objects = [
        "ringbuf",
        "kprobe",
        "fentry",
        "never_fires",
        "block_io",
        "usdt",
    ];
    let mut c = test_on(&["debian-12-6.1"], &objects);
    c.args(["--mode", "fire", "--markdown"]).arg(&md);
    let (out, report) = with_report(c);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the never-firing program fails the run"
    );
    // Tracepoint, kprobe and fentry programs all ran while the workload ran,
    // a block-layer tracepoint (the workload reads the warm guest's disk past
    // the page cache) and a USDT program (on the validator's own probe).
    for (object, program) in [
        ("ringbuf", "on_getpid"),
        ("kprobe", "count_open"),
        ("fentry", "on_unlink"),
        ("block_io", "on_issue"),
        ("usdt", "on_request"),
    ] {
        let c = cell(&report, object, "debian-12-6.1");
        assert_eq!(c["status"], "pass", "{c:#}");
        let p = entry(c, "programs", &[("name", program)]);
        assert!(
            p["runs"].as_u64().unwrap() > 0,
            "{program} did not run: {c:#}"
        );
    }
    // The USDT program sits on the validator's own probe, and says so.
    says(
        cell(&report, "usdt", "debian-12-6.1"),
        "assumptions",
        &["attached to the validator's own probe (bpfcompat:probe)"],
    );
    let c = assert_fail(&report, "never_fires", "debian-12-6.1", "NOT_FIRED");
    assert_eq!(c["program"], "on_swapoff");
    says(&c, "message", &["built-in workload"]);
    assert_eq!(c["programs"][0]["runs"], 0);
    let md = std::fs::read_to_string(md).unwrap();
    mentions(&md, &["## Run counts (fire mode)", "| `on_swapoff` | 0 |"]);
}

#[test]
fn fire_mode_runs_programs_on_the_targets_the_validator_gives_them() {
    // XDP, tc and tcx on lo and a cgroup filter on the root cgroup see the
    // workload's traffic; uprobe.multi programs, and uprobes on a binary the
    // guest lacks, sit on a function of the agent, which the agent calls;
    // netkit programs on a pair the agent sends a packet through, each way.
    let objects = ["net_hooks", "tcx", "uprobe_multi", "netkit", "app_uprobe"];
    let mut c = test_on(&["debian-13-6.12"], &objects);
    c.args(["--mode", "fire"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for object in objects {
        let c = cell(&report, object, "debian-13-6.12");
        for p in c["programs"].as_array().unwrap() {
            assert!(p["runs"].as_u64().unwrap() > 0, "{c:#}");
        }
    }
    // Where the uprobes went is said, never a missing hook.
    let c = cell(&report, "app_uprobe", "debian-13-6.12");
    says(c, "assumptions", &["`/usr/local/bin/app` is the loader's"]);
}

#[test]
fn fire_mode_on_a_kernel_without_run_statistics_is_no_verdict() {
    // Linux 4.15 counts no BPF program runs (5.1): a count of zero there
    // says nothing, so no program may be NOT_FIRED, not even one that
    // really never runs.
    let kernels = kernels_with_mirror(&["ubuntu-16.04-4.15"]);
    if kernels.is_empty() {
        bpfcompat_e2e::skip(
            "fire_mode_on_a_kernel_without_run_statistics…: needs BPFCOMPAT_MIRROR_UBUNTU",
        );
        return;
    }
    let mut c = test_on(&["ubuntu-16.04-4.15"], &["never_fires"]);
    c.args(["--mode", "fire"]);
    let (_, report) = with_report(c);
    let c = cell(&report, "never_fires", "ubuntu-16.04-4.15");
    assert_eq!(c["code"], "UNKNOWN", "{c:#}");
    says(c, "message", &["no BPF run statistics", "Linux 5.1"]);
}

#[test]
fn message_format_json_prints_records_with_a_reason_and_ends_with_the_exit_code() {
    let mut c = test_on(&["debian-11-5.10", "debian-12-6.1"], &["loop"]);
    c.args(["--message-format", "json"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let reasons: Vec<&str> = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "cell").count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        reasons.iter().filter(|r| **r == "kernel-finished").count(),
        2,
        "{stdout}"
    );
    let cell = |k: &str| {
        records
            .iter()
            .find(|r| r["reason"] == "cell" && r["kernel"] == k)
            .unwrap()
    };
    assert_eq!(cell("debian-11-5.10")["code"], "UNSUPPORTED_HELPER");
    assert_eq!(cell("debian-12-6.1")["status"], "pass");
    let last = records.last().unwrap();
    assert_eq!(last["reason"], "run-finished", "{stdout}");
    assert_eq!(last["exit_code"], 2);
    assert_eq!(last["verdict"], "regression", "{last:#}");
    assert_eq!(last["summary"]["required_failures"], 1, "{last:#}");
}

/// Runs are started with a private TMPDIR so what they leave behind (run
/// directories, QEMU processes naming them) can be looked for.
fn leftovers(tmp: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let dirs = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bpfcompat-run-"))
        .collect();
    let needle = tmp.display().to_string();
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("qemu") && c.contains(&needle))
        .collect();
    (dirs, procs)
}

#[test]
fn ctrl_c_stops_guests_and_reports_what_finished() {
    use std::io::BufRead;
    let kernels = ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"];
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let json = dir.path().join("report.json");
    let mut child = test_on(&kernels, &["ringbuf", "loop"])
        .args(["-j", "1", "--message-format", "json", "--json"])
        .arg(&json)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first cell line means the first kernel is done; the second is booting.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["kernel"], kernels[0], "{first:#}");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["exit_code"], "interrupted");
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6, "{report:#}");
    for c in cells {
        if c["kernel"] == kernels[0] {
            assert_ne!(c["code"], "INTERRUPTED", "{c:#}");
            assert!(c["status"] == "pass" || c["status"] == "fail", "{c:#}");
        } else {
            assert_eq!(c["code"], "INTERRUPTED", "{c:#}");
            assert_eq!(c["status"], "infra_error", "{c:#}");
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (dirs, procs) = leftovers(&tmp);
    assert!(dirs.is_empty(), "run directories left: {dirs:?}");
    assert!(procs.is_empty(), "QEMU left running: {procs:?}");
}

#[test]
fn sigterm_during_a_boot_exits_143_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let json = dir.path().join("report.json");
    let mut child = test_on(&["debian-12-6.1"], &["loop"])
        .args(["-q", "--json"])
        .arg(&json)
        .env("TMPDIR", &tmp)
        .spawn()
        .unwrap();
    // Wait until the guest is running, then stop the run.
    let started = std::time::Instant::now();
    while leftovers(&tmp).1.is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no guest started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["cells"][0]["code"], "INTERRUPTED", "{report:#}");
    assert!(
        report["cells"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SIGTERM")
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(leftovers(&tmp), (vec![], vec![]));
}

#[test]
fn a_bpf_lsm_program_is_kernel_config_where_bpf_is_no_active_lsm() {
    // Debian 11 builds BPF LSM but leaves `bpf` out of CONFIG_LSM; Debian 12
    // lists it. The program loads and attaches on both; it runs only on 12.
    // A cgroup LSM program (6.0) attaches, to a cgroup, on 12.
    for mode in ["load", "attach"] {
        let mut c = test_on(&["debian-11-5.10", "debian-12-6.1"], &["lsm", "lsm_cgroup"]);
        c.args(["--mode", mode]);
        let (_, report) = with_report(c);
        let c = assert_fail(&report, "lsm", "debian-11-5.10", "KERNEL_CONFIG");
        let message = c["message"].as_str().unwrap();
        assert!(
            message.contains("bpf is not an active LSM"),
            "{mode}: {c:#}"
        );
        says(&c, "remediation", &[",bpf"]);
        let on12 = cell(&report, "lsm", "debian-12-6.1");
        assert_eq!(on12["status"], "pass", "{mode}: {on12:#}");
        let c = cell(&report, "lsm_cgroup", "debian-12-6.1");
        assert_eq!(c["status"], "pass", "{mode}: {c:#}");
        let c = cell(&report, "lsm_cgroup", "debian-11-5.10");
        says(
            c,
            "remediation",
            &["cgroup BPF LSM attachments need Linux 6.0"],
        );
        let kernels = report["kernels"].as_array().unwrap();
        assert!(
            kernels
                .iter()
                .any(|k| k["lsm"].as_str().is_some_and(|l| l.contains("bpf"))),
            "{report:#}"
        );
    }
}

#[test]
fn kprobe_multi_without_fprobe_is_kernel_config_and_before_5_18_an_attach_type_too_new() {
    // Debian 12's cloud kernel is built without CONFIG_FPROBE; 13's with it;
    // Debian 11's 5.10 predates kprobe.multi links (5.18) altogether.
    let kernels = ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"];
    let (_, report) = with_report(test_on(&kernels, &["kprobe_multi"]));
    let c = assert_fail(&report, "kprobe_multi", "debian-12-6.1", "KERNEL_CONFIG");
    says(&c, "message", &["CONFIG_FPROBE"]);
    assert_eq!(c["errno"], 95, "{c:#}");
    assert_pass(&report, "kprobe_multi", "debian-13-6.12");
    assert_eq!(report["kernels"][1]["kernel_config"]["CONFIG_FPROBE"], "n");
    let c = assert_fail(
        &report,
        "kprobe_multi",
        "debian-11-5.10",
        "UNSUPPORTED_ATTACH_TYPE",
    );
    let fix = c["remediation"].as_str().unwrap();
    assert!(fix.contains("kprobe.multi links need Linux 5.18"), "{c:#}");
}

#[test]
fn a_tc_classifier_attaches_through_clsact_with_the_kernels_own_modules() {
    // clsact (sch_ingress) and cls_bpf are modules on Debian and Ubuntu: the
    // guest loads the kernel's own, as a host would, and the program attaches
    // on `lo`. Ubuntu's and Debian 7.x's modules come in a second package.
    let kernels = default_kernels();
    let kernels: Vec<&str> = kernels.iter().map(String::as_str).collect();
    let (out, report) = with_report(test_on(&kernels, &["tc"]));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for k in kernels {
        assert_pass(&report, "tc", k);
    }
}

#[test]
fn a_struct_ops_link_needs_6_4_while_the_same_struct_ops_without_a_link_loads_from_5_6() {
    // The kernels before 6.4 have struct_ops (libbpf's probe for them is
    // wrong before 6.9) but not struct_ops links: only the link is blamed.
    let kernels = ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"];
    let mut c = test_on(&kernels, &["struct_ops_link", "struct_ops"]);
    c.args(["--mode", "attach"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2));
    for k in &kernels[..2] {
        let c = assert_fail(&report, "struct_ops_link", k, "UNSUPPORTED_FEATURE");
        let fix = c["remediation"].as_str().unwrap();
        assert!(fix.contains("struct_ops links need Linux 6.4"), "{c:#}");
    }
    assert_pass(&report, "struct_ops_link", "debian-13-6.12");
    for k in kernels {
        assert_pass(&report, "struct_ops", k);
    }
}

#[test]
fn maps_the_loader_sizes_get_a_neutral_size_noted_in_every_report() {
    // A stack-trace map without depth or entries and a hash map without
    // entries: the real loaders size them; the programs are what is judged.
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("r.md");
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let mut c = test_on(&kernels, &["profiler", "contract"]);
    c.arg("--markdown").arg(&md);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for k in kernels {
        assert_pass(&report, "profiler", k);
        let c = assert_pass_with_assumption(&report, "profiler", k);
        mentions(&c, &["map `stacks` (stack_trace)", "value_size 1016"]);
        let c = assert_pass_with_assumption(&report, "contract", k);
        mentions(&c, &["max_entries 1"]);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(&stdout, &["ASSUMED profiler.bpf.o: map `stacks`"]);
    let md = std::fs::read_to_string(md).unwrap();
    mentions(&md, &["## Assumptions", "`stacks`"]);

    // --strict-maps: the loader's contract is the verdict again.
    let mut c = test_on(&["debian-12-6.1"], &["profiler", "contract"]);
    c.arg("--strict-maps");
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2));
    assert_fail(&report, "contract", "debian-12-6.1", "MAP_CONTRACT");
}

/// The cell passes and notes one assumption: its text.
fn assert_pass_with_assumption(report: &Value, object: &str, kernel: &str) -> String {
    let c = cell(report, object, kernel);
    assert_eq!(c["status"], "pass", "{c:#}");
    let assumed = c["assumptions"].as_array().unwrap();
    assert_eq!(assumed.len(), 1, "{c:#}");
    assumed[0].as_str().unwrap().to_string()
}

#[test]
fn global_data_a_skeleton_cannot_mmap_fails_before_5_5_unless_the_loader_uses_none() {
    // Ubuntu 20.04's 5.4 cannot mmap arrays: libbpf drops BPF_F_MMAPABLE
    // from `.bss` silently and a skeleton's pointer to it is NULL there.
    let Some(report) = passing_on_5_10_then_5_4("globals", "global_data_a_skeleton_cannot_mmap…")
    else {
        return;
    };
    let c = assert_fail(
        &report,
        "globals",
        "ubuntu-20.04-5.4",
        "UNSUPPORTED_FEATURE",
    );
    says(&c, "remediation", &["needs Linux 5.5"]);
    // A loader without a skeleton declares so, and the cell passes.
    let c = test_on(&["ubuntu-20.04-5.4"], &["globals"]);
    let (_, report) = report_with_config(c, "[objects.globals]\nskeleton = false\n");
    assert_pass(&report, "globals", "ubuntu-20.04-5.4");
}

#[test]
fn a_cgroup_link_refused_before_5_7_is_named_with_the_older_way_to_attach() {
    // cgroup programs attach through BPF_PROG_ATTACH from 4.10 and through a
    // BPF link, libbpf's way, from 5.7: on 5.4 the link is what is refused.
    let Some(report) = passing_on_5_10_then_5_4("cgroup_skb", "a_cgroup_link_refused_before_5_7…")
    else {
        return;
    };
    let c = assert_fail(
        &report,
        "cgroup_skb",
        "ubuntu-20.04-5.4",
        "UNSUPPORTED_ATTACH_TYPE",
    );
    assert_eq!(c["stage"], "attach", "{c:#}");
    assert_eq!(c["programs"][0]["load"], "ok", "{c:#}");
    says(
        &c,
        "remediation",
        &[
            "cgroup attachments through a BPF link need Linux 5.7",
            "bpf_prog_attach",
        ],
    );
}

#[test]
fn programs_on_one_hook_the_same_way_are_both_judged_not_chosen_between() {
    // Two tracepoint programs on one tracepoint both run under their
    // loader: the one calling bpf_get_attach_cookie (5.15) fails on 5.10,
    // and the other passing there does not hide it.
    let (_, report) = with_report(test_on(
        &["debian-11-5.10", "debian-12-6.1"],
        &["same_hook"],
    ));
    let c = assert_fail(&report, "same_hook", "debian-11-5.10", "UNSUPPORTED_HELPER");
    assert_eq!(c["program"], "tag_getpid", "{c:#}");
    assert_pass(&report, "same_hook", "debian-12-6.1");
}

#[test]
fn programs_on_one_hook_by_different_mechanisms_are_alternatives_the_kernel_chooses_from() {
    // 5.10 rejects the fentry program (bpf_get_func_ip is 5.15): the kprobe
    // fallback is chosen and the object passes; 6.1 gets the fentry one.
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let (out, report) = with_report(test_on(&kernels, &["alternatives"]));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for (k, chosen) in [
        ("debian-11-5.10", "unlink_kprobe"),
        ("debian-12-6.1", "unlink_fentry"),
    ] {
        let c = cell(&report, "alternatives", k);
        assert_eq!(c["status"], "pass", "{c:#}");
        assert_eq!(c["variants"][0]["chosen"], chosen, "{c:#}");
        assert_eq!(c["variants"][0]["inferred"], true, "{c:#}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(
        &stdout,
        &["alternative alternatives.bpf.o on debian-11-5.10: unlink_kprobe"],
    );
}

#[test]
fn a_program_declared_optional_is_shown_failing_but_not_counted() {
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    // As compiled: the missing tracepoint fails the object.
    let (out, report) = with_report(test_on(&kernels, &["optional"]));
    assert_eq!(out.status.code(), Some(2));
    for k in kernels {
        let c = assert_fail(&report, "optional", k, "MISSING_ATTACH_TARGET");
        assert_eq!(c["program"], "on_riscv_flush_icache", "{c:#}");
    }
    // A hook no kernel of the run has: the note says how a loader's real
    // target is stated, the verdicts stay.
    mentions(
        &report["notes"].to_string(),
        &[
            "attaches to `syscalls/sys_enter_riscv_flush_icache`, which none of the 2 kernels of this run has",
        ],
    );
    // Declared optional, as its loader treats it: the object passes, and the
    // program still shows its failure.
    let c = test_on(&kernels, &["optional"]);
    let (out, report) = report_with_config(
        c,
        "[objects.optional.programs.on_riscv_flush_icache]\noptional = true\n",
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for k in kernels {
        let c = cell(&report, "optional", k);
        assert_eq!(c["status"], "pass", "{c:#}");
        let p = entry(c, "programs", &[("name", "on_riscv_flush_icache")]);
        assert_eq!(p["optional"], true, "{p:#}");
        assert!(p["attach"].as_str().unwrap().starts_with("failed"), "{p:#}");
    }
}

#[test]
fn a_declared_ring_buffer_fallback_is_taken_only_where_ring_buffers_are_missing() {
    // Ring buffers need 5.8: Ubuntu 20.04's 5.4 takes the declared perf
    // buffer fallback; Debian 12 keeps the ring buffer.
    let mut kernels = vec!["debian-12-6.1".to_string()];
    kernels.extend(kernels_with_mirror(&["ubuntu-20.04-5.4"]));
    let kernels: Vec<&str> = kernels.iter().map(String::as_str).collect();
    let c = test_on(&kernels, &["ringbuf_fallback"]);
    let (out, report) = report_with_config(
        c,
        "[objects.ringbuf_fallback.maps.events]\nfallback_type = \"perf_event_array\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let on12 = cell(&report, "ringbuf_fallback", "debian-12-6.1");
    assert_eq!(on12["status"], "pass", "{on12:#}");
    assert!(
        on12["assumptions"].as_array().unwrap().is_empty(),
        "{on12:#}"
    );
    if kernels.len() == 1 {
        bpfcompat_e2e::skip(
            "a_declared_ring_buffer_fallback…: 5.4 part needs BPFCOMPAT_MIRROR_UBUNTU",
        );
        return;
    }
    let c = assert_pass_with_assumption(&report, "ringbuf_fallback", "ubuntu-20.04-5.4");
    mentions(&c, &["declared fallback perf_event_array"]);
    // Without the declaration the kernel's verdict stands.
    let (_, report) = with_report(test_on(&["ubuntu-20.04-5.4"], &["ringbuf_fallback"]));
    assert_fail(
        &report,
        "ringbuf_fallback",
        "ubuntu-20.04-5.4",
        "UNSUPPORTED_MAP_TYPE",
    );
}

#[test]
fn a_tool_with_a_raw_tp_fallback_passes_where_its_tp_btf_program_works_and_is_blamed_precisely_elsewhere()
 {
    // 6.1 lets tracing programs read socket cookies: the tp_btf program is
    // chosen and the raw_tp fallback's failure is not the object's. On 5.10
    // neither works; the helper exists there, only not for these types.
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let (_, report) = with_report(test_on(&kernels, &["tool"]));
    let c = cell(&report, "tool", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    assert_eq!(c["variants"][0]["chosen"], "state_btf", "{c:#}");
    let c = assert_fail(&report, "tool", "debian-11-5.10", "UNSUPPORTED_HELPER");
    assert_eq!(c["program"], "state_btf", "{c:#}");
    says(
        &c,
        "remediation",
        &["exists on this kernel (since Linux 4.12) but not for tracing programs"],
    );
}

#[test]
fn survey_boots_each_kernel_and_tabulates_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("kernels.md");
    let mut c = bpfcompat_e2e::cli(&[
        "kernels",
        "survey",
        "--matrix",
        "all",
        "--kernel",
        "debian-12-6.1",
        "--kernel",
        "debian-13-backports",
    ]);
    c.arg("--markdown").arg(&md);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0));
    let table = std::fs::read_to_string(&md).unwrap();
    assert_eq!(table, String::from_utf8_lossy(&out.stdout));
    let row = |k: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| `{k}` |")))
            .unwrap_or_else(|| panic!("{k}: {table}"))
            .to_string()
    };
    // What the guest said: booted, its release, BTF, the LSMs, the options.
    mentions(
        &row("debian-12-6.1"),
        &[
            "| yes |",
            "| 6.1.0-",
            "-cloud-amd64 | yes |",
            ",bpf |",
            "BPF_LSM",
        ],
    );
    mentions(
        &row("debian-13-backports"),
        &["| yes |", "+deb13-cloud-amd64"],
    );
}

/// The cached debian-12-6.1 kernel: its vmlinuz, config and release.
pub(super) fn debian_12_image() -> (std::path::PathBuf, std::path::PathBuf, String) {
    cached_image("debian-12-6.1")
}

/// A profile's kernel, fetched into the cache: its image, its config and
/// its release.
pub(super) fn cached_image(kernel: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let out = run(bpfcompat_e2e::cli(&[
        "kernels", "fetch", "--kernel", kernel,
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{kernel}: ");
    let line = stdout.lines().find(|l| l.starts_with(&prefix)).unwrap();
    let (release, vmlinuz) = line[prefix.len()..].split_once(" at ").unwrap();
    let vmlinuz = std::path::PathBuf::from(vmlinuz);
    let config = vmlinuz.with_file_name("config");
    (vmlinuz, config, release.to_string())
}

/// A `.deb` holding `./boot/vmlinuz-REL`, `./boot/config-REL` and the
/// guest modules of debian-12's cache entry, as a vendor's kernel package
/// would.
pub(super) fn vendor_deb(
    path: &std::path::Path,
    vmlinuz: &std::path::Path,
    config: &std::path::Path,
    release: &str,
) {
    deb(path, vmlinuz, config, release, &[], true);
}

/// [`vendor_deb`] with more files (path in the package, bytes) and its
/// `data.tar` not compressed (quick to make many of).
pub(super) fn vendor_deb_with(
    path: &std::path::Path,
    vmlinuz: &std::path::Path,
    config: &std::path::Path,
    release: &str,
    extra: &[(String, Vec<u8>)],
) {
    deb(path, vmlinuz, config, release, extra, false);
}

fn deb(
    path: &std::path::Path,
    vmlinuz: &std::path::Path,
    config: &std::path::Path,
    release: &str,
    extra: &[(String, Vec<u8>)],
    xz: bool,
) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    for (name, file) in [("vmlinuz", vmlinuz), ("config", config)] {
        tar.append_path_with_name(file, format!("./boot/{name}-{release}"))
            .unwrap();
    }
    for e in std::fs::read_dir(vmlinuz.with_file_name("modules"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        tar.append_path_with_name(
            e.path(),
            format!("./lib/modules/{release}/kernel/net/{name}"),
        )
        .unwrap();
    }
    let (member, data) = match xz {
        true => {
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
            std::io::Write::write_all(&mut xz, &tar.into_inner().unwrap()).unwrap();
            ("data.tar.xz", xz.finish().unwrap())
        }
        false => ("data.tar", tar.into_inner().unwrap()),
    };
    let mut ar = ar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in [("debian-binary", &b"2.0\n"[..]), (member, &data[..])] {
        ar.append(
            &ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64),
            bytes,
        )
        .unwrap();
    }
}

#[test]
fn your_own_kernel_from_a_deb_or_a_vmlinuz_is_booted_and_judged() {
    let (vmlinuz, config, release) = debian_12_image();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&vmlinuz, dir.path().join("vmlinuz")).unwrap();
    std::fs::copy(&config, dir.path().join("config")).unwrap();
    // A build tree's modules: loose `.ko` files in a directory of their own.
    let mods = dir.path().join("mods/net");
    std::fs::create_dir_all(&mods).unwrap();
    for e in std::fs::read_dir(vmlinuz.with_file_name("modules"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
    {
        std::fs::copy(e.path(), mods.join(e.file_name())).unwrap();
    }
    vendor_deb(&dir.path().join("vendor.deb"), &vmlinuz, &config, &release);
    let matrix = dir.path().join("mine.toml");
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"vendor-deb\"\nfile = \"vendor.deb\"\n\n\
         [[kernel]]\nname = \"vendor-vmlinuz\"\nfile = \"vmlinuz\"\nconfig = \"config\"\nmodules_dir = \"mods\"\n",
    )
    .unwrap();
    // A private cache: the entries are keyed by these files' digests.
    let cache = dir.path().join("cache");
    let mut c = bpfcompat_e2e::cli(&["test", "--matrix", matrix.to_str().unwrap()]);
    // tc needs clsact and cls_bpf, modules on this kernel: they come from
    // the .deb, and from the modules directory beside the vmlinuz.
    c.args(["--object"])
        .arg(bpfcompat_e2e::fixture("ringbuf"))
        .arg("--object")
        .arg(bpfcompat_e2e::fixture("tc"))
        .env("BPFCOMPAT_CACHE", &cache);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for k in ["vendor-deb", "vendor-vmlinuz"] {
        let run = entry(&report, "kernels", &[("kernel", k)]);
        assert_eq!(run["release"], release.as_str(), "{run:#}");
        assert_eq!(run["kernel_config"]["CONFIG_BPF_LSM"], "y", "{run:#}");
        assert_eq!(cell(&report, "ringbuf", k)["status"], "pass");
        assert_eq!(cell(&report, "tc", k)["status"], "pass", "{report:#}");
    }
}

#[test]
fn a_cache_disk_without_room_for_a_saved_machine_boots_cold_and_says_why() {
    if !bpfcompat_e2e::root_or_skip("needs root to mount a small tmpfs") {
        return;
    }
    // Room for the kernel (an own vmlinuz), not for a 512 MiB machine.
    let (vmlinuz, _, _) = debian_12_image();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&vmlinuz, dir.path().join("vmlinuz")).unwrap();
    let matrix = dir.path().join("mine.toml");
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"small-disk\"\nfile = \"vmlinuz\"\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs"])
        .arg(&cache)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        bpfcompat_e2e::skip("cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&cache);
    let mut c = bpfcompat_e2e::cli(&["test", "--matrix", matrix.to_str().unwrap()]);
    c.arg("--object")
        .arg(bpfcompat_e2e::fixture("ringbuf"))
        .env("BPFCOMPAT_CACHE", &cache);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let run = entry(&report, "kernels", &[("kernel", "small-disk")]);
    assert!(
        run["cold_reason"]
            .to_string()
            .contains("the cache's disk is full"),
        "{run:#}"
    );
    assert!(
        !run["cold_reason"].to_string().contains("Broken pipe"),
        "{run:#}"
    );
    assert_eq!(cell(&report, "ringbuf", "small-disk")["status"], "pass");
    // Nothing half-saved stays behind.
    let left: Vec<_> = std::fs::read_dir(cache.join("snapshots"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().ends_with(".state")),
        "{left:?}"
    );
}

#[test]
fn modules_the_guest_cannot_load_are_never_blamed_on_a_program() {
    // The same kernel, with its tc modules replaced by garbage (as a
    // package built for another kernel would give): they do not load, and
    // the tc program's attach failure is the guest's, not the program's.
    let (vmlinuz, config, _) = debian_12_image();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&vmlinuz, dir.path().join("vmlinuz")).unwrap();
    std::fs::copy(&config, dir.path().join("config")).unwrap();
    let mods = dir.path().join("garbage/net");
    std::fs::create_dir_all(&mods).unwrap();
    for e in std::fs::read_dir(vmlinuz.with_file_name("modules"))
        .unwrap()
        .flatten()
    {
        std::fs::write(mods.join(e.file_name()), b"not a module at all").unwrap();
    }
    let matrix = dir.path().join("mine.toml");
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"garbage-modules\"\nfile = \"vmlinuz\"\nconfig = \"config\"\nmodules_dir = \"garbage\"\n",
    )
    .unwrap();
    let mut c = bpfcompat_e2e::cli(&["test", "--matrix", matrix.to_str().unwrap()]);
    c.args(["--object"])
        .arg(bpfcompat_e2e::fixture("ringbuf"))
        .arg("--object")
        .arg(bpfcompat_e2e::fixture("tc"))
        .env("BPFCOMPAT_CACHE", dir.path().join("cache"));
    let (_, report) = with_report(c);
    let run = entry(&report, "kernels", &[("kernel", "garbage-modules")]);
    let missing = run["modules_not_loaded"].to_string();
    assert!(missing.contains("cls_bpf"), "{run:#}");
    let tc = cell(&report, "tc", "garbage-modules");
    assert_eq!(tc["status"], "infra_error", "{tc:#}");
    assert_ne!(tc["code"], "MISSING_ATTACH_TARGET", "{tc:#}");
    assert!(
        tc["message"].to_string().contains("could not load"),
        "{tc:#}"
    );
    // What needs no module keeps its verdict, and says what happened.
    let ringbuf = cell(&report, "ringbuf", "garbage-modules");
    assert_eq!(ringbuf["status"], "pass", "{ringbuf:#}");
    assert!(
        ringbuf["assumptions"]
            .to_string()
            .contains("could not load the module"),
        "{ringbuf:#}"
    );
}

#[test]
fn a_link_type_the_kernel_lacks_fails_at_attach_even_when_the_program_loads() {
    // uprobe.multi, tcx and netkit programs load on 6.1; attaching them (to
    // a function of the agent, to lo, to a netkit device) is what the kernel
    // refuses there, and accepts on 6.12.
    // Programs a loader places itself (XDP for devmap/cpumap entries, a tc
    // action) are not attached as plain XDP or tc, which is refused.
    let (out, report) = with_report(test_on(
        &["debian-12-6.1", "debian-13-6.12"],
        &["uprobe_multi", "tcx", "netkit", "unattached"],
    ));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    for k in ["debian-12-6.1", "debian-13-6.12"] {
        let c = cell(&report, "unattached", k);
        assert_eq!(c["status"], "pass", "{c:#}");
        for p in c["programs"].as_array().unwrap() {
            assert_eq!(p["load"], "ok", "{c:#}");
            assert!(
                p["attach"].as_str().unwrap().contains("its loader"),
                "{c:#}"
            );
        }
    }
    for (object, floor) in [
        ("uprobe_multi", "uprobe.multi links need Linux 6.6"),
        ("tcx", "tcx links need Linux 6.6"),
        ("netkit", "netkit links need Linux 6.7"),
    ] {
        let c = assert_fail(&report, object, "debian-12-6.1", "UNSUPPORTED_ATTACH_TYPE");
        assert_eq!(c["stage"], "attach", "{c:#}");
        assert_eq!(c["programs"][0]["load"], "ok", "{c:#}");
        says(&c, "remediation", &[floor]);
        assert_pass(&report, object, "debian-13-6.12");
    }
}

#[test]
fn a_struct_ops_map_the_loader_never_registers_is_blamed_alone_and_autocreate_off_leaves_it_out() {
    // Registering the incomplete map is refused: the map is named and only
    // its program is blamed; its complete neighbour's programs attach.
    let (_, report) = with_report(test_on(&["debian-12-6.1"], &["struct_ops_unused"]));
    let c = assert_fail(
        &report,
        "struct_ops_unused",
        "debian-12-6.1",
        "ATTACH_FAILED",
    );
    assert_eq!(c["program"], "half_ssthresh", "{c:#}");
    says(&c, "message", &["struct_ops map `cc_incomplete`"]);
    says(&c, "remediation", &["autocreate = false"]);
    let used = entry(&c, "programs", &[("name", "cc_ssthresh")]);
    assert_eq!(used["attach"], "ok", "{c:#}");
    // The loader leaves it out: so does the validator.
    let (out, report) = report_with_config(
        test_on(&["debian-12-6.1"], &["struct_ops_unused"]),
        "[objects.struct_ops_unused.maps.cc_incomplete]\nautocreate = false\n",
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let c = cell(&report, "struct_ops_unused", "debian-12-6.1");
    let off = entry(c, "programs", &[("name", "half_ssthresh")]);
    says(off, "load", &["autocreate = false"]);
}

#[test]
fn every_blocker_and_the_floor_are_named_and_each_failure_placed_against_it() {
    // floor.bpf.o: a bloom filter (5.16) and bpf_loop (5.17). On 5.10 the
    // map is refused first; the object's floor is bpf_loop's 5.17, and the
    // failure is below it: expected. rejected.bpf.o fails the verifier on
    // 6.1, above its floor: not the release's doing.
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let dir = tempfile::tempdir().unwrap();
    let (html, md) = (dir.path().join("r.html"), dir.path().join("r.md"));
    let mut c = test_on(&kernels, &["floor", "rejected"]);
    c.arg("--html").arg(&html).arg("--markdown").arg(&md);
    let (out, report) = with_report(c);
    let c = assert_fail(&report, "floor", "debian-11-5.10", "UNSUPPORTED_MAP_TYPE");
    assert_eq!(c["floor"], "below", "{c:#}");
    assert_pass(&report, "floor", "debian-12-6.1");
    let f = entry(&report, "floors", &[("object", "floor.bpf.o")]);
    assert_eq!(f["floor"], "5.17", "{f:#}");
    for feature in ["bpf_loop", "bloom_filter map `seen`", "callbacks"] {
        assert!(
            f["needs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["feature"].as_str().unwrap().starts_with(feature)),
            "{feature}: {f:#}"
        );
    }
    let c = assert_fail(&report, "rejected", "debian-12-6.1", "VERIFIER_REJECTED");
    assert_eq!(c["floor"], "at_or_above", "{c:#}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(
        &stdout,
        &[
            "FLOOR floor.bpf.o: Linux 5.17 (bpf_loop)",
            "older than the object's floor, Linux 5.17",
            "at or above the object's floor",
        ],
    );
    // Every view says it.
    let md = std::fs::read_to_string(md).unwrap();
    mentions(
        &md,
        &["- floor: this kernel is older than the object's floor, Linux 5.17"],
    );
    let html = std::fs::read_to_string(html).unwrap();
    mentions(&html, &["older than the object", "Linux 5.17"]);
}

#[test]
fn old_kernels_words_name_the_feature_they_lack() {
    // Each feature on the oldest catalogue kernel without it, in that
    // kernel's own words (or its silence): Ubuntu's 4.4 and 4.15 and 5.4
    // where a mirror is set; Debian's 5.10 always.
    let mirrored = !kernels_with_mirror(&["ubuntu-16.04-4.15"]).is_empty();
    let mut kernels = vec!["debian-11-5.10"];
    if mirrored {
        kernels.extend(["ubuntu-16.04-4.4", "ubuntu-16.04-4.15", "ubuntu-20.04-5.4"]);
    } else {
        bpfcompat_e2e::skip("old_kernels_words…: 4.4, 4.15 and 5.4 need BPFCOMPAT_MIRROR_UBUNTU");
    }
    let fixtures = [
        "old_atomics",
        "old_calls",
        "old_gpl",
        "old_big",
        "xdp_frags",
        "sleepable_uprobe",
    ];
    let mut c = test_on(&kernels, &fixtures);
    c.args(["--matrix", "all"]);
    let (_, report) = with_report(c);
    let expect = |object: &str, kernel: &str, code: &str, fix: &str| {
        let c = assert_fail(&report, object, kernel, code);
        says(&c, "remediation", &[fix]);
    };
    expect(
        "old_atomics",
        "debian-11-5.10",
        "UNSUPPORTED_FEATURE",
        "need Linux 5.12",
    );
    expect(
        "xdp_frags",
        "debian-11-5.10",
        "UNSUPPORTED_FEATURE",
        "need Linux 5.18",
    );
    expect(
        "sleepable_uprobe",
        "debian-11-5.10",
        "UNSUPPORTED_FEATURE",
        "needs Linux 6.1",
    );
    assert_pass(&report, "old_calls", "debian-11-5.10");
    assert_pass(&report, "old_big", "debian-11-5.10");
    expect(
        "old_gpl",
        "debian-11-5.10",
        "GPL_ONLY",
        "GPL-compatible license",
    );
    if !mirrored {
        return;
    }
    for k in ["ubuntu-16.04-4.4", "ubuntu-16.04-4.15"] {
        // "BPF_STX uses reserved fields", "unreachable insn", the old GPL
        // wording, and a long program refused without a log.
        expect("old_atomics", k, "UNSUPPORTED_FEATURE", "need Linux 5.12");
        expect("old_calls", k, "UNSUPPORTED_FEATURE", "need Linux 4.16");
        expect("old_gpl", k, "GPL_ONLY", "GPL-compatible license");
        expect("old_big", k, "VERIFIER_LIMIT", "need Linux 5.2");
        expect(
            "sleepable_uprobe",
            k,
            "UNSUPPORTED_FEATURE",
            "need Linux 5.10",
        );
    }
    expect(
        "xdp_frags",
        "ubuntu-16.04-4.15",
        "UNSUPPORTED_FEATURE",
        "need Linux 5.18",
    );
    // No XDP at all on 4.4: the program type's probe says so first.
    expect(
        "xdp_frags",
        "ubuntu-16.04-4.4",
        "UNSUPPORTED_PROG_TYPE",
        "needs Linux 4.8",
    );
    assert_pass(&report, "old_calls", "ubuntu-20.04-5.4");
}
