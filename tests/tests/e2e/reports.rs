//! Reports people and CI read: JSON, Markdown, JUnit and HTML agree cell for
//! cell; shards merge into the unsharded result; baselines gate regressions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bpfcompat_e2e::{
    Args, cli, examples, in_workspace, mentions, report_with_config, run, test_on, with_report,
};
use serde_json::Value;

const KERNELS: [&str; 3] = ["debian-11-5.10", "debian-12-6.1", "debian-13-6.12"];

/// `cargo bpfcompat test` over the example project on the three Debian kernels.
fn example_run(extra: &[&std::ffi::OsStr]) -> (Option<i32>, Value) {
    let mut c = in_workspace("test", &examples().join("Cargo.toml"));
    c.kernels(&KERNELS).args(extra);
    let (out, report) = with_report(c);
    (out.status.code(), report)
}

fn cells(report: &Value) -> BTreeSet<(String, String, String, String)> {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("object"), s("kernel"), s("status"), s("code"))
        })
        .collect()
}

/// The JUnit verdict of every test case: `pass`, `failure` or `skipped`.
fn junit_cases(xml: &str) -> BTreeSet<(String, String, String)> {
    xml.split("<testcase ")
        .skip(1)
        .map(|case| {
            let attr = |name: &str| {
                let start = case.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                case[start..start + case[start..].find('"').unwrap()].to_string()
            };
            let body = &case[..case.find("</testcase>").unwrap_or(case.len())];
            let verdict = if body.contains("<failure") {
                "failure"
            } else if body.contains("<skipped") {
                "skipped"
            } else {
                "pass"
            };
            (attr("classname"), attr("name"), verdict.to_string())
        })
        .collect()
}

fn headless_chromium_dom(html: &Path) -> Option<String> {
    chromium_dom(html, &[])
}

/// The DOM headless Chromium makes of `page` once its scripts ran, with
/// `extra` arguments (a window size); `None` without Chromium.
fn chromium_dom(page: &Path, extra: &[&str]) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn json_markdown_junit_and_html_agree_cell_for_cell() {
    let dir = tempfile::tempdir().unwrap();
    let (md, xml, html) = (
        dir.path().join("r.md"),
        dir.path().join("r.xml"),
        dir.path().join("r.html"),
    );
    let (code, report) = example_run(&[
        "--markdown".as_ref(),
        md.as_ref(),
        "--junit".as_ref(),
        xml.as_ref(),
        "--html".as_ref(),
        html.as_ref(),
    ]);
    assert_eq!(code, Some(0));
    let json_cells = cells(&report);
    assert_eq!(json_cells.len(), 15);
    assert!(
        json_cells.iter().any(|c| c.2 == "expected_fail"),
        "the example has declared floors on 5.10"
    );

    let junit = junit_cases(&std::fs::read_to_string(&xml).unwrap());
    let markdown = std::fs::read_to_string(&md).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    for (object, kernel, status, code) in &json_cells {
        let expected_junit = match status.as_str() {
            "pass" => "pass",
            "fail" | "unexpected_pass" => "failure",
            _ => "skipped",
        };
        assert!(
            junit.contains(&(object.clone(), kernel.clone(), expected_junit.to_string())),
            "JUnit {object} {kernel}: {junit:?}"
        );

        let row = markdown
            .lines()
            .find(|l| l.starts_with(&format!("| `{object}` |")))
            .unwrap();
        let header = markdown
            .lines()
            .find(|l| l.starts_with("| object |"))
            .unwrap();
        let column = header
            .split('|')
            .position(|h| h.trim() == kernel.as_str())
            .unwrap();
        let md_cell = row.split('|').nth(column).unwrap().trim();
        let symbol = match status.as_str() {
            "pass" => "✅",
            "expected_fail" => "🔸",
            "fail" => "❌",
            _ => "?",
        };
        assert!(
            md_cell.starts_with(symbol)
                && md_cell.contains(if code.is_empty() { "" } else { code.as_str() }),
            "Markdown {object} {kernel}: {md_cell}"
        );

        let td = format!(
            "data-object=\"{object}\" data-kernel=\"{kernel}\" data-status=\"{status}\" data-code=\"{code}\""
        );
        assert!(page.contains(&td), "HTML {td}");
    }
    // The page renders in a real browser: every cell is there, in version order, and the filters came alive.
    match headless_chromium_dom(&html) {
        None => panic!("chromium is not installed (scripts/setup installs it)"),
        Some(dom) => {
            for (object, kernel, status, _) in &json_cells {
                assert!(
                    dom.contains(&format!(
                        "data-object=\"{object}\" data-kernel=\"{kernel}\" data-status=\"{status}\""
                    )),
                    "{object} {kernel} not rendered"
                );
            }
            let pos = |k: &str| dom.find(&format!("<th data-kernel=\"{k}\"")).unwrap();
            assert!(
                pos("debian-11-5.10") < pos("debian-12-6.1")
                    && pos("debian-12-6.1") < pos("debian-13-6.12")
            );
            assert!(
                dom.contains("<form id=\"filters\">"),
                "the filter script ran (the form is no longer hidden)"
            );
            // Each kernel's guest: its console's end and QEMU command line,
            // linked from its cells; a failing cell shows the console itself.
            let fail = json_cells
                .iter()
                .find(|(_, _, status, _)| status == "fail" || status == "expected_fail")
                .expect("the example fails somewhere");
            let section = &dom[dom.find(&format!("id=\"guest-{}\"", fail.1)).unwrap()..];
            mentions(
                section,
                &[
                    "<pre class=\"console\">",
                    "QEMU command line",
                    "qemu-system-x86_64",
                ],
            );
            assert!(
                dom.contains(&format!("href=\"#guest-{}\"", fail.1)),
                "cells link to their guest"
            );
        }
    }
}

