//! The pre-load gate: the same validation as in a guest, on the running
//! kernel, in milliseconds. For a loader or an operator who wants to refuse
//! an object before loading it for real.

use std::path::Path;

use bpfcompat_engine::classify::{Cell, cells_for_kernel};
use bpfcompat_engine::outcome::KernelRun;
use bpfcompat_engine::wire::{Fixups, ObjectReport};

use crate::{Options, Source, validate_source};

/// The verdict on one object on the running kernel.
#[derive(Debug, Clone)]
pub struct HostVerdict {
    /// The classified cell (status, code, program, message, remediation).
    pub cell: Cell,
    /// The raw per-program and per-map report.
    pub report: ObjectReport,
}

impl HostVerdict {
    /// Whether every program loaded (and attached, when asked).
    pub fn passed(&self) -> bool {
        self.cell.status == bpfcompat_engine::classify::Status::Pass
    }
}

/// The gate could not run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Not privileged enough to load BPF programs.
    #[error(
        "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8); this process lacks {missing}\n  (hint: run as root, e.g. with sudo, or grant the capabilities: setcap cap_bpf,cap_perfmon+ep <binary>)"
    )]
    Privileges {
        /// The missing capabilities, comma-separated.
        missing: String,
    },
}

/// Capability numbers (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The capabilities this process lacks to load BPF, by name; empty when it
/// has enough (CAP_SYS_ADMIN alone also suffices).
pub fn missing_privileges() -> Vec<&'static str> {
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(c, _)| !has(*c))
        .map(|(_, n)| n)
        .collect()
}

/// Validates one object on the running kernel and classifies the result.
/// Nothing stays loaded or attached afterwards.
///
/// ```no_run
/// use validator::{Options, Source, validate_on_host};
///
/// let verdict = validate_on_host("probe.bpf.o", Source::Path("probe.bpf.o".as_ref()), &Options { mode: bpfcompat_engine::wire::Mode::Attach, ..Options::default() })?;
/// if !verdict.passed() {
///     eprintln!("refusing to load: {:?} {}", verdict.cell.code, verdict.cell.message.unwrap_or_default());
/// }
/// # Ok::<(), validator::HostError>(())
/// ```
pub fn validate_on_host(
    name: &str,
    source: Source,
    opts: &Options,
) -> Result<HostVerdict, HostError> {
    let run = validate_all_on_host(&[(name, source)], opts)?;
    let cell = cells_for_kernel(&run, &[name.to_string()]).remove(0);
    let report = run
        .objects
        .into_iter()
        .next()
        .expect("one object, one report");
    Ok(HostVerdict { cell, report })
}

/// Removes what checks that were killed left on this machine (their test
/// devices and cgroups, named with their PIDs); never a live check's.
/// Returns what was removed.
pub fn cleanup() -> Vec<String> {
    let mut removed = crate::pair::sweep_dead();
    removed.extend(crate::cgroup::sweep_dead());
    removed
}

/// Validates several objects on the running kernel: the running kernel as
/// a one-kernel run (`host`), judged by the same classifier as a guest.
pub fn validate_all_on_host(
    objects: &[(&str, Source)],
    opts: &Options,
) -> Result<KernelRun, HostError> {
    let objects: Vec<(&str, Source, &Fixups)> = objects
        .iter()
        .map(|(name, source)| (*name, *source, &opts.fixups))
        .collect();
    validate_configured_on_host(&objects, opts)
}

/// [`validate_all_on_host`], each object with the fix-ups its loader
/// applies (a project's configuration), in place of `opts.fixups`.
pub fn validate_configured_on_host(
    objects: &[(&str, Source, &Fixups)],
    opts: &Options,
) -> Result<KernelRun, HostError> {
    let missing = missing_privileges();
    if !missing.is_empty() {
        return Err(HostError::Privileges {
            missing: missing.join(", "),
        });
    }
    // A killed check's devices and cgroups would be in this one's way.
    for left in cleanup() {
        eprintln!("note: removed {left}, left by a check that was killed");
    }
    let mut reports = Vec::new();
    for (name, source, fixups) in objects {
        if opts.cancel.is_cancelled() {
            break;
        }
        let opts = Options {
            fixups: (*fixups).clone(),
            ..opts.clone()
        };
        let report = validate_source(name, *source, &opts);
        // An object whose validation a stop cut short (its trigger ended
        // early) has no verdict: it is left out with the rest.
        if opts.cancel.is_cancelled() {
            break;
        }
        reports.push(report);
    }
    let release = bpfcompat_engine::guest::init::kernel_release();
    let kernel_config = bpfcompat_engine::kernel::config::running(&release);
    let mut run = KernelRun::on_host(
        release,
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        reports,
    );
    if let Some(signal) = opts.cancel.signal() {
        run.outcome = bpfcompat_engine::outcome::KernelOutcome::Interrupted { signal };
    }
    run.lsm = bpfcompat_engine::guest::init::active_lsms();
    run.kernel_config = kernel_config;
    Ok(run)
}
