//! The human view of a report on standard output.

use std::io::IsTerminal;

use bpfcompat::report::{
    Look, Report, assumptions_text, disagreements_text, failures_text, matrix, variants_text,
};

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The matrix's look on standard output: the terminal's width there, 100
/// columns in a log.
pub fn look() -> Look {
    let width =
        terminal_size::terminal_size_of(std::io::stdout()).map_or(100, |(w, _)| usize::from(w.0));
    Look {
        width,
        color: color(),
    }
}

/// Matrix, variant choices, failures and the summary line; `quiet` keeps
/// only the failures and the summary.
pub fn human(report: &Report, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        out.push('\n');
        out.push_str(&matrix(report, look()));
        for text in [
            variants_text(report),
            assumptions_text(report),
            disagreements_text(report),
        ] {
            if !text.is_empty() {
                out.push('\n');
                out.push_str(&text);
            }
        }
    }
    let failures = failures_text(report);
    if !failures.is_empty() {
        out.push('\n');
        out.push_str(&failures);
    }
    if let Some(p) = &report.partial {
        out.push_str(&format!("\nPARTIAL RESULT: {p}\n"));
    }
    out.push_str(&format!("\n{}\n", report.summary.sentence()));
    out
}
