//! `cargo bpfcompat kernels survey`: boot every kernel of a matrix with an
//! empty job and tabulate what each guest said about itself (booted or not,
//! boot time, release, BTF, LSMs, the BPF options of its build). The table
//! of docs/kernels.md is this command's output over `--matrix all`.

use std::fmt::Write as _;
use std::time::Duration;

use bpfcompat_engine::kernel::{Cache, Mirrors};
use bpfcompat_engine::matrix::Matrix;
use bpfcompat_engine::outcome::{KernelOutcome, KernelRun, now_rfc3339};
use bpfcompat_engine::run::{Event, KernelTarget, Plan, Settings};
use bpfcompat_engine::vm::AccelChoice;
use bpfcompat_engine::wire::Mode;
use clap::Args;

use crate::args::MatrixArgs;
use crate::exit::Code;
use crate::progress::Progress;

/// `kernels survey`.
#[derive(Args)]
pub struct SurveyArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Write the table as Markdown here (stdout gets it too).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<std::path::PathBuf>,
    /// Guests at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

/// The build options worth a column: what decides whole classes of programs.
const NOTABLE: &[(&str, &str)] = &[
    ("CONFIG_BPF_LSM", "BPF_LSM"),
    ("CONFIG_FPROBE", "FPROBE"),
    ("CONFIG_DEBUG_INFO_BTF_MODULES", "BTF_MODULES"),
    ("CONFIG_NET_CLS_BPF", "CLS_BPF"),
    ("CONFIG_XDP_SOCKETS", "XDP_SOCKETS"),
];

pub fn run(a: &SurveyArgs) -> Result<Code, crate::error::Error> {
    let mut matrix = Matrix::load(&a.matrix.matrix)?;
    matrix.select(&a.matrix.kernels)?;
    let kernels = KernelTarget::all_of(&matrix);
    let plan = Plan {
        kernels,
        objects: Vec::new(),
        commands: Vec::new(),
        // The survey measures boots: cold guests.
        settings: cold_settings(
            super::test::agent_binary()?,
            a.jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        ),
    };
    let started = now_rfc3339();
    let cancel = crate::signals::install()?;
    let mut progress = Progress::new(&plan, false);
    let output = bpfcompat_engine::run::run(
        &plan,
        &Mirrors::discover(),
        &Cache::discover()?,
        &cancel,
        &mut |e: Event| progress.event(&e),
    )?;
    progress.finish();
    let table = table(&matrix, &output.kernels, &started);
    crate::stdout::out!("{table}");
    if let Some(p) = &a.markdown {
        std::fs::write(p, &table).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    let all_booted = output
        .kernels
        .iter()
        .all(|k| matches!(k.outcome, KernelOutcome::Completed));
    Ok(if all_booted {
        Code::Pass
    } else {
        Code::Regression
    })
}

/// The settings of a run that boots each kernel cold with the defaults of
/// `test` (`kernels survey`, `bisect`): `jobs` guests at once.
pub(crate) fn cold_settings(agent: std::path::PathBuf, jobs: usize) -> Settings {
    Settings {
        accel: AccelChoice::Auto,
        jobs,
        memory_mib: 512,
        cpus: 1,
        timeout: Duration::from_secs(300),
        object_timeout: Duration::from_secs(120),
        mode: Mode::Load,
        trigger: None,
        strict_maps: false,
        trace_loaders: true,
        retries: 2,
        agent,
        evidence: None,
        warm: false,
    }
}

/// The Markdown table, one row per profile in matrix order.
fn table(matrix: &Matrix, runs: &[KernelRun], started: &str) -> String {
    let accel = runs.first().map_or("?", |k| k.accel.as_str());
    let mut out = format!(
        "Surveyed by `cargo bpfcompat kernels survey` ({}) on {started}, accelerator {accel}.\n\n",
        concat!("bpfcompat ", env!("CARGO_PKG_VERSION"))
    );
    out.push_str(
        "| profile | package | version | booted | boot | release | BTF | LSMs | notable config |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for k in &matrix.kernels {
        let Some(run) = runs.iter().find(|r| r.kernel == k.name) else {
            continue;
        };
        let (package, version) = match matrix.lock.get(&k.name) {
            Some(p) => (p.package.as_str(), p.version.as_str()),
            None => ("-", "-"),
        };
        let booted = match &run.outcome {
            KernelOutcome::Completed => "yes".to_string(),
            KernelOutcome::Unavailable { reason } | KernelOutcome::Infra { reason } => {
                let first = reason.lines().next().unwrap_or_default();
                format!("no: {}", first.replace('|', "/"))
            }
            KernelOutcome::Panic { line } => format!("no: panic: {}", line.replace('|', "/")),
            KernelOutcome::Timeout { after_secs } => format!("no: hung ({after_secs} s)"),
            KernelOutcome::Interrupted { .. } => "no: stopped".into(),
        };
        let boot = if run.timings.boot_ms > 0 {
            format!("{:.1} s", run.timings.boot_ms as f64 / 1000.0)
        } else {
            "-".into()
        };
        let btf = match run.kernel_btf {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let notable: Vec<&str> = NOTABLE
            .iter()
            .filter(|(option, _)| {
                run.kernel_config
                    .get(*option)
                    .is_some_and(|v| v == "y" || v == "m")
            })
            .map(|(_, short)| *short)
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {package} | {version} | {booted} | {boot} | {} | {btf} | {} | {} |",
            k.name,
            run.release.as_deref().unwrap_or("?"),
            run.lsm.as_deref().unwrap_or("?"),
            if run.kernel_config.is_empty() {
                "(no config in its packages)".to_string()
            } else if notable.is_empty() {
                "-".to_string()
            } else {
                notable.join(" ")
            }
        );
    }
    out
}
