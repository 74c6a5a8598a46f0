//! `cargo bpfcompat check`: the pre-load gate on the running kernel.

use std::path::PathBuf;

use bpfcompat::objects::{check_bpf_object, display_names};
use bpfcompat::outcome::{KernelRun, RunOutput};
use bpfcompat::report::{Report, failures_text, matrix_table};
use clap::Args;
use validator::{HostError, Options, Source, missing_privileges, validate_source};

use bpfcompat::wire::Mode;

use crate::cli::mode_parser;
use crate::exit::Code;

/// `check` arguments.
#[derive(Args)]
pub struct CheckArgs {
    /// Compiled BPF objects to validate on this machine's kernel.
    #[arg(value_name = "OBJECT", required = true)]
    pub objects: Vec<PathBuf>,
    /// How far validation goes: `load` (default), `attach`, or `fire` (attach,
    /// run a trigger, and require every program to run at least once).
    #[arg(long, value_parser = mode_parser(), default_value = "load")]
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
}

pub fn run(a: CheckArgs) -> Result<Code, Box<dyn std::error::Error>> {
    let missing = missing_privileges();
    if !missing.is_empty() {
        return Err(HostError::Privileges {
            missing: missing.join(", "),
        }
        .into());
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
    let opts = Options {
        mode,
        trigger,
        ..Options::default()
    };
    let reports = a
        .objects
        .iter()
        .zip(&names)
        .map(|(p, n)| validate_source(n, Source::Path(p), &opts))
        .collect();
    let host = KernelRun::on_host(
        bpfcompat::guest::init::kernel_release(),
        std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        reports,
    );
    let output = RunOutput {
        kernels: vec![host],
        notes: Vec::new(),
    };
    let report = Report::new(
        "host (running kernel)",
        names,
        output,
        false,
        &Default::default(),
    );
    if let Some(p) = &a.json {
        std::fs::write(p, report.to_json())
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    print!("{}", matrix_table(&report));
    let failures = failures_text(&report);
    if !failures.is_empty() {
        print!("\n{failures}");
    }
    Ok(report.exit_code.into())
}
