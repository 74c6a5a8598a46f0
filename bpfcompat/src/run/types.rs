//! The inputs and outputs of a run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::guest::Fixups;
use crate::matrix::{Pin, Profile};
use crate::protocol::{CommandReport, ObjectReport};
use crate::vm::AccelChoice;

/// How guests are run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Accelerator choice.
    pub accel: AccelChoice,
    /// Guests at once.
    pub jobs: usize,
    /// Guest memory in MiB (default 512).
    pub memory_mib: u32,
    /// Guest vCPUs (default 1: TCG guests with two vCPUs are not stable with every QEMU).
    pub cpus: u32,
    /// Limit for one guest, boot to power-off.
    pub timeout: Duration,
    /// Limit for one object inside the guest.
    pub object_timeout: Duration,
    /// Attach loaded programs.
    pub attach: bool,
    /// Fire mode: run a trigger with everything attached and count runs.
    pub fire: bool,
    /// The fire-mode trigger (default: the built-in workload).
    pub trigger: Option<Vec<String>>,
    /// Boots retried when a guest dies before the agent starts (default 2).
    pub retries: u32,
    /// The agent binary shipped as the guest's `/init`.
    pub agent: PathBuf,
    /// Where to keep per-kernel evidence.
    pub evidence: Option<PathBuf>,
}

/// One object to validate.
#[derive(Debug, Clone)]
pub struct ObjectInput {
    /// Name in reports.
    pub name: String,
    /// The `.bpf.o` on the host.
    pub path: PathBuf,
    /// What the real loader changes before load.
    pub fixups: Fixups,
    /// A BTF file on the host per kernel profile, for kernels without BTF.
    pub btf: BTreeMap<String, PathBuf>,
    /// This object's fire-mode trigger (argv), overriding the run's.
    pub trigger: Option<Vec<String>>,
}

impl ObjectInput {
    /// An object loaded as compiled.
    pub fn plain(name: impl Into<String>, path: impl Into<PathBuf>) -> ObjectInput {
        ObjectInput {
            name: name.into(),
            path: path.into(),
            fixups: Fixups::default(),
            btf: BTreeMap::new(),
            trigger: None,
        }
    }
}

/// One of the user's commands (command mode): the binary is shipped into
/// every guest with its shared libraries and run as root.
#[derive(Debug, Clone)]
pub struct CommandInput {
    /// Name in reports.
    pub name: String,
    /// The executable on the host; in the guest it is `$BPFCOMPAT_BIN`.
    pub binary: PathBuf,
    /// The command's words; `$BPFCOMPAT_BIN`, `$BPFCOMPAT_ARTIFACT` and
    /// `$BPFCOMPAT_KERNEL` are expanded in the guest.
    pub argv: Vec<String>,
    /// An object given with the command, as `$BPFCOMPAT_ARTIFACT`.
    pub artifact: Option<PathBuf>,
    /// The exit code that means success.
    pub expect_exit: i32,
    /// Limit for one run of the command.
    pub timeout: Duration,
}

/// One kernel to run on.
#[derive(Debug, Clone)]
pub struct KernelTarget {
    /// The matrix profile.
    pub profile: Profile,
    /// Its pin, if the lock has one.
    pub pin: Option<Pin>,
}

/// Everything a run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The kernels, in report order.
    pub kernels: Vec<KernelTarget>,
    /// The objects.
    pub objects: Vec<ObjectInput>,
    /// The user's commands (command mode).
    pub commands: Vec<CommandInput>,
    /// How.
    pub settings: Settings,
}

/// Progress of a run, for displays.
#[derive(Debug, Clone)]
pub enum Event {
    /// A note for the user (accelerator choice, a fallback), said once.
    Note(String),
    /// A kernel's work began; `message` says what it does now.
    Progress {
        /// Profile.
        kernel: String,
        /// What happens, e.g. `downloading …`, `booting (attempt 2)`.
        message: String,
    },
    /// A kernel is finished.
    Finished {
        /// Profile.
        kernel: String,
        /// One line: passed objects or what went wrong.
        summary: String,
        /// Everything the kernel produced, for tools that stream results.
        run: Box<KernelRun>,
    },
}

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
    /// The accelerator used.
    pub accel: String,
    /// Phase timings.
    pub timings: Timings,
    /// The last console lines (all of it is in the evidence directory).
    pub console_tail: Vec<String>,
    /// The evidence directory of this kernel, when kept.
    pub evidence: Option<PathBuf>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutput {
    /// One entry per kernel, in plan order.
    pub kernels: Vec<KernelRun>,
    /// Notes said during the run.
    pub notes: Vec<String>,
}

impl KernelRun {
    /// The running kernel as a one-kernel run: the host pre-load gate judges
    /// its reports with the same classifier as a guest's.
    pub fn on_host(release: String, kernel_btf: bool, objects: Vec<ObjectReport>) -> KernelRun {
        KernelRun {
            kernel: "host".into(),
            required: true,
            package: None,
            version: None,
            release: Some(release),
            kernel_btf: Some(kernel_btf),
            outcome: KernelOutcome::Completed,
            objects,
            commands: Vec::new(),
            command_expect: BTreeMap::new(),
            retries: Vec::new(),
            accel: "none".into(),
            timings: Timings::default(),
            console_tail: Vec::new(),
            evidence: None,
        }
    }
}
