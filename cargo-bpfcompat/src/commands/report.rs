//! `cargo bpfcompat report diff | merge`: work on JSON reports written by
//! `test --json`, without booting anything.

use std::path::{Path, PathBuf};

use bpfcompat_engine::report::{Judge, Judged, Report, changes_text, growth_text, judge};
use clap::{Args, Subcommand};

use crate::exit::Code;

/// `report` subcommands.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Compare two reports: new failures (regressions), fixes, still failing,
    /// and how each program's verifier complexity changed. Exits 2 when a
    /// required cell newly fails in the second, or fails the complexity gate.
    Diff {
        /// The earlier report (the baseline).
        before: PathBuf,
        /// The later report.
        after: PathBuf,
        #[command(flatten)]
        complexity: crate::args::ComplexityArgs,
    },
    /// Merge the reports of one run's slices (`test --partition I/N`) into
    /// the report of the whole run; refuses (exit 1) a missing slice, a slice
    /// given twice, cells in two reports, and reports of different runs.
    Merge(MergeArgs),
}

/// `report merge` arguments.
#[derive(Args)]
pub struct MergeArgs {
    /// The JSON reports of the slices (`test --partition … --json`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Merge even when slices are missing: the result names them and the
    /// kernels they would have run, in every view. Reports of different
    /// runs, a slice given twice or cells in two reports are never merged.
    #[arg(long)]
    pub allow_partial: bool,
    /// Compare the merged run with an earlier report (as `test --baseline`):
    /// every report written, the step summary too, says what changed, and
    /// the exit code is 2 only for new failures of required cells.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub complexity: crate::args::ComplexityArgs,
    #[command(flatten)]
    pub files: crate::report_files::ReportFiles,
}

fn load(path: &Path) -> Result<Report, String> {
    let text = bpfcompat_engine::safe::read_text_input(path, bpfcompat_engine::safe::REPORT_LIMIT)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Report::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(cmd: ReportCommand) -> Result<Code, crate::error::Error> {
    match cmd {
        ReportCommand::Diff {
            before,
            after,
            complexity,
        } => {
            let (before, mut after) = (load(&before)?, load(&after)?);
            let mut judge = Judge::new(&after.matrix, after.objects.clone());
            judge.baseline = Some(&before);
            judge.gate = complexity.gate();
            let changes = judge.verdict(&mut after);
            let judged = Judged {
                report: after,
                changes,
            };
            let changes = judged.changes.as_deref().unwrap_or_default();
            crate::stdout::out!("{}", changes_text(changes));
            if !judged.report.complexity_growth.is_empty() {
                crate::stdout::out!("\n{}", growth_text(&judged.report.complexity_growth));
            }
            Ok(judge::exit_code(&judged, None, false))
        }
        ReportCommand::Merge(a) => {
            let reports = a
                .reports
                .iter()
                .map(|p| Ok((p.display().to_string(), load(p)?)))
                .collect::<Result<Vec<_>, String>>()?;
            let mut merged = bpfcompat_engine::report::merge(&reports, a.allow_partial)?;
            let baseline = a.baseline.as_deref().map(load).transpose()?;
            a.files.check()?;
            let mut judge = Judge::new(&merged.matrix, merged.objects.clone());
            judge.baseline = baseline.as_ref();
            judge.gate = a.complexity.gate();
            let changes = judge.verdict(&mut merged);
            let judged = Judged {
                report: merged,
                changes,
            };
            // The merged verdict is what a gate job's summary page shows.
            let errors = a.files.write(&judged.report, true);
            if let Some(e) = errors.first() {
                return Err(e.clone().into());
            }
            crate::stdout::out!("{}", crate::render::human(&judged.report, false));
            if let Some(changes) = &judged.changes {
                crate::stdout::out!("\n{}", changes_text(changes));
            }
            Ok(judge::exit_code(&judged, None, false))
        }
    }
}
