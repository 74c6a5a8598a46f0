//! `cargo bpfcompat report diff | merge`: work on JSON reports written by
//! `test --json`, without booting anything.

use std::path::{Path, PathBuf};

use bpfcompat::report::{Report, changes_text, compare, exit_with_baseline, html, junit, markdown};
use clap::{Args, Subcommand};

use crate::exit::Code;

/// `report` subcommands.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Compare two reports: new failures (regressions), fixes, still failing.
    /// Exits 2 when a required cell newly fails in the second.
    Diff {
        /// The earlier report (the baseline).
        before: PathBuf,
        /// The later report.
        after: PathBuf,
    },
    /// Merge shard reports (`test --shard I/N`) into one.
    Merge(MergeArgs),
}

/// `report merge` arguments.
#[derive(Args)]
pub struct MergeArgs {
    /// The shard reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the merged HTML matrix here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the merged Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the merged JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

fn load(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Report::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(cmd: ReportCommand) -> Result<Code, crate::error::Error> {
    match cmd {
        ReportCommand::Diff { before, after } => {
            let (before, after) = (load(&before)?, load(&after)?);
            let changes = compare(&before, &after);
            print!("{}", changes_text(&changes));
            Ok(exit_with_baseline(&changes, &after))
        }
        ReportCommand::Merge(a) => {
            let reports = a
                .reports
                .iter()
                .map(|p| load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = bpfcompat::report::merge(&reports)?;
            for (path, text) in [
                (&a.json, merged.to_json()),
                (&a.html, html(&merged)),
                (&a.markdown, markdown(&merged)),
                (&a.junit, junit(&merged)),
            ] {
                if let Some(p) = path {
                    std::fs::write(p, text)
                        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                }
            }
            print!("{}", crate::render::human(&merged, false));
            Ok(merged.exit_code)
        }
    }
}
