//! The report files a run or a merge writes: `--json`, `--markdown`,
//! `--junit`, `--html`. Checked before any work, each written even when
//! another fails.

use std::path::{Path, PathBuf};

use bpfcompat_engine::report::{Report, html_in, junit, markdown};
use clap::Args;

/// Where to write reports.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Reports")]
pub struct ReportFiles {
    /// Write the JSON report here (schema: docs/report-schema.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a Markdown report here (also appended to $GITHUB_STEP_SUMMARY
    /// when set).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write a JUnit XML report here (one suite per object, one case per
    /// kernel).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML matrix here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

impl ReportFiles {
    fn each(&self) -> [(&'static str, Option<&Path>); 4] {
        [
            ("--json", self.json.as_deref()),
            ("--markdown", self.markdown.as_deref()),
            ("--junit", self.junit.as_deref()),
            ("--html", self.html.as_deref()),
        ]
    }

    /// Checks that every path can be written, without leaving anything
    /// behind where nothing was before: a path that cannot be written must
    /// not cost a whole matrix run.
    pub fn check(&self) -> Result<(), String> {
        for (flag, path) in self.each() {
            if let Some(p) = path {
                writable(p).map_err(|e| {
                    format!(
                        "{flag} {}: {e}\n  (hint: name a file in an existing directory you can write)",
                        p.display()
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Writes every requested file (and appends the Markdown to
    /// `$GITHUB_STEP_SUMMARY` when `step_summary`); returns what could not
    /// be written.
    pub fn write(&self, report: &Report, step_summary: bool) -> Vec<String> {
        let mut errors = Vec::new();
        for (flag, path) in self.each() {
            let Some(p) = path else { continue };
            let text = match flag {
                "--json" => report.to_json(),
                "--markdown" => markdown(report),
                "--junit" => junit(report),
                // Links to evidence relative to the page, which travels with it.
                _ => html_in(report, p.parent()),
            };
            if let Err(e) = std::fs::write(p, text) {
                errors.push(format!("cannot write {}: {e}", p.display()));
            }
        }
        // GitHub Actions shows this file on the run's summary page.
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|_| step_summary) {
            use std::io::Write as _;
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&summary)
                .and_then(|mut f| f.write_all(markdown(report).as_bytes()));
            if let Err(e) = appended {
                errors.push(format!("cannot append to $GITHUB_STEP_SUMMARY: {e}"));
            }
        }
        errors
    }
}

fn writable(p: &Path) -> Result<(), String> {
    if p.is_dir() {
        return Err("is a directory".into());
    }
    let existed = p.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .map_err(|e| format!("cannot write it: {e}"))?;
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
