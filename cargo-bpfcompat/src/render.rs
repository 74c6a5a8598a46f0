//! The human view of a report on standard output.

use std::io::IsTerminal;

use bpfcompat::report::{
    Report, assumptions_text, disagreements_text, failures_text, matrix, variants_text,
};

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Matrix, variant choices, failures and the summary line; `quiet` keeps
/// only the failures and the summary.
pub fn human(report: &Report, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        out.push('\n');
        out.push_str(&matrix(report, color()));
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
    out.push_str(&format!("\n{}\n", report.summary.sentence()));
    out
}
