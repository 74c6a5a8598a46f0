//! The report: cells plus the kernels they ran on. Its JSON form is
//! documented in `docs/report-schema.md`; bump [`SCHEMA_VERSION`] on any
//! change that removes or renames a field.

use serde::{Deserialize, Serialize};

use crate::classify::{Cell, Code, Status, cells_for_kernel};
use crate::outcome::{KernelRun, Note, RunOutput};

/// Version of the JSON report schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The exit code a report implies; the process exits with the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// Every required cell passed.
    Pass = 0,
    /// No verdict for some required cell (and no required cell failed), or
    /// the tool could not do its job at all.
    ToolFailure = 1,
    /// A required cell failed.
    Regression = 2,
    /// Stopped by SIGINT (Ctrl-C): the report holds what finished.
    Interrupted = 130,
    /// Stopped by SIGTERM: the report holds what finished.
    Terminated = 143,
}

/// Counts over all cells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Cells.
    pub cells: usize,
    /// Passing cells.
    pub pass: usize,
    /// Failing cells.
    pub fail: usize,
    /// Cells whose kernel could not be had.
    pub unavailable: usize,
    /// Cells without a verdict.
    pub infra_error: usize,
    /// Failing cells on required kernels (unexpected passes included).
    pub required_failures: usize,
    /// Cells that failed exactly as declared.
    pub expected_fail: usize,
    /// Cells declared to fail that pass.
    pub unexpected_pass: usize,
}

impl Summary {
    /// The one-line summary every view shows.
    pub fn sentence(&self) -> String {
        format!(
            "{} of {} cells pass, {} fail as declared; {} fail ({} on required kernels), {} unavailable, {} without verdict",
            self.pass,
            self.cells,
            self.expected_fail,
            self.fail + self.unexpected_pass,
            self.required_failures,
            self.unavailable,
            self.infra_error
        )
    }
}

/// A run's note as every view shows it.
pub fn note_text(n: &Note) -> String {
    match n {
        Note::UsingTcg { reason } => format!("using TCG (software emulation): {reason}"),
        Note::KvmFallback { exit } => {
            format!("KVM does not work here ({exit}); falling back to TCG (software emulation)")
        }
    }
}

pub use crate::config::Expectations;

/// A whole run, as reports show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `bpfcompat <version>`.
    pub tool: String,
    /// Where the matrix came from.
    pub matrix: String,
    /// Object names, in report order.
    pub objects: Vec<String>,
    /// Kernels, in matrix order, with how their guests went.
    pub kernels: Vec<KernelRun>,
    /// One cell per object and kernel, kernel-major.
    pub cells: Vec<Cell>,
    /// Notes said during the run.
    pub notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// Whether unavailable kernels were allowed.
    pub allow_unavailable: bool,
    /// The exit code this report implies.
    pub exit_code: ExitCode,
    /// Which run this is and which slice of it (`test --partition`).
    #[serde(default)]
    pub scope: Option<super::Scope>,
    /// OCI artifacts the objects were pulled from, with their digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<crate::oci::Artifact>,
    /// Set on a merge that lacked slices (`report merge --allow-partial`):
    /// which, and the kernels not run. Every view says it.
    #[serde(default)]
    pub partial: Option<String>,
    /// With `--baseline`: how each program's verification changed on each
    /// kernel measured in both runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub complexity_growth: Vec<super::Growth>,
    /// What each object needs of a kernel and its floor, read from its ELF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floors: Vec<crate::floor::ObjectFloor>,
    /// With `--baseline`: every cell compared with the baseline's (new
    /// failures, fixes, still failing, unchanged, new and dropped cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<super::CellChange>>,
}

impl Report {
    /// The kernels in version order, the order of every view (the JSON keeps
    /// the matrix's).
    pub(crate) fn kernels_by_version(&self) -> Vec<&KernelRun> {
        let mut ks: Vec<&KernelRun> = self.kernels.iter().collect();
        ks.sort_by_key(|k| version_key(k));
        ks
    }

    /// Builds the report of a run.
    pub fn new(
        matrix: &str,
        objects: Vec<String>,
        run: RunOutput,
        allow_unavailable: bool,
        expectations: &Expectations,
    ) -> Report {
        let cells: Vec<Cell> = run
            .kernels
            .iter()
            .flat_map(|k| kernel_cells(k, &objects, expectations))
            .collect();
        Report::from_parts(
            matrix,
            objects,
            run.kernels,
            cells,
            run.notes.iter().map(note_text).collect(),
            allow_unavailable,
        )
    }

