//! What people and CI read: the report model (JSON, versioned), the exit
//! code, the terminal matrix and Markdown. All are views of one [`Report`].

/// The last `n` lines: the end of a log says why it stopped.
pub(crate) fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

mod compare;
mod html;
mod junit;
mod markdown;
mod merge;
mod model;
mod terminal;

pub use compare::{CellChange, Change, changes_text, compare, exit_with_baseline};
pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use merge::{Scope, merge};
pub use model::{ExitCode, Expectations, Report, SCHEMA_VERSION, Summary, kernel_cells, note_text};
pub use terminal::{
    Look, assumptions_text, disagreements_text, failures_text, matrix, variants_text,
};
