//! Comparing a run with an earlier one (`--baseline`, `report diff`) and
//! merging shard reports (`report merge`).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::{ExitCode, Report};
use crate::classify::{Cell, Status};

/// How a cell changed since the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Passing now, absent from the baseline (a new object or kernel).
    New,
    /// In the baseline, absent now (a removed object or kernel): its
    /// verdict then is in `before`.
    Dropped,
}

/// One cell's change.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Every cell of `now`, compared with `before`, then the cells of `before`
/// that `now` no longer has.
pub fn compare(before: &Report, now: &Report) -> Vec<CellChange> {
    let dropped = before
        .cells
        .iter()
        .filter(|o| now.cell(&o.object, &o.kernel).is_none())
        .map(|o| CellChange {
            object: o.object.clone(),
            kernel: o.kernel.clone(),
            required: o.required,
            change: Change::Dropped,
            before: describe(Some(o)),
            after: describe(None),
        });
    let present = now.cells.iter().map(|c| {
        let old = before.cell(&c.object, &c.kernel);
        let change = match old {
            _ if verdictless(c) => Change::NoVerdict,
            None if failing(c) => Change::NewFail,
            None => Change::New,
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
    });
    present.chain(dropped).collect()
}

/// The exit code with a baseline: 2 only when a required cell newly fails;
/// otherwise 1 when a required cell has no verdict, else 0.
pub(crate) fn exit_with_baseline(changes: &[CellChange], now: &Report) -> ExitCode {
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

/// The counts of a comparison, in one sentence.
pub(crate) fn counts_text(changes: &[CellChange]) -> String {
    let count = |k: Change| changes.iter().filter(|c| c.change == k).count();
    format!(
        "compared with the baseline: {} new failures, {} fixed, {} still failing, {} unchanged, {} without verdict, {} new, {} dropped",
        count(Change::NewFail),
        count(Change::Fixed),
        count(Change::StillFailing),
        count(Change::Unchanged),
        count(Change::NoVerdict),
        count(Change::New),
        count(Change::Dropped)
    )
}

/// The changes every view lists, in this order and with these labels:
/// regressions first, then fixes, failures that stay, dropped cells.
pub(crate) const LISTED: [(Change, &str); 4] = [
    (Change::NewFail, "NEW FAIL"),
    (Change::Fixed, "FIXED"),
    (Change::StillFailing, "still failing"),
    (Change::Dropped, "dropped"),
];

/// The comparison as text: regressions first, then fixes.
pub fn changes_text(changes: &[CellChange]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", counts_text(changes));
    for (kind, label) in LISTED {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of one kernel whose cells are `(object, status)`.
    fn report(cells: &[(&str, Status)]) -> Report {
        let objects: Vec<&str> = cells.iter().map(|c| c.0).collect();
        let mut r = crate::report::test_report(&["k"], &objects, |_| {});
        for (cell, (_, status)) in r.cells.iter_mut().zip(cells) {
            cell.status = *status;
        }
        r
    }

    #[test]
    fn new_and_dropped_cells_are_counted_apart_and_a_dropped_failure_is_shown() {
        let before = report(&[("a", Status::Fail), ("b", Status::Pass)]);
        let now = report(&[
            ("b", Status::Pass),
            ("c", Status::Pass),
            ("d", Status::Fail),
        ]);
        let changes = compare(&before, &now);
        let of = |o: &str| changes.iter().find(|c| c.object == o).unwrap().change;
        assert_eq!(of("a"), Change::Dropped);
        assert_eq!(of("b"), Change::Unchanged);
        assert_eq!(of("c"), Change::New);
        assert_eq!(of("d"), Change::NewFail);
        let text = changes_text(&changes);
        assert!(text.contains("1 new failures, 0 fixed, 0 still failing, 1 unchanged, 0 without verdict, 1 new, 1 dropped"), "{text}");
        assert!(text.contains("dropped       a on k: fail"), "{text}");
    }
}
