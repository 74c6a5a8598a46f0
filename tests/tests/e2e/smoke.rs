//! The fast tier's one end-to-end test: the main job on one kernel, a
//! passing object and a refused one, with their verdicts and exit code.
//! `scripts/test --fast` runs it after the unit and CLI tests.

use bpfcompat_e2e::{cell, says, test_on, with_report};

#[test]
fn the_main_job_on_one_kernel() {
    let (out, report) = with_report(test_on(&["debian-12-6.1"], &["ringbuf", "rejected"]));
    let c = cell(&report, "ringbuf.bpf.o", "debian-12-6.1");
    assert_eq!(c["status"], "pass", "{c:#}");
    assert_eq!(
        c["kernel_release"].as_str().map(|r| r.starts_with("6.1.")),
        Some(true),
        "{c:#}"
    );
    let c = cell(&report, "rejected.bpf.o", "debian-12-6.1");
    assert_eq!(c["code"], "VERIFIER_REJECTED", "{c:#}");
    says(c, "verifier_tail", &["map_value_or_null"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a required cell fails: {report:#}"
    );
}
