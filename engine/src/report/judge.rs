//! The judge every command calls: a run's cells from each kernel's records
//! with the declared expectations (each kernel classified once, whether its
//! cells were streamed as it finished or not), the report, growth since a
//! baseline and the complexity gate, the changes against the baseline, and
//! the exit code. Commands then only render.

use std::collections::BTreeMap;

use super::compare::{CellChange, compare, exit_with_baseline};
use super::complexity::{Gate, apply_gate, gate_cells, growth};
use super::model::{ExitCode, Expectations, Report, kernel_cells, note_text};
use crate::classify::Cell;
use crate::outcome::{KernelRun, RunOutput};

/// What a run is judged by.
pub struct Judge<'a> {
    /// Where the matrix came from (the report's `matrix`).
    pub matrix: String,
    /// The objects' and commands' report names.
    pub objects: Vec<String>,
    /// The declared expected failures.
    pub expectations: Expectations,
    /// Unavailable required kernels do not fail the run.
    pub allow_unavailable: bool,
    /// The report the run is compared with.
    pub baseline: Option<&'a Report>,
    /// The verifier complexity gate.
    pub gate: Gate,
    /// Cells of kernels already judged, before the gate.
    judged: BTreeMap<String, Vec<Cell>>,
}

/// A report with its changes since the baseline.
pub struct Judged {
    /// The report.
    pub report: Report,
    /// Changes since the baseline, where there is one.
    pub changes: Option<Vec<CellChange>>,
}

impl<'a> Judge<'a> {
    /// A judge of runs of `objects`.
    pub fn new(matrix: &str, objects: Vec<String>) -> Judge<'a> {
        Judge {
            matrix: matrix.to_string(),
            objects,
            expectations: Expectations::new(),
            allow_unavailable: false,
            baseline: None,
            gate: Gate::default(),
            judged: BTreeMap::new(),
        }
    }

    /// The cells of a kernel that just finished, as the report will hold
    /// them (the complexity gate since the baseline included).
    pub fn kernel(&mut self, run: &KernelRun) -> Vec<Cell> {
        let cells = kernel_cells(run, &self.objects, &self.expectations);
        self.judged.insert(run.kernel.clone(), cells.clone());
        let mut cells = cells;
        let grown = self.baseline.map(|b| growth(b, &cells)).unwrap_or_default();
        gate_cells(&mut cells, &grown, &self.gate);
        cells
    }

    /// The report of a run: its cells (kernels not yet judged are now), the
    /// objects' floors where `floors` are given; then [`Judge::verdict`].
    pub fn report(
        &mut self,
        output: RunOutput,
        floors: Option<Vec<crate::floor::ObjectFloor>>,
        edit: impl FnOnce(&mut Report),
    ) -> Judged {
        let cells: Vec<Cell> = output
            .kernels
            .iter()
            .flat_map(|k| match self.judged.remove(&k.kernel) {
                Some(cells) => cells,
                None => kernel_cells(k, &self.objects, &self.expectations),
            })
            .collect();
        let mut report = Report::from_parts(
            &self.matrix,
            self.objects.clone(),
            output.kernels,
            cells,
            output.notes.iter().map(note_text).collect(),
            self.allow_unavailable,
        );
        edit(&mut report);
        if let Some(floors) = floors {
            report.set_floors(floors);
        }
        let changes = self.verdict(&mut report);
        Judged { report, changes }
    }

    /// Judges a finished report again: growth since the baseline, the
    /// complexity gate, and the changes since the baseline.
    pub fn verdict(&self, report: &mut Report) -> Option<Vec<CellChange>> {
        if let Some(b) = self.baseline {
            report.complexity_growth = growth(b, &report.cells);
        }
        let grown = report.complexity_growth.clone();
        apply_gate(report, &grown, &self.gate);
        let changes = self.baseline.map(|b| compare(b, report));
        report.changes = changes.clone();
        changes
    }
}

/// The exit code of a judged run: a signal that stopped it, else reports
/// that could not be written (the tool failed), else the changes since the
/// baseline, else the cells.
pub fn exit_code(j: &Judged, stopped: Option<ExitCode>, unwritten: bool) -> ExitCode {
    match (stopped, unwritten, &j.changes) {
        (Some(code), _, _) => code,
        (None, true, _) => ExitCode::ToolFailure,
        (None, false, Some(changes)) => exit_with_baseline(changes, &j.report),
        (None, false, None) => j.report.exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Status;

    #[test]
    fn the_comparison_with_the_baseline_is_in_every_report() {
        let report = |status: Status| {
            let mut r = crate::report::test_report(&["k"], &["loop.bpf.o"], |_| {});
            r.cells[0].status = status;
            r
        };
        let before = report(Status::Pass);
        let mut now = report(Status::Fail);
        let mut judge = Judge::new("m", vec!["loop.bpf.o".into()]);
        judge.baseline = Some(&before);
        let changes = judge.verdict(&mut now).unwrap();
        assert_eq!(changes[0].change, super::super::Change::NewFail);

        let json = now.to_json();
        let again = Report::from_json(&json).unwrap();
        assert_eq!(again.changes.unwrap()[0].change, changes[0].change);
        let md = crate::report::markdown(&now);
        assert!(md.contains("## Changes since the baseline"), "{md}");
        assert!(md.contains("1 new failures, 0 fixed"), "{md}");
        assert!(
            md.contains("| **NEW FAIL** | `loop.bpf.o` | k | pass | fail |"),
            "{md}"
        );
        let html = crate::report::html(&now);
        assert!(
            html.contains("<h2>Changes since the baseline</h2>"),
            "{html}"
        );
        assert!(
            html.contains("<td><strong>NEW FAIL</strong></td><td><code>loop.bpf.o</code></td>")
        );

        // Without a baseline no view says anything of one.
        let plain = report(Status::Fail);
        assert!(!plain.to_json().contains("\"changes\""));
        assert!(!crate::report::markdown(&plain).contains("baseline"));
        assert!(!crate::report::html(&plain).contains("Changes since"));
    }
}
