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
    assert_eq!(f["floor"], "4.18", "{f:#}");
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
        says(c, "remediation", &["need Linux 4.18"]);
    }
}
