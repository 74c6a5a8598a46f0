//! Verifier complexity: two builds of one program (a loop of 100 and of
//! 10,000 iterations) on two kernels. The figures reach every report, the
//! longer build fails the growth gate against the shorter one's report, and
//! the reverse passes. On the host, the figures are bpftool's.

use std::path::Path;

use bpfcompat_e2e::{Args, cli, complexity_fixture, entry, root_or_skip, run, with_report};
use serde_json::Value;

const KERNELS: [&str; 2] = ["debian-12-6.1", "debian-13-6.12"];

/// `test` on one build of the fixture, load only, reports in `dir/<tag>.*`.
fn run_build(
    iterations: u32,
    dir: &Path,
    tag: &str,
    extra: &[&str],
) -> (Option<i32>, String, Value) {
    let mut c = cli(&["test", "--mode", "load", "--stats"]);
    c.kernels(&KERNELS)
        .arg("--object")
        .arg(complexity_fixture(iterations))
        .arg("--markdown")
        .arg(dir.join(format!("{tag}.md")))
        .arg("--html")
        .arg(dir.join(format!("{tag}.html")))
        .args(extra);
    let (out, report) = with_report(c);
    std::fs::write(dir.join(format!("{tag}.json")), report.to_string()).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        report,
    )
}

/// The program's processed instructions on each kernel, in `KERNELS` order.
fn processed(report: &Value) -> Vec<u64> {
    KERNELS
        .iter()
        .map(|k| {
            let cell = entry(report, "cells", &[("kernel", k)]);
            let figures = &cell["programs"][0]["complexity"];
            assert_eq!(figures["insns_limit"], 1_000_000, "{cell:#}");
            figures["insns_processed"]
                .as_u64()
                .unwrap_or_else(|| panic!("no figures on {k}: {cell:#}"))
        })
        .collect()
}

#[test]
fn figures_reach_every_report_and_growth_past_the_gate_fails_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, small) = run_build(100, dir.path(), "small", &[]);
    assert_eq!(code, Some(0), "{small:#}");
    let small_insns = processed(&small);
    for (k, n) in KERNELS.iter().zip(&small_insns) {
        let row = stdout
            .lines()
            .find(|l| l.starts_with("walk.bpf.o") && l.contains(k))
            .unwrap_or_else(|| panic!("no --stats row for {k}:\n{stdout}"));
        assert!(row.contains(&format!(" {n} ")), "{row}");
        let md = std::fs::read_to_string(dir.path().join("small.md")).unwrap();
        assert!(
            md.contains("Verifier complexity") && md.contains(&format!("{n} (")),
            "{md}"
        );
        let html = std::fs::read_to_string(dir.path().join("small.html")).unwrap();
        assert!(html.contains("class=\"complexity\"") && html.contains(&format!(">{n} (")));
    }

    // Against the shorter build: the growth is reported, and gated only
    // when asked.
    let small_json = dir.path().join("small.json");
    let against_small = ["--baseline", small_json.to_str().unwrap()];
    let (code, stdout, large) = run_build(10_000, dir.path(), "large", &against_small);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("verifier complexity since the baseline"),
        "{stdout}"
    );
    assert_eq!(large["complexity_growth"].as_array().map(Vec::len), Some(2));
    for (s, l) in small_insns.iter().zip(processed(&large)) {
        assert!(
            l > s * 10,
            "the longer loop should cost far more: {s} vs {l}"
        );
    }
    // Gated, with cell records streamed as each kernel finishes: they are
    // judged as the report judges them.
    let gated = [
        &against_small[..],
        &["--max-complexity-growth", "20%", "--message-format", "json"],
    ]
    .concat();
    let (code, stdout, large_gated) = run_build(10_000, dir.path(), "gated", &gated);
    assert_eq!(code, Some(2), "{stdout}");
    for c in large_gated["cells"].as_array().unwrap() {
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_eq!(c["code"], "COMPLEXITY_REGRESSION", "{c:#}");
        assert!(c["message"].as_str().unwrap().contains("grew"), "{c:#}");
    }
    let streamed: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["reason"] == "cell")
        .collect();
    assert_eq!(streamed.len(), KERNELS.len(), "{stdout}");
    for c in &streamed {
        assert_eq!(c["code"], "COMPLEXITY_REGRESSION", "{c:#}");
    }

    // The reverse passes the same gate.
    let large_json = dir.path().join("large.json");
    let reverse = [
        "--baseline",
        large_json.to_str().unwrap(),
        "--max-complexity-growth",
        "20%",
    ];
    let (code, stdout, _) = run_build(100, dir.path(), "reverse", &reverse);
    assert_eq!(code, Some(0), "{stdout}");

    // `report diff` judges the same two reports the same way.
    let diff = |a: &str, b: &str, gate: &[&str]| {
        let mut c = cli(&["report", "diff"]);
        c.args(gate).arg(dir.path().join(a)).arg(dir.path().join(b));
        run(c).status.code()
    };
    let growth = ["--max-complexity-growth", "20%"];
    assert_eq!(diff("small.json", "large.json", &growth), Some(2));
    assert_eq!(diff("small.json", "large.json", &[]), Some(0));
    assert_eq!(diff("large.json", "small.json", &growth), Some(0));
}

/// `processed N insns` from bpftool's own load of `object` with the
/// verifier's log (`-d` asks for it), and its JIT image size.
fn bpftool_figures(object: &Path) -> (u64, u64) {
    let pin = Path::new("/sys/fs/bpf/bpfcompat-complexity-test");
    let _ = std::fs::remove_dir_all(pin);
    let out = std::process::Command::new("bpftool")
        .arg("-d")
        .args(["prog", "loadall"])
        .arg(object)
        .arg(pin)
        .output()
        .expect("bpftool is installed (scripts/setup)");
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    let processed = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("processed "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no statistics in bpftool's log:\n{log}"));
    let show = std::process::Command::new("bpftool")
        .args(["-j", "prog", "show", "pinned"])
        .arg(pin.join("walk"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(pin);
    let info: Value = serde_json::from_slice(&show.stdout).unwrap();
    (processed, info["bytes_jited"].as_u64().unwrap_or(0))
}

#[test]
fn host_figures_are_what_bpftool_reports() {
    if !root_or_skip("host_figures_are_what_bpftool_reports: needs root") {
        return;
    }
    if !Path::new("/sys/fs/bpf").join(".").exists()
        || std::fs::read_to_string("/proc/mounts").is_ok_and(|m| !m.contains(" /sys/fs/bpf bpf "))
    {
        let ok = std::process::Command::new("mount")
            .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount bpffs for bpftool's pins");
    }
    let object = complexity_fixture(100);
    let mut c = cli(&["check"]);
    c.arg(&object);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let ours = &report["cells"][0]["programs"][0]["complexity"];
    let (processed, jited) = bpftool_figures(&object);
    assert_eq!(
        ours["insns_processed"].as_u64(),
        Some(processed),
        "{ours:#}"
    );
    assert_eq!(ours["jited_bytes"].as_u64(), Some(jited), "{ours:#}");
}