/// `report merge` over these files, with more arguments.
fn merge(files: &[&Path], more: &[&str]) -> std::process::Output {
    let mut c = cli(&["report", "merge"]);
    c.args(files).args(more);
    run(c)
}

#[test]
fn slices_merge_into_the_unsharded_result_and_nothing_unsafe_merges() {
    let (_, whole) = example_run(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut slices = Vec::new();
    // Slice 4 of 4 has none of the three kernels; `--shard` is `count:`.
    for (i, flag) in ["--shard", "--partition", "--partition", "--partition"]
        .iter()
        .enumerate()
    {
        let i = i + 1;
        let slice = format!("{i}/4");
        let (code, report) = example_run(&[flag.as_ref(), slice.as_ref()]);
        assert_eq!(code, Some(0), "{report:#}");
        assert_eq!(report["scope"]["partition"], format!("count:{i}/4"));
        let ran = report["kernels"].as_array().unwrap().len();
        assert_eq!(ran, usize::from(i < 4), "slice {i}/4 of three kernels");
        let p = dir.path().join(format!("slice{i}.json"));
        std::fs::write(&p, report.to_string()).unwrap();
        slices.push(p);
    }
    let all: Vec<&Path> = slices.iter().map(PathBuf::as_path).collect();
    let merged = dir.path().join("all.json");
    let html = dir.path().join("all.html");
    let summary = dir.path().join("step-summary.md");
    let mut c = cli(&["report", "merge"]);
    c.args(&all)
        .args(["--json", merged.to_str().unwrap()])
        .args(["--html", html.to_str().unwrap()])
        .env("GITHUB_STEP_SUMMARY", &summary);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0));
    // The merged verdict reaches the gate job's summary page, as `test`'s does.
    mentions(
        &std::fs::read_to_string(&summary).unwrap(),
        &["# bpfcompat report", "debian-13-6.12"],
    );
    let merged: Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    assert_eq!(cells(&merged), cells(&whole));
    assert_eq!(merged["partial"], Value::Null);
    assert!(
        std::fs::read_to_string(html)
            .unwrap()
            .contains("data-status")
    );

    // With a baseline (main's merged report) the gate's summary says what
    // changed since: here a cell main saw failing now passes.
    let mut main = whole.clone();
    main["cells"][0]["status"] = "fail".into();
    let base = dir.path().join("main.json");
    std::fs::write(&base, main.to_string()).unwrap();
    let summary = dir.path().join("step-summary-2.md");
    let mut c = cli(&["report", "merge"]);
    c.args(&all)
        .arg("--baseline")
        .arg(&base)
        .env("GITHUB_STEP_SUMMARY", &summary);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "a fix is no regression");
    mentions(&String::from_utf8_lossy(&out.stdout), &["FIXED"]);
    mentions(
        &std::fs::read_to_string(&summary).unwrap(),
        &["## Changes since the baseline", "0 new failures, 1 fixed"],
    );

    // A missing slice: refused, or with --allow-partial merged and said.
    let out = merge(&[all[0], all[2], all[3]], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    mentions(
        &err,
        &["count:2/4", "not run on debian-12-6.1", "--allow-partial"],
    );
    let md = dir.path().join("partial.md");
    let out = merge(
        &[all[0], all[2], all[3]],
        &["--allow-partial", "--markdown", md.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    mentions(&stdout, &["PARTIAL RESULT", "not run on debian-12-6.1"]);
    mentions(
        &std::fs::read_to_string(&md).unwrap(),
        &["**Partial result:**", "count:2/4"],
    );

    // A slice given twice, and a slice of another run (another build of
    // an object): refused even with --allow-partial.
    let out = merge(
        &[all[0], all[0], all[1], all[2], all[3]],
        &["--allow-partial"],
    );
    assert_eq!(out.status.code(), Some(1));
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["both hold count:1/4"],
    );
    let mut other: Value = serde_json::from_slice(&std::fs::read(all[1]).unwrap()).unwrap();
    let digests = other["scope"]["digests"].as_object_mut().unwrap();
    let first = digests.keys().next().unwrap().clone();
    digests.insert(first.clone(), Value::from("0".repeat(64)));
    let other_path = dir.path().join("other-build.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let out = merge(&[all[0], &other_path, all[2], all[3]], &["--allow-partial"]);
    assert_eq!(out.status.code(), Some(1));
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &[
            "different runs",
            &format!("`{first}` is not the same build"),
        ],
    );
}

#[test]
fn baseline_gates_regressions_and_reports_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let now = dir.path().join("now.json");
    let test = || test_on(&["debian-11-5.10"], &["loop", "ringbuf"]);
    let out = run(test().arg("--json").arg(&now));
    assert_eq!(out.status.code(), Some(2), "bpf_loop fails on 5.10");
    let report: Value = serde_json::from_slice(&std::fs::read(&now).unwrap()).unwrap();

    // Before, the loop object passed there: now it newly fails.
    let mut before = report.clone();
    for c in before["cells"].as_array_mut().unwrap() {
        if c["object"] == "loop.bpf.o" {
            c["status"] = "pass".into();
            c["code"] = Value::Null;
        }
    }
    let regressed = dir.path().join("regressed-baseline.json");
    std::fs::write(&regressed, before.to_string()).unwrap();
    let (md, json) = (dir.path().join("r.md"), dir.path().join("r.json"));
    let out = run(test()
        .arg("--baseline")
        .arg(&regressed)
        .arg("--markdown")
        .arg(&md)
        .arg("--json")
        .arg(&json));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    mentions(&stdout, &["NEW FAIL      loop.bpf.o on debian-11-5.10"]);
    // The comparison is in the reports a pull request shows, not only on
    // the terminal.
    let md = std::fs::read_to_string(&md).unwrap();
    mentions(
        &md,
        &[
            "## Changes since the baseline",
            "| **NEW FAIL** | `loop.bpf.o` | debian-11-5.10 |",
        ],
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let change = |o: &str| {
        json["changes"]
            .as_array()
            .expect("the JSON report has the comparison")
            .iter()
            .find(|c| c["object"] == o)
            .map(|c| c["change"].clone())
    };
    assert_eq!(change("loop.bpf.o"), Some("new_fail".into()));
    assert_eq!(change("ringbuf.bpf.o"), Some("unchanged".into()));

    // Before, ringbuf failed too: the only change is a fix, so exit 0.
    let mut before = report.clone();
    for c in before["cells"].as_array_mut().unwrap() {
        if c["object"] == "ringbuf.bpf.o" {
            c["status"] = "fail".into();
            c["code"] = "UNSUPPORTED_MAP_TYPE".into();
        }
    }
    let fixed = dir.path().join("fixed-baseline.json");
    std::fs::write(&fixed, before.to_string()).unwrap();
    let out = run(test().arg("--baseline").arg(&fixed));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    mentions(&stdout, &["FIXED         ringbuf.bpf.o on debian-11-5.10"]);
    mentions(&stdout, &["still failing loop.bpf.o"]);

    // `report diff` says the same without running anything.
    for (baseline, code) in [(&regressed, 2), (&fixed, 0)] {
        let out = run(cli(&["report", "diff"]).arg(baseline).arg(&now));
        assert_eq!(
            out.status.code(),
            Some(code),
            "against {}",
            baseline.display()
        );
    }
}

#[test]
fn an_expected_failure_keyed_by_the_objects_stem_holds_and_a_table_for_nothing_is_said() {
    // As the docs write it: `[objects.loop]` for `--object …/loop.bpf.o`;
    // `[objects.lopo]` (a typo) would silently do nothing.
    let config = "[objects.loop.expect_fail]\n\"debian-11-5.10\" = \"UNSUPPORTED_HELPER\"\n[objects.lopo.expect_fail]\n\"debian-11-5.10\" = \"UNSUPPORTED_HELPER\"\n";
    let (out, report) = report_with_config(test_on(&["debian-11-5.10"], &["loop"]), config);
    assert_eq!(out.status.code(), Some(0), "the declared failure holds");
    let cell = &report["cells"][0];
    assert_eq!(cell["object"], "loop.bpf.o");
    assert_eq!(cell["status"], "expected_fail", "{cell}");
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &[
            "warning: ",
            "[objects.\"lopo\"] names none of this run's objects (loop.bpf.o)",
        ],
    );
}

