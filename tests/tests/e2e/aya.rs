//! aya projects: objects built by aya (committed in examples/aya/objects,
//! with the script and toolchain that built them) judged by libbpf where it
//! can open them and by aya's own loader in command mode.

use bpfcompat_e2e::{
    Args, assert_trial, cell, cli, examples, mentions, report_with_config, says, test_on,
    with_report,
};

/// An aya-built object committed in examples/aya/objects.
fn aya_object(name: &str) -> std::path::PathBuf {
    bpfcompat_e2e::examples().join(format!("aya/objects/{name}.bpf.o"))
}

#[test]
fn aya_objects_are_validated_the_way_aya_loads_them_without_configuration() {
    // The template's legacy `maps` section means aya: it loads and attaches
    // on 5.10 and 6.1, as does an object with a BTF-defined map; a bloom filter (5.16) is refused on 5.10 with the
    // kernel's words and the specific code; bare sections load and leave
    // their targets to the loader.
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let objects = |c: &mut std::process::Command| {
        for o in ["template", "bare", "bloom", "btfmap"] {
            c.arg("--object").arg(aya_object(o));
        }
    };
    let mut c = test_on(&kernels, &[]);
    objects(&mut c);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    for k in kernels {
        for o in ["template.bpf.o", "btfmap.bpf.o"] {
            let c = cell(&report, o, k);
            assert_eq!(c["status"], "pass", "{c:#}");
            assert_eq!(c["programs"][0]["attach"], "ok", "{c:#}");
        }
        let c = cell(&report, "bare.bpf.o", k);
        assert_eq!(c["status"], "pass", "{c:#}");
        for p in c["programs"].as_array().unwrap() {
            assert_eq!(p["load"], "ok", "{c:#}");
            assert!(
                p["attach"].as_str().unwrap().contains("set by the loader"),
                "{c:#}"
            );
        }
    }
    assert_eq!(
        cell(&report, "bloom.bpf.o", "debian-12-6.1")["status"],
        "pass"
    );
    let c = cell(&report, "bloom.bpf.o", "debian-11-5.10");
    assert_eq!(c["code"], "UNSUPPORTED_MAP_TYPE", "{c:#}");
    says(c, "message", &["Invalid argument"]);
    says(c, "remediation", &["bloom_filter map needs Linux 5.16"]);

    // Forced through libbpf, which cannot open aya's legacy maps: no verdict,
    // with libbpf's words and what to do, never a kernel failure.
    let mut c = test_on(&["debian-12-6.1"], &[]);
    c.args(["--validator", "libbpf"])
        .arg("--object")
        .arg(aya_object("template"));
    let (_, report) = with_report(c);
    let c = cell(&report, "template.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "infra_error", "{c:#}");
    says(c, "message", &["legacy map definitions"]);
    says(c, "remediation", &["--validator aya"]);
}

#[test]
fn a_helper_aya_s_load_is_refused_gets_the_kernels_probe_and_its_release() {
    // bpf_get_current_task_btf is 5.11: refused on 5.10, through aya too.
    let mut c = test_on(&["debian-11-5.10", "debian-12-6.1"], &[]);
    c.args(["--validator", "aya"])
        .arg("--object")
        .arg(aya_object("taskbtf"));
    let (_, report) = with_report(c);
    assert_eq!(
        cell(&report, "taskbtf.bpf.o", "debian-12-6.1")["status"],
        "pass"
    );
    let c = cell(&report, "taskbtf.bpf.o", "debian-11-5.10");
    assert_eq!(c["code"], "UNSUPPORTED_HELPER", "{c:#}");
    says(c, "message", &["the kernel's helper probe"]);
    assert_eq!(
        c["remediation"], "bpf_get_current_task_btf needs Linux 5.11",
        "{c:#}"
    );
}

#[test]
fn bare_sections_attach_where_the_configuration_names_a_target() {
    let mut c = test_on(&["debian-12-6.1"], &[]);
    c.arg("--object").arg(aya_object("bare"));
    let (out, report) = report_with_config(
        c,
        "[objects.bare.programs.bare_tracepoint]\nattach_target = \"syscalls/sys_enter_getpid\"\n\
         [objects.bare.programs.bare_kprobe]\nattach_target = \"do_unlinkat\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let c = cell(&report, "bare.bpf.o", "debian-12-6.1");
    for p in c["programs"].as_array().unwrap() {
        assert_eq!(
            (&p["load"], &p["attach"]),
            (&"ok".into(), &"ok".into()),
            "{c:#}"
        );
    }
}

/// The example's aya loader, built for this test.
fn aya_loader() -> std::path::PathBuf {
    let dir = examples().join("aya/loader");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", examples().join("target"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the aya loader builds");
    examples().join("target/debug/aya-loader")
}

#[test]
fn aya_s_own_loader_in_command_mode_is_the_truth_for_aya_objects() {
    // aya loads the template (legacy maps, ring buffer, aya-log) on 5.10 and
    // 6.1; a bloom filter (5.16) fails on 5.10 with aya's own error.
    let loader = aya_loader();
    let mut c = cli(&["test", "--loader"]);
    c.arg(&loader)
        .args(["--command", "$BPFCOMPAT_BIN $BPFCOMPAT_ARTIFACT"])
        .kernels(&["debian-11-5.10", "debian-12-6.1"]);
    for o in ["template", "bloom", "bare"] {
        c.arg("--object").arg(aya_object(o));
    }
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    for k in ["debian-11-5.10", "debian-12-6.1"] {
        for o in ["template", "bare"] {
            let c = cell(&report, &format!("aya-loader {o}.bpf.o"), k);
            assert_eq!(c["status"], "pass", "{c:#}");
        }
    }
    assert_eq!(
        cell(&report, "aya-loader bloom.bpf.o", "debian-12-6.1")["status"],
        "pass"
    );
    // aya's own refused map create, traced, names the map and its floor.
    let c = cell(&report, "aya-loader bloom.bpf.o", "debian-11-5.10");
    assert_eq!(c["code"], "UNSUPPORTED_MAP_TYPE", "{c:#}");
    assert_eq!(c["findings"][0]["map"], "SEEN", "{c:#}");
    assert!(c["remediation"].to_string().contains("5.16"), "{c:#}");
    assert!(
        c["command"]["output"]
            .to_string()
            .contains("failed to create map `SEEN`"),
        "{c:#}"
    );
    // Where it loads, its programs are listed from its own calls.
    let c = cell(&report, "aya-loader template.bpf.o", "debian-12-6.1");
    assert_eq!(c["programs"][0]["name"], "template", "{c:#}");
    assert_eq!(c["programs"][0]["attach"], "ok", "{c:#}");

    // The known floor, declared under the command's name: expected, exit 0.
    let mut c = cli(&["test", "--loader"]);
    c.arg(&loader)
        .args(["--command", "$BPFCOMPAT_BIN $BPFCOMPAT_ARTIFACT"])
        .kernels(&["debian-11-5.10"])
        .arg("--object")
        .arg(aya_object("bloom"));
    let (out, report) = report_with_config(
        c,
        "[objects.\"aya-loader bloom.bpf.o\".expect_fail]\n\"debian-11-5.10\" = \"UNSUPPORTED_MAP_TYPE\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let c = cell(&report, "aya-loader bloom.bpf.o", "debian-11-5.10");
    assert_eq!(c["status"], "expected_fail", "{c:#}");
}

#[test]
fn both_validators_side_by_side_show_where_they_disagree() {
    let mut c = test_on(&["debian-11-5.10"], &["ringbuf"]);
    c.args(["--validator", "both"])
        .arg("--object")
        .arg(aya_object("template"));
    let (out, report) = with_report(c);
    let status = |o: &str| cell(&report, o, "debian-11-5.10")["status"].clone();
    assert_eq!(status("template.bpf.o (libbpf)"), "infra_error");
    assert_eq!(status("template.bpf.o (aya)"), "pass");
    assert_eq!(status("ringbuf.bpf.o (libbpf)"), "pass");
    assert_eq!(status("ringbuf.bpf.o (aya)"), "pass");
    let stdout = String::from_utf8_lossy(&out.stdout);
    mentions(
        &stdout,
        &["DISAGREE template.bpf.o on debian-11-5.10: libbpf no verdict, aya pass"],
    );
    assert!(!stdout.contains("DISAGREE ringbuf"), "{stdout}");
}

#[test]
fn cargo_bpfcompat_test_in_the_aya_example_validates_with_aya_without_configuration() {
    // The loader embeds what its build script puts in OUT_DIR, as aya-build
    // does; discovery finds the objects there.
    let manifest = examples().join("aya/loader/Cargo.toml");
    let mut c = bpfcompat_e2e::in_workspace("test", &manifest);
    c.arg("--target-dir")
        .arg(examples().join("target"))
        .kernels(&["debian-11-5.10", "debian-12-6.1"]);
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    for k in ["debian-11-5.10", "debian-12-6.1"] {
        assert_eq!(cell(&report, "template", k)["status"], "pass", "{report:#}");
    }
    assert_eq!(
        cell(&report, "bloom", "debian-11-5.10")["code"],
        "UNSUPPORTED_MAP_TYPE"
    );
}

#[test]
fn kernel_tests_load_aya_objects_with_aya_inside_each_kernel() {
    // One trial per (test x kernel); the bloom filter's 5.10 trial is a
    // declared expected failure, so every trial passes.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["test", "--test", "kernels"])
        .current_dir(examples().join("aya/loader"))
        .env("CARGO_TARGET_DIR", examples().join("target"))
        .env(
            "BPFCOMPAT_CLI",
            bpfcompat_e2e::workspace_bin("cargo-bpfcompat"),
        )
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    for trial in [
        "template_loads_and_attaches::debian-11-5.10",
        "template_loads_and_attaches::debian-12-6.1",
        "bloom_filter_loads::debian-11-5.10",
        "bloom_filter_loads::debian-12-6.1",
    ] {
        assert_trial(&stdout, trial, "ok");
    }
}

#[test]
fn aya_attaches_network_programs_its_own_way_where_libbpf_needs_a_link() {
    // XDP, a tc classifier and a cgroup filter, judged by both loaders. aya
    // chooses by release: tcx on 6.12, netlink for tc before 6.6, and on
    // Ubuntu's 5.4 netlink for XDP and BPF_PROG_ATTACH for the cgroup,
    // where libbpf's links are refused. On 4.15 aya cannot load the XDP and
    // cgroup programs at all: it gives them an expected attach type (4.17).
    let (kernels, ubuntu) = bpfcompat_e2e::plus_mirrored(
        &["debian-11-5.10", "debian-13-6.12"],
        &["ubuntu-20.04-5.4", "ubuntu-16.04-4.15"],
    );
    let mut c = test_on(&kernels, &["net_hooks"]);
    c.args(["--validator", "both"]);
    let (_, report) = with_report(c);
    for k in kernels.iter().filter(|k| !k.ends_with("4.15")) {
        let aya = cell(&report, "net_hooks.bpf.o (aya)", k);
        assert_eq!(aya["status"], "pass", "{aya:#}");
        let programs = aya["programs"].as_array().unwrap();
        assert_eq!(programs.len(), 3, "{aya:#}");
        for p in programs {
            assert_eq!(p["attach"], "ok", "{aya:#}");
        }
    }
    if !ubuntu {
        bpfcompat_e2e::skip(
            "aya_attaches_network_programs…: 4.15 and 5.4 part needs BPFCOMPAT_MIRROR_UBUNTU",
        );
        return;
    }
    // libbpf's path on 5.4: the XDP link is refused and the program is
    // attached through netlink, as bpf_xdp_attach and aya do (noted); the
    // cgroup link (5.7) has no such fallback in libbpf-rs's loaders.
    let libbpf = cell(&report, "net_hooks.bpf.o (libbpf)", "ubuntu-20.04-5.4");
    assert_eq!(libbpf["code"], "UNSUPPORTED_ATTACH_TYPE", "{libbpf:#}");
    assert_eq!(libbpf["program"], "allow_sends", "{libbpf:#}");
    let xdp = bpfcompat_e2e::entry(libbpf, "programs", &[("name", "pass_packets")]);
    assert_eq!(xdp["attach"], "ok", "{libbpf:#}");
    says(libbpf, "assumptions", &["attached through netlink"]);
    let aya = cell(&report, "net_hooks.bpf.o (aya)", "ubuntu-16.04-4.15");
    assert_eq!(aya["code"], "UNSUPPORTED_FEATURE", "{aya:#}");
    says(
        aya,
        "remediation",
        &["expected attach type at load needs Linux 4.17"],
    );
}

#[test]
fn aya_loads_programs_on_a_btf_target_by_the_name_their_section_gives() {
    // aya resolves fentry and LSM targets in the kernel's BTF itself, by the
    // name aya-ebpf's macros write in the section: they load and attach on
    // 5.10 and 6.1 (LSM attaches on 5.10, where `bpf` is no active LSM, which
    // is then named). Ubuntu's 5.4 has no tracing or LSM programs; on 4.15
    // aya stops earlier, at the global variable, which needs 5.2.
    let (kernels, ubuntu) = bpfcompat_e2e::plus_mirrored(
        &["debian-11-5.10", "debian-12-6.1"],
        &["ubuntu-20.04-5.4", "ubuntu-16.04-4.15"],
    );
    let mut c = test_on(&kernels, &["fentry", "lsm"]);
    c.args(["--validator", "aya"]);
    let (_, report) = with_report(c);
    for k in ["debian-11-5.10", "debian-12-6.1"] {
        let c = cell(&report, "fentry.bpf.o", k);
        assert_eq!(c["status"], "pass", "{c:#}");
        assert_eq!(c["programs"][0]["load"], "ok", "{c:#}");
        assert_eq!(c["programs"][0]["attach"], "ok", "{c:#}");
    }
    let c = cell(&report, "lsm.bpf.o", "debian-11-5.10");
    assert_eq!(c["code"], "KERNEL_CONFIG", "{c:#}");
    assert_eq!(c["stage"], "attach", "{c:#}");
    assert_eq!(
        cell(&report, "lsm.bpf.o", "debian-12-6.1")["status"],
        "pass"
    );
    if !ubuntu {
        bpfcompat_e2e::skip(
            "aya_loads_programs_on_a_btf_target…: 4.15 and 5.4 part needs BPFCOMPAT_MIRROR_UBUNTU",
        );
        return;
    }
    for o in ["fentry.bpf.o", "lsm.bpf.o"] {
        let c = cell(&report, o, "ubuntu-20.04-5.4");
        assert_eq!(c["code"], "UNSUPPORTED_PROG_TYPE", "{c:#}");
        let c = cell(&report, o, "ubuntu-16.04-4.15");
        assert_eq!(c["code"], "UNSUPPORTED_FEATURE", "{c:#}");
        says(c, "remediation", &["global variables", "need Linux 5.2"]);
    }
}

#[test]
fn fire_mode_counts_the_runs_of_aya_objects_too() {
    // The built-in workload's getpid runs the template's tracepoint program,
    // attached by aya: its runs are counted as libbpf's are.
    let mut c = test_on(&["debian-12-6.1"], &[]);
    c.args(["--mode", "fire"])
        .arg("--object")
        .arg(aya_object("template"));
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let c = cell(&report, "template.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    let runs = c["programs"][0]["runs"].as_u64();
    assert!(runs.is_some_and(|n| n > 0), "{c:#}");
    assert!(!c.to_string().contains("not measured"), "{c:#}");
}
