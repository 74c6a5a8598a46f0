//! A run's inputs (the plan: kernels, objects, commands, settings) and the
//! typed events it emits while it runs.

use std::path::PathBuf;
use std::time::Duration;

use crate::kernel::FetchEvent;
use crate::matrix::{Pin, Profile};
use crate::objects::ObjectInput;
use crate::outcome::KernelRun;
use crate::vm::{AccelChoice, Exit};
use crate::wire::Mode;

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
    /// How far validation goes.
    pub mode: Mode,
    /// The fire-mode trigger (default: the built-in workload).
    pub trigger: Option<Vec<String>>,
    /// Leave maps the objects leave unsized unsized (`--strict-maps`).
    pub strict_maps: bool,
    /// Trace command mode's loaders (`--no-trace` turns it off).
    pub trace_loaders: bool,
    /// Boots retried when a guest dies before the agent starts (default 2).
    pub retries: u32,
    /// The agent binary shipped as the guest's `/init`.
    pub agent: PathBuf,
    /// Where to keep per-kernel evidence.
    pub evidence: Option<PathBuf>,
    /// Restore each kernel's saved machine instead of booting it (`--cold`
    /// turns this off); a kernel that cannot be saved or restored boots.
    pub warm: bool,
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
    /// Limit for one run of the command (with `ready`: until it is ready).
    pub timeout: Duration,
    /// When a command that runs until stopped counts as working.
    pub ready: Option<crate::wire::Ready>,
    /// How long a ready command has to exit after SIGINT.
    pub grace: Duration,
}

/// One kernel to run on.
#[derive(Debug, Clone)]
pub struct KernelTarget {
    /// The matrix profile.
    pub profile: Profile,
    /// Its pin, if the lock has one.
    pub pin: Option<Pin>,
}

impl KernelTarget {
    /// Every profile of a matrix with its pin, in matrix order.
    pub fn all_of(matrix: &crate::matrix::Matrix) -> Vec<KernelTarget> {
        matrix
            .kernels
            .iter()
            .map(|k| KernelTarget {
                profile: k.clone(),
                pin: matrix.lock.get(&k.name).cloned(),
            })
            .collect()
    }
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

/// What happens during a run, for reporters: typed, no sentences (the
/// reporters write those).
#[derive(Debug, Clone)]
pub enum Event {
    /// The run starts on TCG: why KVM is not used.
    UsingTcg {
        /// Why not KVM.
        reason: String,
    },
    /// A KVM guest never ran its init: every later guest uses TCG.
    KvmFallback {
        /// How that guest ended.
        exit: Exit,
    },
    /// A kernel's turn began: its cache entry is checked.
    KernelStarted {
        /// Profile.
        kernel: String,
    },
    /// Getting the kernel into the cache.
    Fetch {
        /// Profile.
        kernel: String,
        /// What happens.
        event: FetchEvent,
    },
    /// A kernel's machine is booted once and saved for warm guests.
    Saving {
        /// Profile.
        kernel: String,
    },
    /// A kernel's guest restores its saved machine.
    Restoring {
        /// Profile.
        kernel: String,
    },
    /// A warm run boots this kernel cold.
    Cold {
        /// Profile.
        kernel: String,
        /// Why it is not restored.
        reason: String,
    },
    /// Boot attempt `n` (1-based) of a kernel starts.
    BootAttempt {
        /// Profile.
        kernel: String,
        /// The attempt.
        n: u32,
    },
    /// Evidence of a kernel could not be written (the run goes on).
    EvidenceNotWritten {
        /// Profile.
        kernel: String,
        /// Why.
        error: String,
    },
    /// A kernel is finished.
    KernelFinished {
        /// Everything the kernel produced.
        run: Box<KernelRun>,
    },
}