#[test]
fn a_filter_runs_only_the_objects_whose_name_contains_it() {
    let mut c = test_on(&["debian-12-6.1"], &["loop", "ringbuf"]);
    c.arg("ring");
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["objects"], serde_json::json!(["ringbuf.bpf.o"]));
    assert_eq!(report["cells"].as_array().unwrap().len(), 1);
}

/// Loads `page` in headless Chromium at 1280×900 with `script` run after
/// load; the `data-` attributes the script set on `<body>`.
fn measured_in_chromium(page: &Path, script: &str) -> Option<Value> {
    let probe = page.with_extension("probe.html");
    let html = std::fs::read_to_string(page).unwrap();
    let html = html.replace("</body>", &format!("<script>{script}</script></body>"));
    std::fs::write(&probe, html).unwrap();
    let dom = chromium_dom(
        &probe,
        &["--window-size=1280,900", "--virtual-time-budget=3000"],
    )?;
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let attr = |name: &str| -> Option<String> {
        let start = body.find(&format!("data-{name}=\""))? + name.len() + 7;
        Some(body[start..start + body[start..].find('"')?].to_string())
    };
    Some(serde_json::json!({
        "grid": attr("grid")?.parse::<f64>().ok()?,
        "view": attr("view")?.parse::<f64>().ok()?,
        "reflowed": attr("reflowed")?,
        "opened": attr("opened")?,
    }))
}

