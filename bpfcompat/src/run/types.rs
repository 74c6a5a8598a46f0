//! The inputs and outputs of a run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::matrix::{Pin, Profile};
use crate::outcome::KernelRun;
use crate::vm::AccelChoice;
use crate::wire::{Fixups, Mode};

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
