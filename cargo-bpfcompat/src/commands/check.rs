//! `cargo bpfcompat check`: the pre-load gate on the running kernel.

use std::path::PathBuf;

use bpfcompat_engine::objects::{check_bpf_object, display_names};
use bpfcompat_engine::outcome::RunOutput;
use bpfcompat_engine::report::{Judge, failures_text, matrix};
use clap::Args;
use validator::{Options, Source, validate_all_on_host};

use bpfcompat_engine::wire::Mode;

use crate::args::named;
use crate::exit::Code;

/// `check` arguments.
#[derive(Args)]
pub struct CheckArgs {
    /// Compiled BPF objects to validate on this machine's kernel.
    #[arg(value_name = "OBJECT", required_unless_present = "cleanup")]
    pub objects: Vec<PathBuf>,
    /// Only remove what checks that were killed left on this machine (their
    /// test devices `bpfve<pid>a/b`, `bpfnk<pid>a/b`, their cgroups
    /// `bpfcompat-check-<pid>-*` and what still runs in them). Every check
    /// does this first; a live check's are never touched.
    #[arg(long, conflicts_with_all = ["objects", "json", "stats"])]
    pub cleanup: bool,
    /// How far validation goes: `load` (default), `attach`, or `fire` (attach,
    /// run a trigger, and require every program to run at least once).
    #[arg(long, value_parser = named::<Mode>(), default_value = "load")]
    pub mode: Mode,
    /// Same as `--mode attach`.
    #[arg(long, conflicts_with = "mode")]
    pub attach: bool,
    /// The fire-mode trigger command (default: a built-in workload).
    #[arg(long, value_name = "CMD")]
    pub trigger: Option<String>,
    /// Write the JSON report here (same schema as `test`, one kernel: `host`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print the verifier's figures per program (instructions, processed
    /// instructions and the share of the limit, states, time).
    #[arg(long)]
    pub stats: bool,
    /// Fail a cell (COMPLEXITY_HEADROOM, exit 2) where a program leaves less
    /// than PCT of the verifier's limit free, e.g. `10%`.
    #[arg(long, value_name = "PCT")]
    pub min_headroom: Option<crate::args::Percent>,
}

pub fn run(a: CheckArgs) -> Result<Code, crate::error::Error> {
    if a.cleanup {
        let missing = validator::missing_privileges();
        if !missing.is_empty() {
            return Err(format!(
                "--cleanup removes devices and cgroups: it needs {}\n  (hint: run it with sudo)",
                missing.join(", ")
            )
            .into());
        }
        let removed = validator::cleanup();
        for r in &removed {
            crate::stdout::outln!("Removed {r}");
        }
        if removed.is_empty() {
            crate::stdout::outln!("Nothing left by a killed check");
        }
        return Ok(Code::Pass);
    }
    for o in &a.objects {
        check_bpf_object(o)?;
    }
    let names = display_names(&a.objects);
    let mode = if a.attach { Mode::Attach } else { a.mode };
    let trigger = a
        .trigger
        .as_deref()
        .map(shell_words::split)
        .transpose()
        .map_err(|e| format!("--trigger: {e}"))?;
    // A first Ctrl-C or SIGTERM ends the check cleanly: what it attached and
    // created on this host is removed, objects not yet checked are left out.
    let cancel = crate::signals::install()?;
    let opts = Options {
        mode,
        trigger,
        cancel: cancel.clone(),
        ..Options::default()
    };
    let objects: Vec<(&str, Source)> = names
        .iter()
        .zip(&a.objects)
        .map(|(n, p)| (n.as_str(), Source::Path(p)))
        .collect();
    let output = RunOutput {
        kernels: vec![validate_all_on_host(&objects, &opts)?],
        notes: Vec::new(),
    };
    let mut judge = Judge::new("host (running kernel)", names);
    judge.gate = bpfcompat_engine::report::Gate {
        max_growth_pct: None,
        min_headroom_pct: a.min_headroom.map(|p| p.0),
    };
    let floors = bpfcompat_engine::floor::of_objects(
        judge
            .objects
            .clone()
            .iter()
            .zip(&a.objects)
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect::<Vec<_>>(),
    );
    let report = judge.report(output, Some(floors), |_| {}).report;
    if let Some(p) = &a.json {
        std::fs::write(p, report.to_json())
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    crate::stdout::out!("{}", matrix(&report, crate::render::look()));
    let failures = failures_text(&report);
    if !failures.is_empty() {
        crate::stdout::out!("\n{failures}");
    }
    if a.stats {
        crate::stdout::out!("\n{}", bpfcompat_engine::report::stats_text(&report));
    }
    Ok(crate::signals::exit_code(&cancel).unwrap_or(report.exit_code))
}
