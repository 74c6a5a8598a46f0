//! What people and CI read: the report model (JSON, versioned), the exit
//! code, the terminal matrix and Markdown. All are views of one [`Report`].

/// The last `n` lines: the end of a log says why it stopped.
pub(crate) fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

mod compare;
mod complexity;
mod html;
mod junit;
mod markdown;
mod merge;
mod model;
mod terminal;

pub use compare::{CellChange, Change, changes_text, compare, exit_with_baseline};
pub use complexity::{
    Gate, Growth, Row, apply_gate, figure, gate_cells, growth, growth_text, rows,
};
pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use merge::{Scope, merge};
pub use model::{ExitCode, Expectations, Report, SCHEMA_VERSION, Summary, kernel_cells, note_text};
pub use terminal::{
    Look, assumptions_text, disagreements_text, failures_text, matrix, stats_text, variants_text,
};

/// Reports for the views' tests: one unavailable kernel per name, with what
/// `edit` changes on each.
#[cfg(test)]
pub(crate) fn test_report(
    kernels: &[&str],
    objects: &[&str],
    edit: impl Fn(&mut crate::outcome::KernelRun),
) -> Report {
    use crate::outcome::{KernelOutcome, KernelRun, RunOutput};
    let kernels = kernels
        .iter()
        .map(|name| {
            let mut k = KernelRun::new(name, true);
            k.outcome = KernelOutcome::Unavailable {
                reason: "test".into(),
            };
            edit(&mut k);
            k
        })
        .collect();
    let output = RunOutput {
        kernels,
        notes: Vec::new(),
    };
    let objects = objects.iter().map(|o| o.to_string()).collect();
    Report::new("m", objects, output, true, &Default::default())
}
