//! The human view of a report on standard output.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::args::ColorChoice;

use bpfcompat_engine::report::{
    Look, Report, assumptions_text, disagreements_text, failures_text, floors_text, matrix,
    variants_text,
};

static COLOR: OnceLock<ColorChoice> = OnceLock::new();

/// `--color` (or CARGO_TERM_COLOR), once, before anything is printed.
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// `--color auto` decides as other command-line tools do (anstyle-query:
/// `CLICOLOR_FORCE`, `NO_COLOR`, `CLICOLOR`, a terminal that has colour).
fn colored(stream_is_terminal: bool) -> bool {
    match COLOR.get().copied().unwrap_or(ColorChoice::Auto) {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if anstyle_query::clicolor_force() => true,
        ColorChoice::Auto if anstyle_query::no_color() => false,
        ColorChoice::Auto => {
            stream_is_terminal
                && anstyle_query::clicolor() != Some(false)
                && anstyle_query::term_supports_color()
        }
    }
}

/// What a line on standard error is, in cargo's colours where standard
/// error is coloured: `error`, `warning`, `note`.
pub fn label(kind: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let style = match kind {
        "error" => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        "warning" => Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
        _ => Style::new().bold().fg_color(Some(AnsiColor::Cyan.into())),
    };
    paint(&format!("{kind}:"), style)
}

/// A progress line's verb (`Checking`, `Finished`), right-aligned in 12
/// columns, in cargo's bold green where standard error is coloured.
pub fn verb(verb: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let style = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
    paint(&format!("{verb:>12}"), style)
}

fn paint(text: &str, style: anstyle::Style) -> String {
    match stderr_color() {
        true => format!("{style}{text}{style:#}"),
        false => text.to_string(),
    }
}

/// Whether standard output is coloured.
pub fn color() -> bool {
    colored(std::io::stdout().is_terminal())
}

/// Whether standard error is coloured.
pub fn stderr_color() -> bool {
    colored(std::io::stderr().is_terminal())
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
        for a in &report.artifacts {
            out.push_str(&format!("ARTIFACT {}\n\n", a.describe()));
        }
        out.push_str(&matrix(report, look()));
        for text in [
            variants_text(report),
            assumptions_text(report),
            floors_text(report),
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
    if let Some(why) = bpfcompat_engine::report::exit_text(report) {
        out.push_str(&format!("{why}\n"));
    }
    out
}

/// The width tables fit on standard output: `COLUMNS` when set, else the
/// terminal's; none in a pipe or a log (lines are then never wrapped, so
/// that a script can read them).
fn table_width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .or_else(|| terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0))
        // Narrower than this, no table reads well: it is not wrapped.
        .filter(|w| *w >= MIN_TABLE_WIDTH)
}

/// The narrowest terminal tables are fitted to.
const MIN_TABLE_WIDTH: u16 = 40;

/// A plain table for listings: a header, columns two spaces apart, no
/// borders; as wide as the terminal, long cells wrapped to fit it.
pub fn table<const N: usize>(header: [&str; N]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_header(header);
    match table_width() {
        Some(w) => t
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_width(w),
        None => t.set_content_arrangement(comfy_table::ContentArrangement::Disabled),
    };
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    // The first column names the row: never wrapped.
    if let Some(first) = t.column_mut(0) {
        first.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
    }
    t
}

/// `1 object`, `2 objects`: a count with its noun in the right number.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
