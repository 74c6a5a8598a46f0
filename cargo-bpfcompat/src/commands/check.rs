//! `cargo bpfcompat check`: the pre-load gate on the running kernel.

use std::path::PathBuf;

use bpfcompat_engine::config::{Config, find_config, load_config, load_config_file};
use bpfcompat_engine::objects::{check_bpf_object, display_names};
use bpfcompat_engine::outcome::RunOutput;
use bpfcompat_engine::report::{Judge, failures_text, matrix};
use bpfcompat_engine::wire::{Fixups, Mode};
use clap::Args;
use validator::{Options, Source, validate_configured_on_host};

use crate::args::named;
use crate::exit::Code;
use crate::report_files::ReportFiles;
use crate::workspace::CargoArgs;

/// `check` arguments.
#[derive(Args)]
pub struct CheckArgs {
    /// Compiled BPF objects to validate on this machine's kernel. Without
    /// them, the workspace is built and every BPF object it produces is
    /// checked, as `test` finds them.
    #[arg(value_name = "OBJECT")]
    pub objects: Vec<PathBuf>,
    /// bpfcompat's configuration file (fix-ups, expected failures). Default:
    /// the workspace's; with OBJECTs, the nearest `bpfcompat.toml` (or
    /// Cargo.toml metadata) to the current directory.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only remove what checks that were killed left on this machine (their
    /// test devices `bpfve<pid>a/b`, `bpfnk<pid>a/b`, their cgroups
    /// `bpfcompat-check-<pid>-*` and what still runs in them). Every check
    /// does this first; a live check's are never touched.
    #[arg(long, conflicts_with_all = ["objects", "json", "markdown", "junit", "html", "stats"])]
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
    /// Print the verifier's figures per program (instructions, processed
    /// instructions and the share of the limit, states, time).
    #[arg(long)]
    pub stats: bool,
    /// Fail a cell (COMPLEXITY_HEADROOM, exit 2) where a program leaves less
    /// than PCT of the verifier's limit free, e.g. `10%`.
    #[arg(long, value_name = "PCT")]
    pub min_headroom: Option<crate::args::Percent>,
    /// The same reports as `test`'s (one kernel: `host`).
    #[command(flatten)]
    pub reports: ReportFiles,
    #[command(flatten)]
    pub cargo: CargoArgs,
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
    a.reports.check()?;
    let (named, config) = checked_objects(&a)?;
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
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
    // Each object with its own fix-ups, as this kernel's loader would
    // apply them (its table, laid over for this release).
    let release = bpfcompat_engine::guest::init::kernel_release();
    let fixups: Vec<Fixups> = names
        .iter()
        .map(|n| {
            config
                .table_for(n)
                .map(|t| t.fixups().for_kernel("host", &release))
                .unwrap_or_default()
        })
        .collect();
    let objects: Vec<(&str, Source, &Fixups)> = named
        .iter()
        .zip(&fixups)
        .map(|((n, p), f)| (n.as_str(), Source::Path(p), f))
        .collect();
    let output = RunOutput {
        kernels: vec![validate_configured_on_host(&objects, &opts)?],
        notes: Vec::new(),
    };
    let mut judge = Judge::new("host (running kernel)", names.clone());
    judge.expectations = config.expectations_for(&names);
    judge.gate = bpfcompat_engine::report::Gate {
        max_growth_pct: None,
        min_headroom_pct: a.min_headroom.map(|p| p.0),
    };
    let floors = bpfcompat_engine::floor::of_objects(
        named
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect::<Vec<_>>(),
    );
    let report = judge.report(output, Some(floors), |_| {}).report;
    let unwritten = a.reports.write(&report, false);
    for e in &unwritten {
        eprintln!("{} {e}", crate::render::label("error"));
    }
    crate::stdout::out!("{}", matrix(&report, crate::render::look()));
    let failures = failures_text(&report);
    if !failures.is_empty() {
        crate::stdout::out!("\n{failures}");
    }
    if a.stats {
        crate::stdout::out!("\n{}", bpfcompat_engine::report::stats_text(&report));
    }
    Ok(
        match (crate::signals::exit_code(&cancel), unwritten.is_empty()) {
            (Some(code), _) => code,
            (None, false) => Code::ToolFailure,
            (None, true) => report.exit_code,
        },
    )
}

/// The objects to check, by report name, and the configuration that
/// applies: the OBJECTs given, else the workspace's build.
fn checked_objects(a: &CheckArgs) -> Result<(Vec<(String, PathBuf)>, Config), crate::error::Error> {
    if a.objects.is_empty() {
        let (build, found) = crate::workspace::built_objects(&a.cargo)?;
        let config = match &a.config {
            Some(p) => load_config_file(p)?,
            None => load_config(&build.workspace_root)?.unwrap_or_default(),
        };
        let named = found.into_iter().map(|d| (d.name, d.path)).collect();
        return Ok((named, config));
    }
    for o in &a.objects {
        check_bpf_object(o)?;
    }
    let config = match &a.config {
        Some(p) => load_config_file(p)?,
        None => find_config(&std::env::current_dir()?)?.unwrap_or_default(),
    };
    let named = display_names(&a.objects)
        .into_iter()
        .zip(a.objects.iter().cloned())
        .collect();
    Ok((named, config))
}
