//! Verifier complexity across kernels: the figures each view shows, their
//! growth since a baseline, and the gate on both (`--max-complexity-growth`,
//! `--min-headroom`). A gated cell fails with its own code: the kernel
//! accepted the program, the project's policy did not.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::Report;
use crate::classify::{Cell, Code, Finding, Stage, Status};
use crate::wire::Complexity;

/// Limits a run's programs must stay within.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gate {
    /// Most growth allowed in processed instructions or states since the
    /// baseline, in percent.
    pub max_growth_pct: Option<f64>,
    /// Least headroom to the verifier's limit, in percent.
    pub min_headroom_pct: Option<f64>,
}

impl Gate {}

/// How one program's verification changed on one kernel since the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Object.
    pub object: String,
    /// Program.
    pub program: String,
    /// Kernel.
    pub kernel: String,
    /// Processed instructions then and now.
    pub insns_before: u64,
    /// Processed instructions now.
    pub insns_now: u64,
    /// States created then.
    pub states_before: u64,
    /// States created now.
    pub states_now: u64,
}

impl Growth {
    /// Growth in processed instructions, in percent.
    pub(crate) fn insns_pct(&self) -> Option<f64> {
        pct(self.insns_before, self.insns_now)
    }

    /// Growth in states, in percent (none from zero states).
    pub(crate) fn states_pct(&self) -> Option<f64> {
        pct(self.states_before, self.states_now)
    }
}

fn pct(before: u64, now: u64) -> Option<f64> {
    (before > 0).then(|| 100.0 * (now as f64 - before as f64) / before as f64)
}

/// Every program of `cells` measured on its kernel in both runs.
pub fn growth(before: &Report, cells: &[Cell]) -> Vec<Growth> {
    let mut out = Vec::new();
    for c in cells {
        let Some(old) = before.cell(&c.object, &c.kernel) else {
            continue;
        };
        for p in &c.programs {
            let then = old.programs.iter().find(|o| o.name == p.name);
            if let (Some(n), Some(b)) = (&p.complexity, then.and_then(|o| o.complexity.as_ref())) {
                out.push(Growth {
                    object: c.object.clone(),
                    program: p.name.clone(),
                    kernel: c.kernel.clone(),
                    insns_before: b.insns_processed,
                    insns_now: n.insns_processed,
                    states_before: b.total_states,
                    states_now: n.total_states,
                });
            }
        }
    }
    out
}

/// Fails every passing cell with a program past the gate, and recounts the
/// report. Returns how many cells it failed.
pub(crate) fn apply_gate(report: &mut Report, growth: &[Growth], gate: &Gate) -> usize {
    let failed = gate_cells(&mut report.cells, growth, gate);
    if failed > 0 {
        report.recount();
    }
    failed
}

/// Fails every passing cell of `cells` with a program past the gate (the
/// cells of one kernel as it finishes, or a whole report's).
pub(crate) fn gate_cells(cells: &mut [Cell], growth: &[Growth], gate: &Gate) -> usize {
    let mut failed = 0;
    for cell in cells.iter_mut().filter(|c| c.status == Status::Pass) {
        let mut findings = Vec::new();
        for p in &cell.programs {
            let Some(c) = &p.complexity else { continue };
            if let Some(min) = gate.min_headroom_pct
                && c.headroom_pct() < min
            {
                findings.push(headroom_finding(&p.name, c, min));
            }
            let grew = growth.iter().find(|g| {
                g.object == cell.object && g.kernel == cell.kernel && g.program == p.name
            });
            if let (Some(max), Some(g)) = (gate.max_growth_pct, grew)
                && let Some(f) = growth_finding(g, max)
            {
                findings.push(f);
            }
        }
        if !findings.is_empty() {
            fail(cell, findings);
            failed += 1;
        }
    }
    failed
}

fn headroom_finding(program: &str, c: &Complexity, min: f64) -> Finding {
    Finding {
        stage: Stage::Load,
        code: Code::ComplexityHeadroom,
        program: Some(program.to_string()),
        map: None,
        message: format!(
            "the verifier processed {} of its {} instructions ({:.1}% headroom), less than --min-headroom {min}%",
            c.insns_processed,
            c.insns_limit,
            c.headroom_pct()
        ),
        remediation: Some(
            "split the program (tail calls, subprograms) or bound its loops more tightly".into(),
        ),
        errno: None,
        verifier_tail: Vec::new(),
        libbpf_log: Vec::new(),
    }
}

