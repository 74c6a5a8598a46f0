//! The loader's choices: which loader judges an object, and what the
//! configuration says it does (targets, optional programs), judged per
//! kernel as the kernel answers.

use bpfcompat_e2e::{cell, examples, plus_mirrored, report_with_config, says, test_on};

#[test]
fn rustc_objects_are_aya_s_and_a_configured_target_is_the_kernels_to_answer() {
    // fentry with a target no kernel has: the kernel's answer (not a
    // configuration error, as another kernel may have it); without BTF,
    // the kernel's lack of BTF, and an fentry/kprobe pair judged by its
    // kprobe side. An aya object with BTF maps only is judged as aya loads
    // it, and says so.
    let (kernels, old) =
        plus_mirrored(&["debian-11-5.10", "debian-12-6.1"], &["ubuntu-16.04-4.15"]);
    let mut c = test_on(&kernels, &["fentry", "alternatives", "kprobe", "same_hook"]);
    c.arg("--object")
        .arg(examples().join("aya/objects/btfmap.bpf.o"));
    let (out, report) = report_with_config(
        c,
        "[objects.fentry.programs.on_unlink]\nattach_target = \"no_such_function_here\"\n\
         [objects.kprobe.programs.count_open]\n\
         attach_target = [\"no_such_function_here\", \"do_unlinkat\"]\n\
         [[objects.same_hook.on]]\n\
         release = \"<5.15\"\n\
         [objects.same_hook.on.programs.tag_getpid]\n\
         autoload = false\n",
    );
    // A loader that turns a program off on older kernels, stated per
    // release: off (and not counted) on 5.10, loaded and passing on 6.1.
    for k in ["debian-11-5.10", "debian-12-6.1"] {
        let c = cell(&report, "same_hook.bpf.o", k);
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    let off = bpfcompat_e2e::entry(
        cell(&report, "same_hook.bpf.o", "debian-11-5.10"),
        "programs",
        &[("name", "tag_getpid")],
    );
    says(off, "load", &["autoload"]);
    // The loader's \"try A, else B\": B where the kernel lacks A, said so.
    let c = cell(&report, "kprobe.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    says(
        c,
        "assumptions",
        &["attach target `do_unlinkat`, the loader's choice 2 of 2"],
    );
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    let c = cell(&report, "fentry.bpf.o", "debian-12-6.1");
    assert_eq!(c["code"], "MISSING_ATTACH_TARGET", "{c:#}");
    says(c, "message", &["no_such_function_here"]);
    says(c, "remediation", &["attach_target", "variants"]);
    let c = cell(&report, "btfmap.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    says(c, "assumptions", &["validated as aya loads it"]);
    // Its floor counts what aya loads: the BTF map as aya creates it, and
    // not the loops of a memcpy rustc left in `.text` that no program calls.
    let f = bpfcompat_e2e::entry(&report, "floors", &[("object", "btfmap.bpf.o")]);
    assert_eq!(f["floor"], "5.4", "{f:#}");
    assert!(!f.to_string().contains("bounded loops"), "{f:#}");
    if old {
        let c = cell(&report, "fentry.bpf.o", "ubuntu-16.04-4.15");
        assert_eq!(c["code"], "MISSING_BTF", "{c:#}");
        // Without BTF the fentry side of an fentry/kprobe pair is off, as a
        // loader turns it off there, and the kprobe side is judged.
        let c = cell(&report, "alternatives.bpf.o", "ubuntu-16.04-4.15");
        assert_eq!(c["status"], "pass", "{c:#}");
        assert_eq!(c["variants"][0]["chosen"], "unlink_kprobe", "{c:#}");
        // aya gives a BTF map's type IDs to a kernel that predates them:
        // refused, where libbpf (which leaves them out) would pass.
        let c = cell(&report, "btfmap.bpf.o", "ubuntu-16.04-4.15");
        assert_eq!(c["code"], "UNSUPPORTED_FEATURE", "{c:#}");
        says(c, "remediation", &["kernels before 5.4 refuse"]);
    }
}

#[test]
fn aya_s_btf_maps_are_refused_before_5_4_and_accepted_from_it() {
    // 5.3 knows BTF in map creation but refuses the object's BTF: aya goes
    // on without it and the map is refused all the same; 5.4 accepts.
    let mirrors = bpfcompat_engine::kernel::Mirrors::discover();
    if mirrors.get("ubuntu").is_err() {
        bpfcompat_e2e::skip("aya's BTF maps on 5.3 and 5.4: no Ubuntu mirror here");
        return;
    }
    let mut c = bpfcompat_e2e::cli(&["test", "--matrix", "all"]);
    c.args([
        "--kernel",
        "ubuntu-18.04-5.3",
        "--kernel",
        "ubuntu-18.04-5.4",
    ])
    .arg("--object")
    .arg(examples().join("aya/objects/btfmap.bpf.o"));
    let (_, report) = bpfcompat_e2e::with_report(c);
    let c = cell(&report, "btfmap.bpf.o", "ubuntu-18.04-5.3");
    assert_eq!(c["code"], "UNSUPPORTED_FEATURE", "{c:#}");
    assert_eq!(c["floor"], "below", "{c:#}");
    says(c, "remediation", &["kernels before 5.4 refuse"]);
    let c = cell(&report, "btfmap.bpf.o", "ubuntu-18.04-5.4");
    assert_eq!(c["status"], "pass", "{c:#}");
}

#[test]
fn a_target_no_catalogue_kernel_has_is_the_loaders_placeholder() {
    // With every catalogue kernel's functions indexed (they all have a
    // mirror here), a section target none of them has is the loader's
    // placeholder: the kprobe loads as it is, the fentry against a
    // stand-in, their attach is the loader's, and the report says so by
    // name. Without (CI: no Ubuntu mirror), nothing is decided: the hook
    // is missing on every kernel, and the notes say how to let bpfcompat
    // decide.
    let lock = bpfcompat_engine::matrix::catalogue();
    let mirrors = bpfcompat_engine::kernel::Mirrors::discover();
    if lock.kernels.iter().all(|p| mirrors.get(&p.archive).is_ok()) {
        let out = bpfcompat_e2e::run(bpfcompat_e2e::cli(&["kernels", "fetch", "--matrix", "all"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cache = bpfcompat_engine::kernel::Cache::discover().expect("a cache");
    let indexable = lock
        .kernels
        .iter()
        .all(|p| cache.function_index(&p.entry_key()).is_some());
    if !indexable {
        bpfcompat_e2e::skip(
            "placeholders decided: not every catalogue kernel is fetched here (no mirror for some); checking the undecided case",
        );
    }
    // Two kernels: a hook missing on every kernel of a run is named as a
    // possible placeholder only where more than one kernel says so.
    let (kernels, _) = plus_mirrored(&["debian-11-5.10", "debian-12-6.1"], &["ubuntu-16.04-4.15"]);
    let (out, report) = bpfcompat_e2e::with_report(test_on(&kernels, &["placeholder"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = cell(&report, "placeholder.bpf.o", "debian-12-6.1");
    if !indexable {
        assert_eq!(c["code"], "MISSING_ATTACH_TARGET", "{c:#}");
        bpfcompat_e2e::mentions(&stderr, &["kernels fetch --matrix all"]);
        return;
    }
    assert_eq!(c["status"], "pass", "{c:#}");
    bpfcompat_e2e::says(
        &report,
        "notes",
        &[
            "`bpfcompat_dummy_file_open`",
            "stand-in",
            "`bpfcompat_dummy_file_read`",
        ],
    );
    bpfcompat_e2e::mentions(&stderr, &["taken for a placeholder"]);
    for name in ["open_entry", "read_entry"] {
        let p = bpfcompat_e2e::entry(c, "programs", &[("name", name)]);
        assert_eq!(p["load"], "ok", "{p:#}");
        says(p, "attach", &["the loader's", "placeholder"]);
    }
    // The real hook beside them is attached and judged as ever.
    let p = bpfcompat_e2e::entry(c, "programs", &[("name", "on_getpid")]);
    assert_eq!(p["attach"], "ok", "{p:#}");
    if kernels.contains(&"ubuntu-16.04-4.15") {
        // No BTF: the fentry side cannot load there whatever its target.
        let c = cell(&report, "placeholder.bpf.o", "ubuntu-16.04-4.15");
        assert_eq!(c["code"], "MISSING_BTF", "{c:#}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{report:#}");
    }
}

#[test]
fn a_target_in_a_module_is_judged_with_that_module_loaded() {
    // Debian 12's cloud kernel has `xfs_file_open` in the xfs module (its
    // function index says so, and what xfs needs): the modules are taken
    // from the kernel's package and loaded in the guest, as on a host that
    // uses xfs, and the program is judged there, the modules named.
    let (out, report) = bpfcompat_e2e::with_report(test_on(
        &["debian-11-5.10", "debian-12-6.1"],
        &["module_target"],
    ));
    let c = cell(&report, "module_target.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    says(
        c,
        "assumptions",
        &["module(s) `xfs`", "loaded in this kernel's guest"],
    );
    let p = bpfcompat_e2e::entry(c, "programs", &[("name", "on_xfs_open")]);
    assert_eq!(p["attach"], "ok", "{p:#}");
    // 5.10 loads xfs too, and has no module BTF (5.11), where fentry finds
    // a module's function: that kernel's lack, named.
    let c = cell(&report, "module_target.bpf.o", "debian-11-5.10");
    assert_eq!(c["code"], "UNSUPPORTED_FEATURE", "{c:#}");
    says(c, "remediation", &["module BTF needs Linux 5.11", "kprobe"]);
    // And the object's floor takes that need from the run: 5.10 is below it.
    assert_eq!(c["floor"], "below", "{c:#}");
    let f = bpfcompat_e2e::entry(&report, "floors", &[("object", "module_target.bpf.o")]);
    assert_eq!(f["floor"], "5.11", "{f:#}");
    assert_eq!(out.status.code(), Some(2), "{report:#}");
}