    /// A report from its parts, with summary and exit code computed from the
    /// cells (as merging shard reports needs).
    pub(crate) fn from_parts(
        matrix: &str,
        objects: Vec<String>,
        kernels: Vec<KernelRun>,
        cells: Vec<Cell>,
        notes: Vec<String>,
        allow_unavailable: bool,
    ) -> Report {
        let (summary, exit_code) = tally(&cells, allow_unavailable);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: concat!("bpfcompat ", env!("CARGO_PKG_VERSION")).to_string(),
            matrix: matrix.to_string(),
            objects,
            kernels,
            cells,
            notes,
            summary,
            allow_unavailable,
            exit_code,
            scope: None,
            artifacts: Vec::new(),
            partial: None,
            complexity_growth: Vec::new(),
            floors: Vec::new(),
            changes: None,
        }
    }

    /// Sets the objects' floors, and on each failed cell where its kernel
    /// stands against its object's floor.
    pub(crate) fn set_floors(&mut self, mut floors: Vec<crate::floor::ObjectFloor>) {
        for need in self.module_btf_needs() {
            if let Some(f) = floors.iter_mut().find(|f| f.object == need.0) {
                f.add(need.1);
            }
        }
        for c in self.cells.iter_mut().filter(|c| c.status == Status::Fail) {
            c.floor = floors
                .iter()
                .find(|f| f.object == c.object)
                .zip(c.kernel_release.as_deref())
                .and_then(|(f, release)| f.place(release));
        }
        self.floors = floors;
    }

    /// fentry-like programs whose target a kernel of the run has in a
    /// module (loaded in its guest for them): they need module BTF there,
    /// a need the ELF does not show. (object, need)
    fn module_btf_needs(&self) -> Vec<(String, crate::floor::Need)> {
        let mut out = Vec::new();
        for run in self.kernels.iter().filter(|r| !r.target_modules.is_empty()) {
            for c in self.cells.iter().filter(|c| c.kernel == run.kernel) {
                for p in &c.programs {
                    let Some((kind, target)) = crate::wire::Hook::new(&p.section).function() else {
                        continue;
                    };
                    if let (true, Some(module)) = (
                        crate::wire::Hook::finds_function_in_btf(kind),
                        run.module_targets.get(target),
                    ) {
                        out.push((
                            c.object.clone(),
                            crate::floor::Need {
                                feature: format!(
                                    "{kind} on a module's function (`{target}` in `{module}`): module BTF"
                                ),
                                since: crate::releases::features::MODULE_BTF.into(),
                            },
                        ));
                    }
                }
            }
        }
        out
    }

    /// Programs whose hook no kernel of the run has: each failed
    /// `MISSING_ATTACH_TARGET` on every kernel with a verdict (two at
    /// least). Such a target is often a placeholder the loader replaces at
    /// run time (`fentry/dummy_file_open`); the note says how to state the
    /// real one. The verdicts stay: a loader that really uses that name
    /// fails everywhere.
    pub fn placeholder_notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for object in &self.objects {
            let judged: Vec<&Cell> = self
                .cells
                .iter()
                .filter(|c| &c.object == object && matches!(c.status, Status::Fail | Status::Pass))
                .collect();
            if judged.len() < 2 {
                continue;
            }
            let missing = |c: &Cell, program: &str| {
                c.findings.iter().any(|f| {
                    f.code == Code::MissingAttachTarget && f.program.as_deref() == Some(program)
                })
            };
            let Some(first) = judged.first() else {
                continue;
            };
            for f in first
                .findings
                .iter()
                .filter(|f| f.code == Code::MissingAttachTarget)
            {
                let Some(program) = f.program.as_deref() else {
                    continue;
                };
                if !judged.iter().all(|c| missing(c, program)) {
                    continue;
                }
                let section = first
                    .programs
                    .iter()
                    .find(|p| p.name == program)
                    .map(|p| p.section.as_str())
                    .unwrap_or_default();
                let target = crate::wire::Hook::new(section).target().unwrap_or(section);
                let table = object.rsplit('/').next().unwrap_or(object);
                let table = table.trim_end_matches(".o").trim_end_matches(".bpf");
                let note = format!(
                    "{object}: program `{program}` attaches to `{target}`, which none of the {} kernels of this run has: if the loader replaces it at run time (a placeholder), state the real target as `attach_target = [\"...\"]` under [objects.\"{table}\".programs.\"{program}\"]; if it is the loader's only name for it, the program attaches nowhere",
                    judged.len()
                );
                if !out.contains(&note) {
                    out.push(note);
                }
            }
        }
        out
    }

    /// The floor of an object, where known.
    pub(crate) fn floor_of(&self, object: &str) -> Option<&crate::floor::ObjectFloor> {
        self.floors.iter().find(|f| f.object == object)
    }

    /// Computes the summary and exit code again after cells changed.
    pub(crate) fn recount(&mut self) {
        (self.summary, self.exit_code) = tally(&self.cells, self.allow_unavailable);
    }

    /// Reads a report written with `--json`.
    pub fn from_json(text: &str) -> Result<Report, String> {
        let r: Report =
            serde_json::from_str(text).map_err(|e| format!("not a bpfcompat JSON report: {e}"))?;
        if r.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "report schema version {} (this bpfcompat reads {SCHEMA_VERSION})",
                r.schema_version
            ));
        }
        Ok(r)
    }

    /// The cell of an object on a kernel.
    pub fn cell(&self, object: &str, kernel: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.object == object && c.kernel == kernel)
    }

    /// What was assumed per object (an unsized map's size, a declared
    /// fallback taken), once per object and assumption, with the kernels it
    /// held on when that is not all of them.
    pub fn assumptions(&self) -> Vec<(&str, String)> {
        let mut on: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
        for c in &self.cells {
            for a in &c.assumptions {
                on.entry((c.object.as_str(), a.as_str()))
                    .or_default()
                    .push(c.kernel.as_str());
            }
        }
        on.into_iter()
            .map(|((object, text), kernels)| {
                if kernels.len() == self.kernels.len() {
                    (object, text.to_string())
                } else {
                    (object, format!("{text} (on {})", kernels.join(", ")))
                }
            })
            .collect()
    }

    /// The report as pretty JSON; `exit_status` beside `exit_code` is the
    /// number the process exits with, as the stream's `run-finished` says it.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Written<'a> {
            #[serde(flatten)]
            report: &'a Report,
            exit_status: u8,
        }
        let written = Written {
            report: self,
            exit_status: self.exit_code as u8,
        };
        serde_json::to_string_pretty(&written).expect("reports serialize")
    }
}

