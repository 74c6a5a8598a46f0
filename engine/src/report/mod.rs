//! What people and CI read: the report model (JSON, versioned), the exit
//! code, the terminal matrix and Markdown. All are views of one [`Report`].

/// The last `n` lines: the end of a log says why it stopped.
pub(crate) fn last(lines: &[String], n: usize) -> &[String] {
    &lines[lines.len().saturating_sub(n)..]
}

/// Command mode: the last `n` lines of what the loader wrote, and a title
/// that says how much that is of it; `None` when it wrote nothing.
pub(crate) fn loader_output(c: &crate::classify::Cell, n: usize) -> Option<(String, String)> {
    let cmd = c.command.as_ref().filter(|cmd| !cmd.output.is_empty())?;
    let lines: Vec<&str> = cmd.output.lines().collect();
    let shown = &lines[lines.len().saturating_sub(n)..];
    let title = if shown.len() == lines.len() && cmd.output_bytes as usize == cmd.output.len() {
        "the loader's output (stdout and stderr)".to_string()
    } else {
        format!(
            "the loader's output, its last {} lines (of {} bytes written)",
            shown.len(),
            cmd.output_bytes
        )
    };
    Some((title, shown.join("\n")))
}

mod compare;
mod complexity;
mod html;
pub mod judge;
mod junit;
mod markdown;
mod merge;
mod model;
mod terminal;

pub use compare::{CellChange, Change, changes_text};
pub use complexity::{Gate, Growth, Row, figure, growth_text, rows};
pub use html::{html, html_in};
pub use judge::{Judge, Judged};
pub use junit::junit;
pub use markdown::markdown;
pub use merge::{Scope, merge};
pub use model::{ExitCode, Expectations, Report, SCHEMA_VERSION, Summary, note_text};
pub use terminal::{
    Look, assumptions_text, disagreements_text, exit_text, failures_text, floor_sentence,
    floors_text, matrix, shown, stats_text, variants_text,
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

#[cfg(test)]
mod tests {
    use crate::wire::CommandReport;

    #[test]
    fn a_loaders_output_is_in_every_view_and_cannot_become_markup() {
        let output = "libbpf: prog 'p': failed to load: -EINVAL\n<b>bold</b> ```\n";
        let report = super::test_report(&["debian-12-6.1"], &["loader"], |k| {
            k.outcome = crate::outcome::KernelOutcome::Completed;
            k.commands.push(CommandReport {
                name: "loader".into(),
                exit_code: Some(1),
                output: output.into(),
                output_bytes: output.len() as u64,
                ..CommandReport::default()
            });
        });
        assert_eq!(report.cells[0].status, crate::classify::Status::Fail);
        let md = super::markdown(&report);
        assert!(
            md.contains("libbpf: prog 'p': failed to load: -EINVAL"),
            "{md}"
        );
        assert!(!md.contains("<b>bold</b> ```"), "{md}");
        let xml = super::junit(&report);
        assert!(xml.contains("<system-out>libbpf: prog"), "{xml}");
        assert!(xml.contains("&lt;b&gt;bold"), "{xml}");
        let html = super::html(&report);
        assert!(html.contains("failed to load: -EINVAL"), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;"), "{html}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["cells"][0]["command"]["output"], output);
    }
}
