//! The terminal view: a matrix of objects x kernels, then each failure with
//! the kernel's own words.

use std::fmt::Write;

use super::Report;
use crate::classify::{Cell, Status};

/// What a cell shows in the matrix.
pub(crate) fn cell_word(c: &Cell) -> String {
    match c.status {
        Status::Pass => "pass".into(),
        Status::Fail => c
            .code
            .map_or("FAIL".into(), |code| code.as_str().to_string()),
        Status::Unavailable => "unavailable".into(),
        Status::InfraError => "no verdict".into(),
        Status::ExpectedFail => format!("expected {}", c.code.map(|c| c.as_str()).unwrap_or("")),
        Status::UnexpectedPass => "UNEXPECTED PASS".into(),
    }
}

/// The matrix table.
pub fn matrix_table(r: &Report) -> String {
    let obj_w = r.objects.iter().map(String::len).max().unwrap_or(6).max(6);
    let widths: Vec<usize> = r
        .kernels
        .iter()
        .map(|k| {
            r.cells
                .iter()
                .filter(|c| c.kernel == k.kernel)
                .map(|c| cell_word(c).len())
                .chain([k.kernel.len() + usize::from(!k.required)])
                .max()
                .unwrap_or(4)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<obj_w$}", "OBJECT");
    for (k, w) in r.kernels.iter().zip(&widths) {
        let name = if k.required {
            k.kernel.clone()
        } else {
            format!("{}*", k.kernel)
        };
        let _ = write!(out, "  {name:<w$}");
    }
    out.push('\n');
    for o in &r.objects {
        let _ = write!(out, "{o:<obj_w$}");
        for (k, w) in r.kernels.iter().zip(&widths) {
            let word = r.cell(o, &k.kernel).map(cell_word).unwrap_or_default();
            let _ = write!(out, "  {word:<w$}");
        }
        out.push('\n');
    }
    if r.kernels.iter().any(|k| !k.required) {
        out.push_str("(* not required: failures there do not fail the run)\n");
    }
    out
}

/// Which alternative each kernel got, for objects with variants.
pub fn variants_text(r: &Report) -> String {
    let mut out = String::new();
    for c in r.cells.iter().filter(|c| !c.variants.is_empty()) {
        for v in &c.variants {
            let chosen = v.chosen.as_deref().unwrap_or("none works");
            let _ = writeln!(
                out,
                "variant {} on {}: {chosen} (of {})",
                c.object,
                c.kernel,
                v.candidates.join(", ")
            );
        }
    }
    out
}

/// Every failing or verdict-less cell, with evidence. A kernel whose guest
/// gave no verdict at all is said once, not once per object.
pub fn failures_text(r: &Report) -> String {
    let mut out = String::new();
    let mut whole_kernel = Vec::new();
    for k in &r.kernels {
        let cells: Vec<&Cell> = r.cells.iter().filter(|c| c.kernel == k.kernel).collect();
        let first = cells.first().map(|c| (c.status, c.message.clone()));
        if let Some((status @ (Status::Unavailable | Status::InfraError), message)) = first
            && cells
                .iter()
                .all(|c| c.status == status && c.message == message)
        {
            let head = if status == Status::Unavailable {
                "UNAVAILABLE"
            } else {
                "NO VERDICT"
            };
            let _ = writeln!(out, "{head} {}: {}", k.kernel, message.unwrap_or_default());
            whole_kernel.push(k.kernel.clone());
        }
    }
    let shown = |c: &&Cell| {
        !matches!(c.status, Status::Pass | Status::ExpectedFail)
            && !whole_kernel.contains(&c.kernel)
    };
    for c in r.cells.iter().filter(shown) {
        if c.status == Status::UnexpectedPass {
            let expected = c.expected.map(|e| e.as_str()).unwrap_or("?");
            let _ = writeln!(
                out,
                "UNEXPECTED PASS {} on {}: declared to fail with {expected}, but it passes\n  fix: remove the expectation (the floor moved, or the program changed)",
                c.object, c.kernel
            );
            continue;
        }
        let release = c.kernel_release.as_deref().unwrap_or("?");
        let head = match c.status {
            Status::Fail if c.expected.is_some() => "FAIL (not the expected failure)",
            Status::Fail => "FAIL",
            Status::Unavailable => "UNAVAILABLE",
            _ => "NO VERDICT",
        };
        let _ = writeln!(out, "{head} {} on {} ({release})", c.object, c.kernel);
        if let (Some(expected), Status::Fail) = (c.expected, c.status) {
            let got = c.code.map(|c| c.as_str()).unwrap_or("?");
            let _ = writeln!(out, "  expected {expected}, got {got}");
        }
        for f in &c.findings {
            let mut what = format!("{} at {:?}", f.code, f.stage).to_lowercase();
            what = what.replacen(&f.code.as_str().to_lowercase(), f.code.as_str(), 1);
            if let Some(p) = &f.program {
                let _ = write!(what, ", program `{p}`");
            }
            if let Some(m) = &f.map {
                let _ = write!(what, ", map `{m}`");
            }
            if let Some(e) = f.errno {
                let _ = write!(what, ", errno {e}");
            }
            let _ = writeln!(out, "  {what}");
            let _ = writeln!(out, "    kernel: {}", f.message);
            if let Some(fix) = &f.remediation {
                let _ = writeln!(out, "    fix:    {fix}");
            }
            if f.stage == crate::classify::Stage::Guest && !f.libbpf_log.is_empty() {
                let _ = writeln!(out, "    output (end):");
                for l in f
                    .libbpf_log
                    .iter()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    let _ = writeln!(out, "      {l}");
                }
            }
            let tail: Vec<&String> = f.verifier_tail.iter().rev().take(4).collect();
            if !tail.is_empty() {
                let _ = writeln!(out, "    verifier log (end):");
                for l in tail.into_iter().rev() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
    }
    out
}