/// The counts and the exit code the cells imply.
fn tally(cells: &[Cell], allow_unavailable: bool) -> (Summary, ExitCode) {
    let count = |s: Status| cells.iter().filter(|c| c.status == s).count();
    let summary = Summary {
        cells: cells.len(),
        pass: count(Status::Pass),
        fail: count(Status::Fail),
        unavailable: count(Status::Unavailable),
        infra_error: count(Status::InfraError),
        required_failures: cells
            .iter()
            .filter(|c| c.required && matches!(c.status, Status::Fail | Status::UnexpectedPass))
            .count(),
        expected_fail: count(Status::ExpectedFail),
        unexpected_pass: count(Status::UnexpectedPass),
    };
    (summary, exit_code(cells, allow_unavailable))
}

/// 2 when a required cell failed; else 1 when a required cell has no
/// verdict; else 0. A real failure outranks missing verdicts: it is news
/// whatever else went wrong.
fn exit_code(cells: &[Cell], allow_unavailable: bool) -> ExitCode {
    let required = || cells.iter().filter(|c| c.required);
    if required().any(|c| matches!(c.status, Status::Fail | Status::UnexpectedPass)) {
        return ExitCode::Regression;
    }
    let no_verdict = |c: &&Cell| match c.status {
        Status::InfraError => true,
        Status::Unavailable => !allow_unavailable,
        _ => false,
    };
    if required().any(|c| no_verdict(&c)) {
        return ExitCode::ToolFailure;
    }
    ExitCode::Pass
}

/// The cells of one kernel with the declared expectations applied: what a
/// report will hold for that kernel, available as soon as it finishes.
pub(crate) fn kernel_cells(
    run: &KernelRun,
    objects: &[String],
    expectations: &Expectations,
) -> Vec<Cell> {
    let mut cells = cells_for_kernel(run, objects);
    for c in &mut cells {
        apply_expectation(c, expectations);
    }
    cells
}

