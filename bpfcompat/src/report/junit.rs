//! JUnit XML: one test suite per object, one test case per kernel. Failures
//! carry the code and the kernel's words; expected failures and cells with
//! no verdict are skipped, with the reason.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::classify::{Cell, Status};

/// Renders the report as JUnit XML.
pub fn junit(r: &Report) -> String {
    let mut out = quick_junit::Report::new("bpfcompat");
    for object in &r.objects {
        let mut suite = TestSuite::new(object.as_str());
        if let Some(p) = &r.partial {
            suite.add_property(quick_junit::Property::new("partial", p.as_str()));
        }
        let cells = r.kernels_by_version().into_iter();
        for c in cells.filter_map(|k| r.cell(object, &k.kernel)) {
            let mut case = TestCase::new(c.kernel.as_str(), status(c));
            case.set_classname(object.as_str());
            if let Some(release) = &c.kernel_release {
                case.add_property(quick_junit::Property::new(
                    "kernel_release",
                    release.as_str(),
                ));
            }
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    out.to_string().expect("JUnit serializes")
}

fn details(c: &Cell) -> String {
    let mut lines = Vec::new();
    for f in &c.findings {
        lines.push(format!(
            "{} at {:?}{}: {}",
            f.code,
            f.stage,
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
