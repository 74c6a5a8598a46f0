//! What happened on each kernel: the results of a run, below the scheduler.
//!
//! The runner produces these; the classifier, the reports, the host pre-load
//! gate and the CLI read them. Nothing here knows how guests are scheduled.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::wire::{CommandReport, MalformedRecord, ObjectReport};

/// How a kernel's guest ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KernelOutcome {
    /// The agent reported on every object and the guest powered off.
    Completed,
    /// The kernel could not be had (no mirror, not pinned, download failed).
    Unavailable {
        /// Why, with the fix.
        reason: String,
    },
    /// The guest never ran the agent, or QEMU failed: no verdict.
    Infra {
        /// What happened.
        reason: String,
    },
    /// The kernel panicked after the agent started.
    Panic {
        /// The console line.
        line: String,
    },
    /// The guest ran past its limit after the agent started.
    Timeout {
        /// The limit in seconds.
        after_secs: u64,
    },
    /// The run was stopped (a signal) before this kernel finished; the
    /// objects it had finished keep their verdicts.
    Interrupted {
        /// The signal number.
        signal: usize,
    },
}

/// Phase timings of one kernel, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    /// Getting the kernel (0 on a cache hit beyond the digest check).
    pub fetch_ms: u64,
    /// Building the initramfs (once per run, shared by all kernels).
    pub initramfs_ms: u64,
    /// QEMU start until the agent said hello.
    pub boot_ms: u64,
    /// Agent hello until done.
    pub validate_ms: u64,
    /// Agent done until QEMU exited.
    pub shutdown_ms: u64,
    /// When work on this kernel began (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// Now, as reports write times: RFC 3339 in UTC, to the second.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What one kernel produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRun {
    /// Profile name.
    pub kernel: String,
    /// Whether failures here fail the run.
    pub required: bool,
    /// Pinned package and version, when pinned.
    pub package: Option<String>,
    /// Its Debian version.
    pub version: Option<String>,
    /// `uname -r` in the guest (or from the package).
    pub release: Option<String>,
    /// Whether the guest kernel has BTF.
    pub kernel_btf: Option<bool>,
    /// The active security modules, as the kernel lists them (e.g.
    /// `lockdown,capability,landlock,yama,apparmor,bpf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsm: Option<String>,
    /// Modules shipped for this kernel that its guest could not load: what
    /// needs them has no verdict there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules_not_loaded: Vec<String>,
    /// Targets of the run's programs that this kernel has in a module only,
    /// with that module (from the kernel's function index): loaded in the
    /// guest (`target_modules`), or a failure to find them has no verdict
    /// here (`target_modules_error`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub module_targets: BTreeMap<String, String>,
    /// Modules loaded in the guest because they hold targets of the run's
    /// programs on this kernel (their dependencies loaded too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_modules: Vec<String>,
    /// Why the modules holding targets could not be loaded, where they
    /// could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_modules_error: Option<String>,
    /// The BPF-relevant options of the kernel's build configuration, when
    /// its package ships one (see [`crate::kernel::config::OPTIONS`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_config: BTreeMap<String, String>,
    /// How the guest ended.
    pub outcome: KernelOutcome,
    /// One report per object the agent finished (raw; reports carry cells,
    /// and the evidence directory keeps these records).
    #[serde(skip)]
    pub objects: Vec<ObjectReport>,
    /// One report per command the agent ran.
    #[serde(skip)]
    pub commands: Vec<CommandReport>,
    /// The exit code each command is expected to end with.
    #[serde(skip)]
    pub command_expect: BTreeMap<String, i32>,
    /// Boots that were retried, and why.
    pub retries: Vec<String>,
    /// The guest restored the kernel's saved machine instead of booting.
    #[serde(default)]
    pub restored: bool,
    /// Why a warm run booted this kernel instead of restoring it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_reason: Option<String>,
    /// The accelerator used.
    pub accel: String,
    /// Phase timings.
    pub timings: Timings,
    /// The last console lines (all of it is in the evidence directory).
    pub console_tail: Vec<String>,
    /// The evidence directory of this kernel, when kept.
    pub evidence: Option<PathBuf>,
    /// The QEMU command line of the last boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qemu_argv: Vec<String>,
    /// Result-port lines that claimed to be records but did not parse: the
    /// raw evidence when an object's report is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malformed_records: Vec<MalformedRecord>,
    /// Result-port lines that claimed to be records but were not signed by
    /// the guest's init, so were ignored (something else in the guest, such
    /// as a loader, wrote them): the first few.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_records: Vec<String>,
    /// How many such lines there were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub foreign_record_count: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutput {
    /// One entry per kernel, in plan order.
    pub kernels: Vec<KernelRun>,
    /// What the run noted about itself (accelerator choices).
    pub notes: Vec<Note>,
}

/// Something about a run as a whole that its reports mention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// Guests ran on TCG from the start.
    UsingTcg {
        /// Why not KVM.
        reason: String,
    },
    /// KVM ran no guest, so the run moved to TCG.
    KvmFallback {
        /// How the KVM guest ended.
        exit: String,
    },
}

impl KernelRun {
    /// A kernel that has not run yet: its outcome says `completed` until
    /// something else happens.
    pub fn new(kernel: &str, required: bool) -> KernelRun {
        KernelRun {
            kernel: kernel.to_string(),
            required,
            package: None,
            version: None,
            release: None,
            kernel_btf: None,
            lsm: None,
            modules_not_loaded: Vec::new(),
            module_targets: BTreeMap::new(),
            target_modules: Vec::new(),
            target_modules_error: None,
            kernel_config: BTreeMap::new(),
            outcome: KernelOutcome::Completed,
            objects: Vec::new(),
            commands: Vec::new(),
            command_expect: BTreeMap::new(),
            retries: Vec::new(),
            restored: false,
            cold_reason: None,
            accel: String::new(),
            timings: Timings::default(),
            console_tail: Vec::new(),
            qemu_argv: Vec::new(),
            evidence: None,
            malformed_records: Vec::new(),
            foreign_records: Vec::new(),
            foreign_record_count: 0,
        }
    }

    /// The running kernel as a one-kernel run: the host pre-load gate judges
    /// its reports with the same classifier as a guest's.
    pub fn on_host(release: String, kernel_btf: bool, objects: Vec<ObjectReport>) -> KernelRun {
        KernelRun {
            release: Some(release),
            kernel_btf: Some(kernel_btf),
            objects,
            accel: "none".into(),
            ..KernelRun::new("host", true)
        }
    }
}
