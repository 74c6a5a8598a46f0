//! `cargo bpfcompat test`: validate objects on every kernel of a matrix.

use std::path::PathBuf;
use std::time::Duration;

use bpfcompat::kernel::{Cache, Mirrors};
use bpfcompat::matrix::Matrix;
use bpfcompat::objects::{check_bpf_object, display_names};
use bpfcompat::report::{Report, failures_text, markdown, matrix_table};
use bpfcompat::run::{KernelTarget, ObjectInput, Plan, Settings};
use bpfcompat::vm::AccelChoice;
use clap::Args;

use crate::cli::{Accel, MatrixArgs};
use crate::exit::Code;
use crate::progress::Progress;

/// `test` arguments.
#[derive(Args)]
pub struct TestArgs {
    /// A compiled BPF object to validate (repeatable).
    #[arg(long = "object", value_name = "FILE", required = true)]
    pub objects: Vec<PathBuf>,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Guests at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Accelerator: `auto` uses KVM only where a KVM guest really runs.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    pub accel: Accel,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub memory: u32,
    /// Guest vCPUs (1 is the stable choice under TCG).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub cpus: u32,
    /// Limit for one guest, boot to power-off, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// Limit for one object inside a guest, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub object_timeout: u64,
    /// Only load; do not attach programs.
    #[arg(long)]
    pub no_attach: bool,
    /// Boots retried when a guest dies before the agent starts.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// Kernels that cannot be had (no mirror, no network) do not fail the run;
    /// they are still listed with the fix.
    #[arg(long)]
    pub allow_unavailable: bool,
    /// Write the JSON report here (schema: docs/report-schema.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Keep per-kernel evidence (console, records, QEMU command line, kernel config) here.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
}

pub fn run(a: TestArgs) -> Result<Code, Box<dyn std::error::Error>> {
    for o in &a.objects {
        check_bpf_object(o)?;
    }
    let mut matrix = Matrix::load(&a.matrix.matrix)?;
    matrix.select(&a.matrix.kernels)?;
    let names = display_names(&a.objects);
    let objects = a
        .objects
        .iter()
        .zip(names)
        .map(|(p, name)| ObjectInput {
            name,
            path: p.clone(),
        })
        .collect();
    let kernels = matrix
        .kernels
        .iter()
        .map(|k| KernelTarget {
            profile: k.clone(),
            pin: matrix.lock.get(&k.name).cloned(),
        })
        .collect();
    let plan = Plan {
        kernels,
        objects,
        settings: Settings {
            accel: match a.accel {
                Accel::Auto => AccelChoice::Auto,
                Accel::Kvm => AccelChoice::Kvm,
                Accel::Tcg => AccelChoice::Tcg,
            },
            jobs: a
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            memory_mib: a.memory,
            cpus: a.cpus,
            timeout: Duration::from_secs(a.timeout),
            object_timeout: Duration::from_secs(a.object_timeout),
            attach: !a.no_attach,
            retries: a.retries,
            agent: agent_binary()?,
            evidence: a.evidence.clone(),
        },
    };
    let object_names = plan.objects.iter().map(|o| o.name.clone()).collect();
    let mut progress = Progress::new(&plan);
    let output = bpfcompat::run::run(&plan, &Mirrors::discover(), &Cache::discover(), &mut |e| {
        progress.event(e)
    })?;
    progress.finish();
    let report = Report::new(&matrix.origin, object_names, output, a.allow_unavailable);
    write_reports(&report, &a)?;
    print!("\n{}", matrix_table(&report));
    let failures = failures_text(&report);
    if !failures.is_empty() {
        print!("\n{failures}");
    }
    let s = &report.summary;
    println!(
        "\n{} of {} cells pass; {} fail ({} on required kernels), {} unavailable, {} without verdict",
        s.pass, s.cells, s.fail, s.required_failures, s.unavailable, s.infra_error
    );
    Ok(report.exit_code.into())
}

/// Writes every requested report file; each is written even if another fails.
fn write_reports(report: &Report, a: &TestArgs) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut write = |path: &Option<PathBuf>, text: String| {
        if let Some(p) = path
            && let Err(e) = std::fs::write(p, text)
        {
            errors.push(format!("cannot write {}: {e}", p.display()));
        }
    };
    write(&a.json, report.to_json());
    write(&a.markdown, markdown(report));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The guest agent: `BPFCOMPAT_AGENT`, else `bpfcompat-agent` beside this binary.
fn agent_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("BPFCOMPAT_AGENT") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let agent = me.with_file_name("bpfcompat-agent");
    if agent.is_file() {
        Ok(agent)
    } else {
        Err(format!(
            "the guest agent {} is missing\n  (hint: install both binaries with `cargo install --path cargo-bpfcompat`, or set BPFCOMPAT_AGENT)",
            agent.display()
        ))
    }
}
