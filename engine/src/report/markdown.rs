//! The Markdown report (GitHub's step summary, PR comments): what ran and
//! where, the matrix with a symbol per cell and a legend, then the failures
//! with the kernel's own words. Everything that came from an object, a kernel
//! or a log is escaped or put in a code span; long sections fold.

use std::fmt::Write;

use super::Report;
use super::terminal::cell_word;
use crate::classify::Status;

fn symbol(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Unavailable => "⚪",
        Status::InfraError => "⚠️",
        Status::ExpectedFail => "🔸",
        Status::UnexpectedPass => "❗",
    }
}

const LEGEND: &str = "✅ pass · ❌ failure · 🔸 expected failure · ❗ declared to fail but passes · ⚪ unavailable · ⚠️ no verdict · *(optional)*: failures there do not fail the run";

/// Sections longer than this many lines are folded in `<details>`.
const FOLD_LINES: usize = 20;

/// Text outside code, with everything Markdown would read as markup
/// escaped: kernel messages and names are not the report's syntax.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\`*_[]<>|#~!".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Our own prose, which marks names as `code`: the code spans stay code
/// spans (their content is literal), everything between them is escaped.
fn prose(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    let balanced = parts.len() % 2 == 1;
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if i % 2 == 1 && (balanced || !last) {
            out.push_str(&code(part));
        } else {
            if i % 2 == 1 {
                out.push_str("\\`");
            }
            out.push_str(&text(part));
        }
    }
    out
}

/// A code span holding `s` whatever backticks it contains, with `|`
/// escaped so that it cannot end a table cell (GitHub reads `\|` there).
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('|', "\\|"))
}

/// `body` under a heading, folded when long.
fn section(out: &mut String, heading: &str, body: &str) {
    if body.lines().count() > FOLD_LINES {
        let _ = write!(
            out,
            "\n<details><summary>{heading}</summary>\n\n{body}\n</details>\n"
        );
    } else {
        let _ = write!(out, "\n## {heading}\n\n{body}");
    }
}

/// Renders the report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut out = String::from("# bpfcompat report\n\n");
    let _ = writeln!(out, "{}.\n", r.summary.sentence());
    if let Some(p) = &r.partial {
        let _ = writeln!(out, "> **Partial result:** {}\n", prose(p));
    }
    let _ = writeln!(out, "{}\n", text(&run_line(r)));
    for a in &r.artifacts {
        let _ = writeln!(out, "- artifact {}", code(&a.describe()));
    }
    if !r.artifacts.is_empty() {
        out.push('\n');
    }
    matrix_view(r, &mut out);
    let _ = writeln!(out, "\n{LEGEND}");
    changes_view(r, &mut out);
    let assumed = r.assumptions();
    if !assumed.is_empty() {
        let mut body = String::from(
            "Values the objects leave to their loaders, assumed for the validation:\n\n",
        );
        for (o, a) in assumed {
            let _ = writeln!(body, "- {}: {}", code(o), prose(&a));
        }
        section(&mut out, "Assumptions", &body);
    }
    runs_view(r, &mut out);
    failures_view(r, &mut out);
    programs_view(r, &mut out);
    complexity_view(r, &mut out);
    out
}

