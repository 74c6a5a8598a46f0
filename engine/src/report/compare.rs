//! Comparing a run with an earlier one (`--baseline`, `report diff`) and
//! merging shard reports (`report merge`).

use std::fmt::Write;

use serde::Serialize;

use super::{ExitCode, Report};
use crate::classify::{Cell, Status};

/// How a cell changed since the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Failing now, passing (or absent) before: a regression.
    NewFail,
    /// Passing now, failing before.
    Fixed,
    /// Failing then and now.
    StillFailing,
    /// Passing then and now.
    Unchanged,
    /// No verdict now or before (unavailable, infrastructure).
    NoVerdict,
}

/// One cell's change.
#[derive(Debug, Clone, Serialize)]
pub struct CellChange {
    /// Object.
    pub object: String,
    /// Kernel.
    pub kernel: String,
    /// Whether the kernel is required now.
    pub required: bool,
    /// What changed.
    pub change: Change,
    /// The status and code before, as text.
    pub before: String,
    /// The status and code now, as text.
    pub after: String,
}

fn failing(c: &Cell) -> bool {
    matches!(c.status, Status::Fail | Status::UnexpectedPass)
}

fn verdictless(c: &Cell) -> bool {
    matches!(c.status, Status::Unavailable | Status::InfraError)
}

fn describe(c: Option<&Cell>) -> String {
    match c {
        None => "absent".into(),
        Some(c) => match c.code {
            Some(code) => format!("{:?} {code}", c.status)
                .to_lowercase()
                .replace(&code.as_str().to_lowercase(), code.as_str()),
            None => format!("{:?}", c.status).to_lowercase(),
        },
    }
}

/// Every cell of `now`, compared with `before`.
pub fn compare(before: &Report, now: &Report) -> Vec<CellChange> {
    now.cells
        .iter()
        .map(|c| {
            let old = before.cell(&c.object, &c.kernel);
            let change = match old {
                _ if verdictless(c) => Change::NoVerdict,
                Some(o) if verdictless(o) && failing(c) => Change::NewFail,
                Some(o) if verdictless(o) => Change::Unchanged,
                Some(o) if failing(o) && failing(c) => Change::StillFailing,
                Some(o) if failing(o) => Change::Fixed,
                _ if failing(c) => Change::NewFail,
                _ => Change::Unchanged,
            };
            CellChange {
                object: c.object.clone(),
                kernel: c.kernel.clone(),
                required: c.required,
                change,
                before: describe(old),
                after: describe(Some(c)),
            }
        })
        .collect()
}

/// The exit code with a baseline: 2 only when a required cell newly fails;
/// otherwise 1 when a required cell has no verdict, else 0.
pub fn exit_with_baseline(changes: &[CellChange], now: &Report) -> ExitCode {
    if changes
        .iter()
        .any(|c| c.required && c.change == Change::NewFail)
    {
        return ExitCode::Regression;
    }
    match now.exit_code {
        ExitCode::Pass | ExitCode::Regression => ExitCode::Pass,
        code @ (ExitCode::ToolFailure | ExitCode::Interrupted | ExitCode::Terminated) => code,
    }
}

/// The comparison as text: regressions first, then fixes.
pub fn changes_text(changes: &[CellChange]) -> String {
    let mut out = String::new();
    let count = |k: Change| changes.iter().filter(|c| c.change == k).count();
    let _ = writeln!(
        out,
        "compared with the baseline: {} new failures, {} fixed, {} still failing, {} unchanged, {} without verdict",
        count(Change::NewFail),
        count(Change::Fixed),
        count(Change::StillFailing),
        count(Change::Unchanged),
        count(Change::NoVerdict)
    );
    for (kind, label) in [
        (Change::NewFail, "NEW FAIL"),
        (Change::Fixed, "FIXED"),
        (Change::StillFailing, "still failing"),
    ] {
        for c in changes.iter().filter(|c| c.change == kind) {
            let req = if c.required { "" } else { " (not required)" };
            let _ = writeln!(
                out,
                "  {label:<13} {} on {}{req}: {} -> {}",
                c.object, c.kernel, c.before, c.after
            );
        }
    }
    out
}
