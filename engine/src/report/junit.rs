//! JUnit XML: one test suite per object, one test case per kernel. Failures
//! carry the code and the kernel's words; expected failures and cells with
//! no verdict are skipped, with the reason.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use std::time::Duration;

use super::Report;
use crate::classify::{Cell, Status};
use crate::outcome::KernelRun;

/// Renders the report as JUnit XML.
pub fn junit(r: &Report) -> String {
    let mut out = quick_junit::Report::new("bpfcompat");
    for object in &r.objects {
        let mut suite = TestSuite::new(object.as_str());
        if let Some(p) = &r.partial {
            suite.add_property(quick_junit::Property::new("partial", p.as_str()));
        }
        for k in r.kernels_by_version() {
            let Some(c) = r.cell(object, &k.kernel) else {
                continue;
            };
            let mut case = TestCase::new(c.kernel.as_str(), status(c));
            // The loader's own output, whatever the verdict (the kept end).
            if let Some(cmd) = c.command.as_ref().filter(|cmd| !cmd.output.is_empty()) {
                case.set_system_out(cmd.output.as_str());
            }
            case.set_classname(object.as_str());
            if let Some(release) = &c.kernel_release {
                case.add_property(quick_junit::Property::new(
                    "kernel_release",
                    release.as_str(),
                ));
            }
            case.set_time(share_of_guest_time(r, k));
            if let Some(at) = k
                .timings
                .started_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                case.set_timestamp(at);
            }
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    out.to_string().expect("JUnit serializes")
}

/// A case's time: its kernel's boot, validation and shutdown, shared
/// equally by the kernel's cells (one guest validates them all).
fn share_of_guest_time(r: &Report, k: &KernelRun) -> Duration {
    let t = &k.timings;
    let guest_ms = t.boot_ms + t.validate_ms + t.shutdown_ms;
    let cells = r.cells.iter().filter(|c| c.kernel == k.kernel).count();
    Duration::from_millis(guest_ms / cells.max(1) as u64)
}

fn details(c: &Cell) -> String {
    let mut lines = Vec::new();
    for f in &c.findings {
        lines.push(format!(
            "{} at {}{}: {}",
            f.code,
            f.stage.as_str(),
            f.program
                .as_ref()
                .map(|p| format!(" (program {p})"))
                .unwrap_or_default(),
            f.message
        ));
        if let Some(fix) = &f.remediation {
            lines.push(format!("fix: {fix}"));
        }
        lines.extend_from_slice(super::last(&f.verifier_tail, 10));
    }
    if let Some((title, output)) = super::loader_output(c, 20) {
        lines.push(format!("{title}:"));
        lines.push(output);
    }
    lines.join("\n")
}

fn status(c: &Cell) -> TestCaseStatus {
    let code = c.code.map(|c| c.as_str()).unwrap_or("");
    let message = c.message.clone().unwrap_or_default();
    match c.status {
        Status::Pass => TestCaseStatus::success(),
        Status::Fail | Status::UnexpectedPass => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            if c.status == Status::UnexpectedPass {
                s.set_type("UNEXPECTED_PASS");
                s.set_message(format!(
                    "declared to fail with {}, but it passes",
                    c.expected.map(|e| e.as_str()).unwrap_or("?")
                ));
            } else {
                s.set_type(code);
                s.set_message(format!("{code}: {message}"));
                s.set_description(details(c));
            }
            s
        }
        Status::ExpectedFail => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!(
                "expected failure (declared floor): {code}: {message}"
            ));
            s
        }
        Status::Unavailable | Status::InfraError => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("no verdict: {message}"));
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_carry_their_share_of_the_guest_time_and_its_start() {
        let report = crate::report::test_report(&["debian-12-6.1"], &["a.bpf.o", "b.bpf.o"], |k| {
            k.timings.boot_ms = 1000;
            k.timings.validate_ms = 2000;
            k.timings.started_at = Some("2026-11-22T09:00:00Z".into());
        });
        let xml = junit(&report);
        assert_eq!(xml.matches("time=\"1.500\"").count(), 2, "{xml}");
        assert_eq!(
            xml.matches("timestamp=\"2026-11-22T09:00:00").count(),
            2,
            "{xml}"
        );
    }
}