/// With a baseline: what changed since it, regressions first, never folded
/// (a pull request's reader looks for it first).
fn changes_view(r: &Report, out: &mut String) {
    let Some(changes) = &r.changes else {
        return;
    };
    let _ = write!(
        out,
        "\n## Changes since the baseline\n\n{}.\n",
        text(&super::compare::counts_text(changes))
    );
    let listed: Vec<_> = super::compare::LISTED
        .iter()
        .flat_map(|(kind, label)| {
            changes
                .iter()
                .filter(move |c| c.change == *kind)
                .map(move |c| (*label, c))
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    out.push_str("\n| change | object | kernel | before | now |\n|---|---|---|---|---|\n");
    for (label, c) in listed {
        let optional = if c.required { "" } else { " *(optional)*" };
        let _ = writeln!(
            out,
            "| **{label}** | {} | {}{optional} | {} | {} |",
            code(&c.object),
            text(&c.kernel),
            text(&c.before),
            text(&c.after)
        );
    }
}

/// Processed instructions and the share of the verifier's limit, per
/// program and kernel; the kernel closest to the limit in bold.
fn complexity_view(r: &Report, out: &mut String) {
    let (kernels, rows) = super::rows(r);
    if rows.is_empty() {
        return;
    }
    let mut body = String::from(
        "Instructions the verifier processed (share of its limit); **bold**: the kernel where the program is closest to the limit; -: no figure there (the program did not load, or the kernel keeps no statistics, before 5.2).\n\n| program |",
    );
    for k in &kernels {
        let _ = write!(body, " {} |", text(k));
    }
    body.push_str("\n|---|");
    body.push_str(&"---:|".repeat(kernels.len()));
    body.push('\n');
    for row in &rows {
        let _ = write!(body, "| {} {} |", code(row.object), code(row.program));
        for (i, c) in row.on.iter().enumerate() {
            let figure = c.map_or_else(|| "-".to_string(), super::figure);
            if row.is_tightest(i) {
                let _ = write!(body, " **{}** |", text(&figure));
            } else {
                let _ = write!(body, " {} |", text(&figure));
            }
        }
        body.push('\n');
    }
    if !r.complexity_growth.is_empty() {
        let _ = write!(
            body,
            "\n```text\n{}```\n",
            super::growth_text(&r.complexity_growth)
        );
    }
    section(out, "Verifier complexity", &body);
}

/// Tool, matrix, accelerator and start time of the run.
fn run_line(r: &Report) -> String {
    let mut accels: Vec<&str> = r
        .kernels
        .iter()
        .map(|k| k.accel.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    accels.sort_unstable();
    accels.dedup();
    let started = r
        .kernels
        .iter()
        .filter_map(|k| k.timings.started_at.as_deref())
        .min();
    let mut parts = vec![r.tool.clone(), format!("matrix {}", r.matrix)];
    if !accels.is_empty() {
        parts.push(format!("accelerator {}", accels.join(", ")));
    }
    if let Some(t) = started {
        parts.push(format!("started {t}"));
    }
    parts.join(" · ")
}

fn matrix_view(r: &Report, out: &mut String) {
    let kernels = r.kernels_by_version();
    out.push_str("| object |");
    for k in &kernels {
        let optional = if k.required { "" } else { " *(optional)*" };
        let _ = write!(out, " {}{optional} |", text(&k.kernel));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(kernels.len()));
    out.push('\n');
    for o in &r.objects {
        let _ = write!(out, "| {} |", code(o));
        for k in &kernels {
            match r.cell(o, &k.kernel) {
                Some(c) => {
                    // Our own words (codes, `pass`): nothing to escape.
                    let _ = write!(out, " {} {} |", symbol(c.status), cell_word(c));
                }
                None => out.push_str(" |"),
            }
        }
        out.push('\n');
    }
}

/// Fire mode: how often each program ran.
fn runs_view(r: &Report, out: &mut String) {
    let mut body = String::new();
    for c in &r.cells {
        for p in c.programs.iter().filter(|p| p.runs.is_some()) {
            let _ = writeln!(
                body,
                "| {} | {} | {} | {} |",
                code(&c.object),
                text(&c.kernel),
                code(&p.name),
                p.runs.unwrap_or(0)
            );
        }
    }
    if !body.is_empty() {
        let table = format!("| object | kernel | program | runs |\n|---|---|---|---|\n{body}");
        section(out, "Run counts (fire mode)", &table);
    }
}

/// One entry per failing or verdict-less cell, with the kernel's words.
fn failures_view(r: &Report, out: &mut String) {
    let failing: Vec<_> = r
        .cells
        .iter()
        .filter(|c| !matches!(c.status, Status::Pass | Status::ExpectedFail))
        .collect();
    let mut body = String::new();
    for c in &failing {
        let _ = writeln!(
            body,
            "### {} {} on {} ({})\n",
            symbol(c.status),
            code(&c.object),
            text(&c.kernel),
            text(c.kernel_release.as_deref().unwrap_or("?"))
        );
        for f in &c.findings {
            let _ = write!(body, "- **{}** at {}", f.code, f.stage.as_str());
            if let Some(p) = &f.program {
                let _ = write!(body, ", program {}", code(p));
            }
            if let Some(m) = &f.map {
                let _ = write!(body, ", map {}", code(m));
            }
            let _ = writeln!(body, "\n  - kernel: {}", code(&f.message));
            if let Some(fix) = &f.remediation {
                let _ = writeln!(body, "  - fix: {}", prose(fix));
            }
            if !f.verifier_tail.is_empty() {
                body.push_str("\n  <details><summary>verifier log (end)</summary>\n\n  ```text\n");
                for l in super::last(&f.verifier_tail, 8) {
                    // A log line cannot close the fence.
                    let _ = writeln!(body, "  {}", l.replace('`', "'"));
                }
                body.push_str("  ```\n\n  </details>\n");
            }
        }
        if let Some(floor) = super::floor_sentence(r, c) {
            let _ = writeln!(body, "- floor: {}", prose(&floor));
        }
        if let Some((title, lines)) = super::loader_output(c, 40) {
            let _ = write!(
                body,
                "\n<details><summary>{}</summary>\n\n```text\n",
                text(&title)
            );
            for l in lines.lines() {
                // A line of the loader's cannot close the fence.
                let _ = writeln!(body, "{}", l.replace('`', "'"));
            }
            body.push_str("```\n\n</details>\n");
        }
        body.push('\n');
    }
    // Open, whatever their length: they are what the summary is read for
    // (each verifier log and loader's output is folded on its own).
    if !failing.is_empty() {
        let _ = write!(out, "\n## Failures ({})\n\n{body}", failing.len());
    }
}

/// Per object that does not pass everywhere and has several programs: each
/// program's load and attach on each kernel.
fn programs_view(r: &Report, out: &mut String) {
    for o in &r.objects {
        let cells: Vec<_> = r
            .kernels_by_version()
            .into_iter()
            .filter_map(|k| r.cell(o, &k.kernel))
            .collect();
        let names: Vec<&str> = cells
            .iter()
            .flat_map(|c| c.programs.iter().map(|p| p.name.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if names.len() < 2 || cells.iter().all(|c| c.status == Status::Pass) {
            continue;
        }
        let _ = write!(out, "\n### Programs of {}\n\n| program |", code(o));
        for c in &cells {
            let _ = write!(out, " {} |", text(&c.kernel));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(cells.len()));
        out.push('\n');
        for n in names {
            let _ = write!(out, "| {} |", code(n));
            for c in &cells {
                let word = c.programs.iter().find(|p| p.name == n).map_or_else(
                    || "-".to_string(),
                    |p| format!("load {}, attach {}", p.load, p.attach),
                );
                let _ = write!(out, " {} |", text(&word));
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_kernels_cannot_become_markup() {
        assert_eq!(
            text("<script>*x*|[a](b)"),
            "\\<script\\>\\*x\\*\\|\\[a\\](b)"
        );
        assert_eq!(code("a`b|c"), "``a`b\\|c``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(prose("map `a|b` <i>"), "map `a\\|b` \\<i\\>");
        assert_eq!(prose("odd ` tick"), "odd \\` tick");
    }

    #[test]
    fn long_sections_fold_and_short_ones_do_not() {
        let mut out = String::new();
        section(&mut out, "Short", "one\n");
        assert!(out.contains("## Short") && !out.contains("<details>"));
        let mut out = String::new();
        section(&mut out, "Long", &"line\n".repeat(FOLD_LINES + 1));
        assert!(out.contains("<details><summary>Long</summary>"), "{out}");
    }

    #[test]
    fn failures_stay_open_however_long_and_name_their_stage_as_the_json_does() {
        use crate::classify::{Code, Finding, Stage};
        let objects: Vec<String> = (0..30).map(|i| format!("o{i}")).collect();
        let names: Vec<&str> = objects.iter().map(String::as_str).collect();
        let mut r = crate::report::test_report(&["k"], &names, |_| {});
        for c in &mut r.cells {
            c.status = Status::Fail;
            c.findings = vec![Finding::plain(
                Stage::Load,
                Code::UnsupportedHelper,
                Some("p".into()),
                "unknown func".into(),
                None,
                Vec::new(),
            )];
        }
        let md = markdown(&r);
        assert!(md.contains("\n## Failures (30)\n"), "{md}");
        assert!(!md.contains("<summary>Failures"), "{md}");
        assert!(
            md.contains("- **UNSUPPORTED_HELPER** at load, program `p`"),
            "{md}"
        );
    }
}