fn growth_finding(g: &Growth, max: f64) -> Option<Finding> {
    let over = |p: Option<f64>| p.filter(|p| *p > max);
    let what = match (over(g.insns_pct()), over(g.states_pct())) {
        (None, None) => return None,
        (Some(i), _) => format!(
            "processed instructions grew {i:+.1}% ({} -> {})",
            g.insns_before, g.insns_now
        ),
        (None, Some(s)) => format!(
            "verifier states grew {s:+.1}% ({} -> {})",
            g.states_before, g.states_now
        ),
    };
    Some(Finding {
        stage: Stage::Load,
        code: Code::ComplexityRegression,
        program: Some(g.program.clone()),
        map: None,
        message: format!("{what} since the baseline, more than --max-complexity-growth {max}%"),
        remediation: Some("find the change that made the verifier walk more paths; `--stats` shows every kernel's figures".into()),
        errno: None,
        verifier_tail: Vec::new(),
        libbpf_log: Vec::new(),
    })
}

fn fail(cell: &mut Cell, findings: Vec<Finding>) {
    let first = &findings[0];
    cell.status = Status::Fail;
    cell.stage = Some(first.stage);
    cell.code = Some(first.code);
    cell.program = first.program.clone();
    cell.message = Some(first.message.clone());
    cell.remediation = first.remediation.clone();
    cell.findings.extend(findings);
}

/// One row per program: its figures on each kernel, in `kernels` order.
pub struct Row<'a> {
    /// Object.
    pub object: &'a str,
    /// Program.
    pub program: &'a str,
    /// Figures per kernel (`None`: not loaded there, or not measured).
    pub on: Vec<Option<&'a Complexity>>,
}

impl Row<'_> {
    /// Whether the program uses most of the limit on kernel `i`: the kernels
    /// where it will break first. None is marked when every kernel measured
    /// gives the same share (nothing to tell apart).
    pub(crate) fn is_tightest(&self, i: usize) -> bool {
        let used = |c: &Complexity| c.insns_processed as f64 / c.insns_limit.max(1) as f64;
        let shares: Vec<f64> = self.on.iter().flatten().map(|c| used(c)).collect();
        let most = shares.iter().copied().fold(f64::MIN, f64::max);
        let all_equal = shares.iter().all(|s| *s == most);
        !all_equal
            && self
                .on
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|c| used(c) == most)
    }
}

/// The kernels in version order (as every view orders them) and a row per
/// program measured on any of them, by object and program.
pub fn rows(r: &Report) -> (Vec<&str>, Vec<Row<'_>>) {
    let kernels: Vec<&str> = r
        .kernels_by_version()
        .into_iter()
        .map(|k| k.kernel.as_str())
        .collect();
    let rows = rows_for(r, &kernels);
    (kernels, rows)
}

fn rows_for<'a>(r: &'a Report, kernels: &[&str]) -> Vec<Row<'a>> {
    let mut rows: Vec<Row> = Vec::new();
    for object in &r.objects {
        let cells: Vec<Option<&Cell>> = kernels.iter().map(|k| r.cell(object, k)).collect();
        let mut programs: Vec<&str> = Vec::new();
        for c in cells.iter().flatten() {
            for p in &c.programs {
                if p.complexity.is_some() && !programs.contains(&p.name.as_str()) {
                    programs.push(&p.name);
                }
            }
        }
        for program in programs {
            let on = cells
                .iter()
                .map(|c| {
                    c.and_then(|c| c.programs.iter().find(|p| p.name == program))
                        .and_then(|p| p.complexity.as_ref())
                })
                .collect();
            rows.push(Row {
                object,
                program,
                on,
            });
        }
    }
    rows
}

/// `49 (0.0%)`: processed instructions and the share of the limit used.
pub fn figure(c: &Complexity) -> String {
    format!("{} ({:.1}%)", c.insns_processed, 100.0 - c.headroom_pct())
}