/// A declared floor turns a failure with that code into an expected failure;
/// a different code stays a failure (the cell says what was expected), and a
/// pass becomes an unexpected pass.
fn apply_expectation(c: &mut Cell, expectations: &Expectations) {
    let Some(&expected) = expectations.get(&c.object).and_then(|k| k.get(&c.kernel)) else {
        return;
    };
    c.expected = Some(expected);
    c.status = match c.status {
        Status::Fail if c.code == Some(expected) => Status::ExpectedFail,
        Status::Pass => Status::UnexpectedPass,
        other => other,
    };
}

/// `(major, minor, patch)` of a kernel, from its release or its profile name;
/// kernels without a number sort last.
fn version_key(k: &KernelRun) -> (u32, u32, u32) {
    let parse = |s: &str| -> Option<(u32, u32, u32)> {
        let mut it = s
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>().ok());
        Some((
            it.next()??,
            it.next().flatten().unwrap_or(0),
            it.next().flatten().unwrap_or(0),
        ))
    };
    k.release
        .as_deref()
        .and_then(parse)
        .or_else(|| k.kernel.rsplit('-').next().and_then(parse))
        .unwrap_or((u32::MAX, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(required: bool, status: Status) -> Cell {
        serde_json::from_value(serde_json::json!({
            "object": "o", "kernel": "k", "required": required, "status": status,
            "stage": null, "code": null, "program": null, "message": null, "remediation": null,
            "errno": null, "verifier_tail": [], "kernel_release": null, "expected": null, "findings": [], "programs": [], "variants": []
        }))
        .unwrap()
    }

    #[test]
    fn the_json_report_gives_the_exit_code_as_a_name_and_as_the_process_number() {
        let mut r = crate::report::test_report(&["k"], &["loop.bpf.o"], |_| {});
        r.cells[0].status = Status::Fail;
        r.cells[0].required = true;
        r.recount();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["exit_code"], "regression");
        assert_eq!(v["exit_status"], 2);
        // A report read back (merge, diff, baseline) keeps its verdict.
        assert_eq!(
            Report::from_json(&r.to_json()).unwrap().exit_code,
            ExitCode::Regression
        );
    }

    #[test]
    fn a_hook_no_kernel_of_the_run_has_is_named_as_a_possible_placeholder() {
        let failing = |kernel: &str, program: &str| {
            let mut c = cell(true, Status::Fail);
            c.object = "probe.bpf.o".into();
            c.kernel = kernel.into();
            c.findings = vec![crate::classify::Finding {
                program: Some(program.into()),
                ..crate::classify::Finding::plain(
                    crate::classify::Stage::Load,
                    Code::MissingAttachTarget,
                    None,
                    "failed to find kernel BTF type ID of 'dummy_file_open'".into(),
                    None,
                    Vec::new(),
                )
            }];
            c.programs = vec![crate::classify::ProgramState {
                name: program.into(),
                section: "fentry/dummy_file_open".into(),
                load: "failed".into(),
                attach: "skipped".into(),
                runs: None,
                optional: false,
                stand_in: None,
                complexity: None,
            }];
            c
        };
        let mut r = Report::from_parts(
            "m",
            vec!["probe.bpf.o".into()],
            Vec::new(),
            vec![failing("a", "open_entry"), failing("b", "open_entry")],
            Vec::new(),
            false,
        );
        let notes = r.placeholder_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("attaches to `dummy_file_open`, which none of the 2 kernels"));
        assert!(notes[0].contains(r#"[objects."probe".programs."open_entry"]"#));
        // One kernel that has it: not a placeholder.
        r.cells[1].findings.clear();
        r.cells[1].status = Status::Pass;
        assert!(r.placeholder_notes().is_empty());
    }

    #[test]
    fn exit_code_rules() {
        use Status::*;
        assert_eq!(exit_code(&[cell(true, Pass)], false), ExitCode::Pass);
        assert_eq!(
            exit_code(&[cell(true, Pass), cell(false, Fail)], false),
            ExitCode::Pass
        );
        assert_eq!(
            exit_code(&[cell(true, Fail), cell(true, InfraError)], false),
            ExitCode::Regression
        );
        assert_eq!(
            exit_code(&[cell(true, InfraError)], true),
            ExitCode::ToolFailure
        );
        assert_eq!(
            exit_code(&[cell(true, Unavailable)], false),
            ExitCode::ToolFailure
        );
        assert_eq!(
            exit_code(&[cell(true, Unavailable), cell(true, Pass)], true),
            ExitCode::Pass
        );
    }
}