#[test]
fn the_html_grid_of_eight_kernels_fits_1280_pixels_and_a_cell_opens_below_it() {
    // One kernel's real verdicts, on the default matrix's eight kernels.
    let (_, mut report) = with_report(test_on(
        &["debian-11-5.10"],
        &["loop", "ringbuf", "kfunc", "lsm", "fentry", "cgrp_storage"],
    ));
    let names = [
        "ubuntu-16.04-4.15",
        "ubuntu-20.04-5.4",
        "ubuntu-22.04-5.15",
        "ubuntu-24.04-6.8",
        "debian-11-5.10",
        "debian-12-6.1",
        "debian-13-6.12",
        "debian-sid",
    ];
    let kernel = report["kernels"][0].clone();
    let cells = report["cells"].as_array().unwrap().clone();
    let with_kernel = |v: &Value, k: &str| {
        let mut v = v.clone();
        v["kernel"] = k.into();
        v
    };
    report["kernels"] = names.iter().map(|k| with_kernel(&kernel, k)).collect();
    report["cells"] = names
        .iter()
        .flat_map(|k| cells.iter().map(move |c| with_kernel(c, k)))
        .collect();
    report["scope"]["run_kernels"] = serde_json::json!(names);
    for (_, n) in report["summary"].as_object_mut().unwrap() {
        *n = (n.as_u64().unwrap() * 8).into();
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eight.json");
    std::fs::write(&json, report.to_string()).unwrap();
    let page = dir.path().join("eight.html");
    let out = merge(&[&json], &["--html", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "the merged verdict: failures");

    let script = "window.addEventListener('load',function(){\
        var t=document.querySelector('table.matrix'),b=t.getBoundingClientRect();\
        document.body.dataset.grid=b.right;\
        document.body.dataset.view=document.documentElement.clientWidth;\
        var a=document.querySelector('td.st-fail a');a.click();\
        var c=t.getBoundingClientRect();\
        document.body.dataset.reflowed=(b.width!==c.width||b.height!==c.height);\
        document.body.dataset.opened=getComputedStyle(document.querySelector(a.getAttribute('href'))).display;\
    });";
    let m = measured_in_chromium(&page, script)
        .expect("chromium measured the page (scripts/setup installs it)");
    eprintln!("measured at 1280 px: {m}");
    assert!(
        m["grid"].as_f64().unwrap() <= m["view"].as_f64().unwrap(),
        "the grid is wider than 1280 px: {m}"
    );
    assert_eq!(m["reflowed"], "false", "opening a cell moved the grid: {m}");
    assert_eq!(m["opened"], "block", "the cell's evidence shows below: {m}");
}