/// The growth since the baseline as text, largest first; unchanged
/// programs are counted, not listed.
pub fn growth_text(growth: &[Growth]) -> String {
    let mut changed: Vec<&Growth> = growth
        .iter()
        .filter(|g| g.insns_now != g.insns_before || g.states_now != g.states_before)
        .collect();
    changed.sort_by(|a, b| {
        let key = |g: &Growth| g.insns_pct().unwrap_or(0.0).abs();
        key(b).total_cmp(&key(a))
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "verifier complexity since the baseline: {} of {} program runs changed",
        changed.len(),
        growth.len()
    );
    for g in changed {
        let states = match g.states_pct() {
            Some(p) => format!("{p:+.1}%"),
            None => "new".into(),
        };
        let _ = writeln!(
            out,
            "  {} {} on {}: insns {} -> {} ({:+.1}%), states {} -> {} ({states})",
            g.object,
            g.program,
            g.kernel,
            g.insns_before,
            g.insns_now,
            g.insns_pct().unwrap_or(0.0),
            g.states_before,
            g.states_now,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ProgramState;

    fn with_insns(insns: u64, states: u64) -> Report {
        let mut r = crate::report::test_report(&["k1"], &["o.bpf.o"], |_| {});
        let c = &mut r.cells[0];
        c.status = Status::Pass;
        c.code = None;
        c.programs = vec![ProgramState {
            name: "p".into(),
            section: "xdp".into(),
            load: "ok".into(),
            attach: "skipped".into(),
            runs: None,
            optional: false,
            stand_in: None,
            complexity: Some(Complexity {
                insns_processed: insns,
                insns_limit: 1_000_000,
                total_states: states,
                ..Complexity::default()
            }),
        }];
        r.recount();
        r
    }

    #[test]
    fn growth_past_the_limit_fails_the_cell_and_shrinking_does_not() {
        let (small, big) = (with_insns(100, 10), with_insns(10_000, 10));
        let gate = Gate {
            max_growth_pct: Some(20.0),
            min_headroom_pct: None,
        };
        let mut now = big.clone();
        let g = growth(&small, &now.cells);
        assert_eq!(apply_gate(&mut now, &g, &gate), 1);
        assert_eq!(now.cells[0].code, Some(Code::ComplexityRegression));
        assert!(
            now.cells[0]
                .message
                .as_deref()
                .unwrap()
                .contains("100 -> 10000")
        );
        assert_eq!(now.summary.fail, 1);

        let mut now = small.clone();
        let g = growth(&big, &now.cells);
        assert_eq!(apply_gate(&mut now, &g, &gate), 0);
        assert_eq!(now.cells[0].status, Status::Pass);
    }

    #[test]
    fn states_growth_counts_too_and_from_zero_is_not_a_ratio() {
        let gate = Gate {
            max_growth_pct: Some(20.0),
            min_headroom_pct: None,
        };
        let mut now = with_insns(100, 50);
        let g = growth(&with_insns(100, 10), &now.cells);
        assert_eq!(apply_gate(&mut now, &g, &gate), 1);
        assert!(
            now.cells[0]
                .message
                .as_deref()
                .unwrap()
                .contains("states grew")
        );
        let mut now = with_insns(100, 50);
        let g = growth(&with_insns(100, 0), &now.cells);
        assert_eq!(apply_gate(&mut now, &g, &gate), 0);
    }

    #[test]
    fn headroom_floor_needs_no_baseline() {
        let gate = Gate {
            max_growth_pct: None,
            min_headroom_pct: Some(10.0),
        };
        let mut near = with_insns(950_000, 1);
        assert_eq!(apply_gate(&mut near, &[], &gate), 1);
        assert_eq!(near.cells[0].code, Some(Code::ComplexityHeadroom));
        let mut far = with_insns(100, 1);
        assert_eq!(apply_gate(&mut far, &[], &gate), 0);
    }

    #[test]
    fn rows_mark_the_tightest_kernels_unless_all_agree() {
        let r = with_insns(500_000, 1);
        let rows = rows_for(&r, &["k1", "absent"]);
        assert_eq!(rows.len(), 1);
        assert_eq!(figure(rows[0].on[0].unwrap()), "500000 (50.0%)");
        assert!(rows[0].on[1].is_none());
        assert!(!rows[0].is_tightest(0), "one kernel: nothing to compare");

        let c = |n| Complexity {
            insns_processed: n,
            insns_limit: 1_000_000,
            ..Complexity::default()
        };
        let (a, b) = (c(10), c(20));
        let row = Row {
            object: "o",
            program: "p",
            on: vec![Some(&a), Some(&b), None, Some(&b)],
        };
        let marked: Vec<usize> = (0..4).filter(|i| row.is_tightest(*i)).collect();
        assert_eq!(marked, vec![1, 3]);
        let row = Row {
            on: vec![Some(&a), Some(&a)],
            ..row
        };
        assert!(!row.is_tightest(0) && !row.is_tightest(1));
    }
}
