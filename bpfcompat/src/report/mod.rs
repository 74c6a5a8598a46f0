//! What people and CI read: the report model (JSON, versioned), the exit
//! code, the terminal matrix and Markdown. All are views of one [`Report`].

mod markdown;
mod model;
mod terminal;

pub use markdown::markdown;
pub use model::{ExitCode, Expectations, Report, SCHEMA_VERSION, Summary};
pub use terminal::{failures_text, matrix_table, variants_text};
