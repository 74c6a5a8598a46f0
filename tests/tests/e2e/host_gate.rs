//! The pre-load gate on this machine's own kernel: real bpf() calls, no VM.
//! These tests need root (CI runs as root); elsewhere they say so and skip.

use bpfcompat_e2e::{cli, examples, fixture, mentions, root_or_skip, run, says, with_report};
use serde_json::Value;

/// Names of the BPF programs loaded on this machine, from bpftool.
fn loaded_programs() -> Vec<String> {
    let out = std::process::Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("bpftool is installed (scripts/setup)");
    assert!(out.status.success(), "{out:?}");
    let progs: Value = serde_json::from_slice(&out.stdout).unwrap();
    progs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn gate_passes_good_objects_fails_rejected_ones_and_leaves_nothing_loaded() {
    if !root_or_skip("gate_passes_good_objects…: needs root") {
        return;
    }
    let check = |object: &str| {
        let mut c = cli(&["check"]);
        c.arg(fixture(object));
        c
    };
    let (out, report) = with_report(check("ringbuf"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["cells"][0]["status"], "pass");
    assert_eq!(report["kernels"][0]["kernel"], "host");

    let (out, report) = with_report(check("rejected"));
    assert_eq!(out.status.code(), Some(2));
    let cell = &report["cells"][0];
    assert_eq!(cell["code"], "VERIFIER_REJECTED", "{cell:#}");
    says(cell, "message", &["map_value_or_null"]);

    // A cgroup program attaches where this host mounts cgroup v2 (under
    // /sys/fs/cgroup/unified with the hybrid layout).
    let (out, report) = with_report(check("cgroup_skb").arg("--attach"));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["cells"][0]["status"], "pass", "{report:#}");

    // fentry loads here on most hosts; where the kernel refuses it with
    // EPERM and no verifier log (lockdown, LSM policy), a 6.x kernel that has
    // tracing programs is not told it needs Linux 5.5.
    let (_, report) = with_report(check("fentry"));
    let cell = &report["cells"][0];
    if cell["status"] != "pass" {
        assert_eq!(cell["code"], "PERMISSION", "{cell:#}");
    }

    // With attach too, then nothing of ours may remain.
    run(check("ringbuf").arg("--attach").arg(fixture("kprobe")));
    let loaded = loaded_programs();
    for ours in ["on_getpid", "count_open", "unchecked_looku", "allow_egress"] {
        assert!(
            !loaded.iter().any(|n| n.starts_with(ours)),
            "{ours} still loaded: {loaded:?}"
        );
    }
}

#[test]
fn gate_without_privileges_says_which_are_missing() {
    if !root_or_skip("gate_without_privileges…: needs root to drop to nobody") {
        return;
    }
    let bin = bpfcompat_e2e::workspace_bin("cargo-bpfcompat");
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(bin)
        .args(["check", fixture("ringbuf").to_str().unwrap()])
        .output()
        .expect("setpriv (util-linux) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    mentions(&err, &["CAP_BPF", "CAP_PERFMON", "hint:"]);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_non_utf8_section_name_gets_a_verdict_not_an_abort() {
    if !root_or_skip("a_non_utf8_section_name…: needs root") {
        return;
    }
    // The kprobe fixture with one byte of its section name made invalid UTF-8:
    // libbpf prints that name, and a panicking print callback aborted (134).
    let mut patched = std::fs::read(fixture("kprobe")).unwrap();
    let at: Vec<usize> = patched
        .windows(7)
        .enumerate()
        .filter(|(_, w)| *w == b"kprobe/")
        .map(|(i, _)| i + 7)
        .collect();
    assert!(!at.is_empty(), "a kprobe/ section name");
    for i in at {
        patched[i] = 0xff;
    }
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("nonutf8.bpf.o");
    std::fs::write(&obj, patched).unwrap();
    let (out, report) = with_report(cli(&["check"]).arg(&obj));
    let code = out.status.code();
    assert!(code == Some(0) || code == Some(2), "{out:?}");
    let status = report["cells"][0]["status"].as_str().unwrap();
    assert!(status == "pass" || status == "fail", "{report:#}");
}

#[test]
fn a_trigger_that_cannot_run_is_its_own_error_not_not_fired() {
    if !root_or_skip("a_trigger_that_cannot_run…: needs root") {
        return;
    }
    let mut c = cli(&[
        "check",
        "--mode",
        "fire",
        "--trigger",
        "/nonexistent/trigger --go",
    ]);
    c.arg(fixture("ringbuf"));
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let cell = &report["cells"][0];
    assert_eq!(cell["status"], "infra_error", "{cell:#}");
    assert_ne!(cell["code"], "NOT_FIRED", "{cell:#}");
    let message = cell["message"].as_str().unwrap();
    assert!(
        message.contains("/nonexistent/trigger") && message.contains("cannot run"),
        "{cell:#}"
    );
}

#[test]
fn the_gate_judges_aya_objects_the_way_aya_loads_them() {
    if !root_or_skip("the_gate_judges_aya_objects…: needs root") {
        return;
    }
    // libbpf cannot open the aya template's legacy maps; aya loads it here.
    let template = bpfcompat_e2e::examples().join("aya/objects/template.bpf.o");
    let (out, report) = with_report(cli(&["check"]).arg(&template));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["cells"][0]["status"], "pass", "{report:#}");
    assert!(
        !loaded_programs().iter().any(|n| n.starts_with("template")),
        "nothing of ours stays loaded"
    );
}

#[test]
fn maps_pinned_by_name_are_judged_without_touching_bpffs() {
    if !root_or_skip("maps_pinned_by_name…: needs root") {
        return;
    }
    // A live map of the same name and another type where the object pins
    // its own: a loader that reused it would be refused as incompatible.
    let pin = std::path::Path::new("/sys/fs/bpf/bpfcompat_shared");
    let _ = std::fs::remove_file(pin);
    let bpftool = |args: &[&str]| {
        let out = std::process::Command::new("bpftool")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    bpftool(&[
        "map",
        "create",
        "/sys/fs/bpf/bpfcompat_shared",
        "type",
        "array",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "1",
        "name",
        "live",
    ]);
    let before: Vec<_> = std::fs::read_dir("/sys/fs/bpf")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let mut c = cli(&["check"]);
    c.arg(fixture("pinned_maps"));
    let (out, report) = with_report(c);
    let after: Vec<_> = std::fs::read_dir("/sys/fs/bpf")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let live = bpftool(&[
        "-j",
        "map",
        "show",
        "pinned",
        "/sys/fs/bpf/bpfcompat_shared",
    ]);
    let _ = std::fs::remove_file(pin);
    // A maps-only object is judged (its maps are created), not refused.
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let cell = &report["cells"][0];
    assert_eq!(cell["status"], "pass", "{cell:#}");
    says(
        cell,
        "assumptions",
        &["`bpfcompat_shared` is pinned by name"],
    );
    assert_eq!(before, after, "the check left bpffs as it found it");
    assert!(
        live.contains("\"type\":\"array\""),
        "the live map is untouched: {live}"
    );
}

/// Runs `tc` on this machine; its stdout.
fn tc(args: &[&str]) -> String {
    let out = std::process::Command::new("tc")
        .args(args)
        .output()
        .expect("tc is installed (iproute2, scripts/setup)");
    assert!(out.status.success(), "tc {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the clsact qdisc of `lo` (and its filters) when dropped.
struct ClsactOnLo;

impl Drop for ClsactOnLo {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tc")
            .args(["qdisc", "del", "dev", "lo", "clsact"])
            .output();
    }
}

#[test]
fn a_tc_attach_replaces_no_filter_of_the_host_and_leaves_no_qdisc() {
    if !root_or_skip("a_tc_attach_replaces_no_filter…: needs root") {
        return;
    }
    let check = || {
        let mut c = cli(&["check", "--attach"]);
        c.arg(fixture("tc"));
        with_report(c)
    };
    if tc(&["qdisc", "show", "dev", "lo"]).contains("clsact") {
        eprintln!("lo already has a clsact qdisc here: the qdisc half is not tested");
    } else {
        let (out, report) = check();
        assert_eq!(out.status.code(), Some(0), "{report:#}");
        assert_eq!(report["cells"][0]["status"], "pass", "{report:#}");
        let qdiscs = tc(&["qdisc", "show", "dev", "lo"]);
        assert!(
            !qdiscs.contains("clsact"),
            "a qdisc stayed behind: {qdiscs}"
        );
    }
    // A running tool's filter where libbpf's examples put theirs: handle 1,
    // priority 1. The check must attach beside it and leave it as it was.
    let _cleanup = ClsactOnLo;
    // Already there if the host had one.
    let _ = std::process::Command::new("tc")
        .args(["qdisc", "add", "dev", "lo", "clsact"])
        .output();
    let obj = fixture("tc");
    let obj = obj.to_str().unwrap();
    tc(&[
        "filter", "add", "dev", "lo", "ingress", "pref", "1", "handle", "1", "bpf", "da", "obj",
        obj, "sec", "tc",
    ]);
    let before = tc(&["filter", "show", "dev", "lo", "ingress"]);
    let (out, report) = check();
    let after = tc(&["filter", "show", "dev", "lo", "ingress"]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["cells"][0]["status"], "pass", "{report:#}");
    assert!(before.contains("handle 0x1"), "{before}");
    assert_eq!(before, after, "the host's own filter is untouched");
}

/// `check --mode fire` of the fixture `object`, whose trigger is the bash
/// script `script(port, found)` makes: `port` is a TCP listener's on
/// 127.0.0.1, `found` the file the script writes what it saw to. The
/// outcome, the report and what the script wrote.
fn fire_check_with_probe(
    object: &str,
    script: impl Fn(u16, &str) -> String,
) -> (std::process::Output, Value, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let found = dir.path().join("found");
    let script = script(port, found.to_str().unwrap());
    let mut c = cli(&["check", "--mode", "fire", "--trigger"]);
    c.arg(format!("bash -c '{script}'")).arg(fixture(object));
    let (out, report) = with_report(c);
    let seen = std::fs::read_to_string(&found).unwrap_or_default();
    (out, report, seen.trim().to_string())
}

#[test]
fn cgroup_programs_checked_on_a_host_act_on_no_process_of_the_host() {
    if !root_or_skip("cgroup_programs_checked_on_a_host…: needs root") {
        return;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let Some(root) = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
    }) else {
        bpfcompat_e2e::skip("cgroup_programs_checked_on_a_host…: no cgroup2 mounted here");
        return;
    };
    // A program that refuses every socket, checked in fire mode. The trigger
    // opens a socket where the check runs it, then moves itself to the root
    // cgroup, where the host's processes are, and opens another: that one
    // must not be refused.
    let (out, report, outside) = fire_check_with_probe("deny_sockets", |port, found| {
        let connect = format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null");
        format!(
            "{connect}; echo $$ > {root}/cgroup.procs && {connect} && echo allowed > {found} || echo refused > {found}"
        )
    });
    let cell = &report["cells"][0];
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    // The program ran (for the trigger's first socket) ...
    assert_eq!(cell["status"], "pass", "{cell:#}");
    assert!(
        cell["programs"][0]["runs"].as_u64().unwrap() >= 1,
        "{cell:#}"
    );
    // ... and the host's processes were not under it, as the cell says.
    assert_eq!(outside, "allowed");
    says(cell, "assumptions", &["a cgroup made for this check"]);
    // The cgroup made for it is gone: any left belongs to a check still
    // running (another test's).
    let left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("bpfcompat-check-")?
                .split('-')
                .next()?
                .to_string();
            (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(name)
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn xdp_and_tc_programs_checked_on_a_host_see_none_of_its_traffic() {
    if !root_or_skip("xdp_and_tc_programs_checked_on_a_host…: needs root") {
        return;
    }
    // Programs that drop every packet, checked in fire mode. The trigger
    // connects over `lo`, as the host's own services do: it must get through.
    // The programs run on packets the check sends through a veth pair of its
    // own, which is gone afterwards.
    let (out, report, lo) = fire_check_with_probe("drop_all", |port, found| {
        format!(
            "timeout 5 bash -c \"(exec 3<>/dev/tcp/127.0.0.1/{port})\" 2>/dev/null && echo through > {found} || echo dropped > {found}"
        )
    });
    let cell = &report["cells"][0];
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for p in cell["programs"].as_array().unwrap() {
        assert!(p["runs"].as_u64().unwrap() >= 1, "{cell:#}");
    }
    assert_eq!(lo, "through");
    says(cell, "assumptions", &["a veth pair made for this check"]);
    // Any left belongs to a check still running (another test's).
    let left: Vec<_> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let pid = n
                .strip_prefix("bpfve")
                .map(|p| p.trim_end_matches(['a', 'b']));
            pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    assert!(
        left.is_empty(),
        "the check's veth pair stayed behind: {left:?}"
    );
}

#[test]
fn a_check_stopped_by_ctrl_c_removes_what_it_made_and_gives_no_verdict() {
    if !root_or_skip("a_check_stopped_by_ctrl_c…: needs root") {
        return;
    }
    // Stopped while its trigger runs, with programs attached on a veth pair
    // and a cgroup of its own: both are gone afterwards, and the objects,
    // whose trigger was cut short, get no verdict.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut c = cli(&["check", "--mode", "fire", "--trigger", "sleep 20", "--json"]);
    c.arg(&json)
        .arg(fixture("net_hooks"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let made = format!("/sys/class/net/bpfve{}a", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::path::Path::new(&made).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        std::path::Path::new(&made).exists(),
        "the check made no veth pair"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !std::path::Path::new(&made).exists(),
        "{made} stayed behind"
    );
    let cgroups = format!("bpfcompat-check-{}-", child.id());
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(&cgroups), "{root}/{name} stayed behind");
        }
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["cells"][0]["code"], "INTERRUPTED", "{report:#}");
}

#[test]
fn check_reads_the_configuration_and_writes_every_report_as_test_does() {
    if !root_or_skip("check_reads_the_configuration…: needs root") {
        return;
    }
    // A fix-up the loader applies (a key on a ring buffer, which no kernel
    // takes) changes a verdict, and an expected failure keyed by the host
    // kernel's name holds.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bpfcompat.toml");
    std::fs::write(
        &config,
        "[objects.ringbuf.maps.events]\nkey_size = 4\n[objects.rejected.expect_fail]\nhost = \"VERIFIER_REJECTED\"\n",
    )
    .unwrap();
    let md = dir.path().join("check.md");
    let mut c = cli(&["check"]);
    c.arg(fixture("ringbuf"))
        .arg(fixture("rejected"))
        .arg("--config-file")
        .arg(&config)
        .arg("--markdown")
        .arg(&md);
    let (out, report) = with_report(c);
    let cell = |o: &str| {
        report["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["object"] == o)
            .unwrap()
            .clone()
    };
    let ringbuf = cell("ringbuf.bpf.o");
    assert_eq!(ringbuf["status"], "fail", "{ringbuf:#}");
    says(&ringbuf, "message", &["map 'events'"]);
    assert_eq!(cell("rejected.bpf.o")["status"], "expected_fail");
    assert_eq!(out.status.code(), Some(2));
    mentions(
        &std::fs::read_to_string(&md).unwrap(),
        &["# bpfcompat report", "`ringbuf.bpf.o`"],
    );

    // Without OBJECTs, the workspace's objects, as `test` finds them.
    let mut c = cli(&["check", "--manifest-path"]);
    c.arg(examples().join("Cargo.toml"));
    let (out, report) = with_report(c);
    let objects: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for o in ["bounded_loop", "ringbuf", "task_state_guarded"] {
        assert!(objects.contains(&o), "{o} not checked: {objects:?}");
    }
    assert!(out.status.code().is_some());
}
