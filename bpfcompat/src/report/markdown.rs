//! The Markdown report: a summary line, the matrix with a symbol per cell,
//! then one section per failing cell.

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

/// Renders the report as Markdown.
pub fn markdown(r: &Report) -> String {
    let s = &r.summary;
    let mut out = String::from("# bpfcompat report\n\n");
    let _ = writeln!(out, "{}.\n", s.sentence());
    if let Some(p) = &r.partial {
        let _ = writeln!(out, "> **Partial result:** {p}\n");
    }
    let kernels = r.kernels_by_version();
    out.push_str("| object |");
    for k in &kernels {
        let _ = write!(
            out,
            " {}{} |",
            k.kernel,
            if k.required { "" } else { " (optional)" }
        );
    }
    out.push_str("\n|---|");
    for _ in &kernels {
        out.push_str("---|");
    }
    out.push('\n');
    for o in &r.objects {
        let _ = write!(out, "| `{o}` |");
        for k in &kernels {
            match r.cell(o, &k.kernel) {
                Some(c) => {
                    let _ = write!(out, " {} {} |", symbol(c.status), cell_word(c));
                }
                None => out.push_str(" |"),
            }
        }
        out.push('\n');
    }
    let assumed = r.assumptions();
    if !assumed.is_empty() {
        out.push_str("\n## Assumptions\n\nValues the objects leave to their loaders, assumed for the validation:\n\n");
        for (o, a) in assumed {
            let _ = writeln!(out, "- `{o}`: {a}");
        }
    }
    let fired: Vec<_> = r
        .cells
        .iter()
        .filter(|c| c.programs.iter().any(|p| p.runs.is_some()))
        .collect();
    if !fired.is_empty() {
        out.push_str("\n## Run counts (fire mode)\n\n| object | kernel | program | runs |\n|---|---|---|---|\n");
        for c in fired {
            for p in c.programs.iter().filter(|p| p.runs.is_some()) {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | `{}` | {} |",
                    c.object,
                    c.kernel,
                    p.name,
                    p.runs.unwrap_or(0)
                );
            }
        }
    }
    for c in r
        .cells
        .iter()
        .filter(|c| !matches!(c.status, Status::Pass | Status::ExpectedFail))
    {
        let _ = writeln!(
            out,
            "\n## {} `{}` on {} ({})\n",
            symbol(c.status),
            c.object,
            c.kernel,
            c.kernel_release.as_deref().unwrap_or("?")
        );
        for f in &c.findings {
            let _ = write!(out, "- **{}** ({:?})", f.code, f.stage);
            if let Some(p) = &f.program {
                let _ = write!(out, ", program `{p}`");
            }
            if let Some(m) = &f.map {
                let _ = write!(out, ", map `{m}`");
            }
            let _ = writeln!(out, "\n  - kernel: `{}`", f.message.replace('`', "'"));
            if let Some(fix) = &f.remediation {
                let _ = writeln!(out, "  - fix: {fix}");
            }
            if !f.verifier_tail.is_empty() {
                out.push_str("\n  ```\n");
                for l in super::last(&f.verifier_tail, 8) {
                    let _ = writeln!(out, "  {l}");
                }
                out.push_str("  ```\n");
            }
        }
    }
    programs_view(r, &mut out);
    out
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
        let _ = write!(out, "\n### Programs of `{o}`\n\n| program |");
        for c in &cells {
            let _ = write!(out, " {} |", c.kernel);
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(cells.len()));
        out.push('\n');
        for n in names {
            let _ = write!(out, "| `{n}` |");
            for c in &cells {
                let word = c.programs.iter().find(|p| p.name == n).map_or_else(
                    || "-".to_string(),
                    |p| format!("load {}, attach {}", short(&p.load), short(&p.attach)),
                );
                let _ = write!(out, " {word} |");
            }
            out.push('\n');
        }
    }
}

/// `ok`, `failed`, or `skipped (why)`, without pipes that would break a table.
fn short(word: &str) -> String {
    word.replace('|', "/")
}
