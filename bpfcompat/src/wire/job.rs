//! Host to guest: the job handed to a guest agent, as `/job/job.json` in the
//! initramfs, and the request the agent hands its validation worker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Fixups, WIRE_VERSION};

/// Directory of the job inside the guest.
pub const JOB_DIR: &str = "/job";
/// The job description inside the guest.
pub const JOB_FILE: &str = "/job/job.json";
/// A test binary sent with the job of a restored `#[kernel_test]` guest:
/// the saved machine's `/init` (an earlier build) runs it in its place.
pub const JOB_PROGRAM: &str = "/job/bin/test";
/// The files a job's executables need at their own paths (their shared
/// libraries): `/job/root/lib/x86_64-linux-gnu/libelf.so.1` is installed
/// as `/lib/x86_64-linux-gnu/libelf.so.1` where the guest has none. A job
/// archive holds only `/job`, so a warm guest can take it.
pub const JOB_ROOT: &str = "/job/root";
/// Where a kernel test's shipped binaries are in the guest, by name.
pub const SHIP_DIR: &str = "/job/ship";

/// How far validation goes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Load every program (the verifier decides).
    #[default]
    Load,
    /// Load and attach every program to its hook.
    Attach,
    /// Load, attach, run a trigger and require every program to have run.
    Fire,
}

impl Mode {
    /// Whether programs are attached (attach and fire mode).
    pub fn attaches(self) -> bool {
        self != Mode::Load
    }
}

impl crate::named::Named for Mode {
    const WHAT: &'static str = "mode";
    const TABLE: &'static [(&'static str, Mode)] = &[
        ("load", Mode::Load),
        ("attach", Mode::Attach),
        ("fire", Mode::Fire),
    ];
}

/// Everything a guest agent is asked to do in one boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// [`WIRE_VERSION`] of the host that wrote it; an agent of another
    /// version refuses the job instead of misreading it.
    pub version: u32,
    /// The objects to validate, one after another in a restartable worker.
    pub objects: Vec<JobObject>,
    /// How far validation goes.
    pub mode: Mode,
    /// A worker that runs longer on one object is killed and the object
    /// reported TIMEOUT.
    pub object_timeout_secs: u64,
    /// The user's own commands to run as root (command mode).
    #[serde(default)]
    pub commands: Vec<JobCommand>,
    /// The fire-mode trigger for every object (default: the built-in workload).
    #[serde(default)]
    pub trigger: Option<Vec<String>>,
    /// The `#[kernel_test]` bodies a test binary booted as `/init` runs.
    #[serde(default)]
    pub tests: Vec<String>,
    /// Maps the object leaves unsized stay unsized (`MAP_CONTRACT`) instead
    /// of getting a neutral size.
    #[serde(default)]
    pub strict_maps: bool,
}

impl Job {
    /// An empty job of this wire version.
    pub fn new(mode: Mode, object_timeout_secs: u64) -> Job {
        Job {
            version: WIRE_VERSION,
            objects: Vec::new(),
            mode,
            object_timeout_secs,
            commands: Vec::new(),
            trigger: None,
            tests: Vec::new(),
            strict_maps: false,
        }
    }

    /// Parses a job file, refusing one of another wire version.
    pub fn parse(bytes: &[u8]) -> Result<Job, JobError> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(JobError::Json)?;
        if v.version != Some(WIRE_VERSION) {
            return Err(JobError::Version(v.version));
        }
        serde_json::from_slice(bytes).map_err(JobError::Json)
    }

    /// Reads and parses the job file at `path` (the guest's [`JOB_FILE`]).
    pub fn read(path: &str) -> Result<Job, JobError> {
        let bytes = std::fs::read(path).map_err(JobError::Read)?;
        Job::parse(&bytes)
    }
}

/// Why a guest has no job.
#[derive(Debug)]
pub enum JobError {
    /// The job file could not be read.
    Read(std::io::Error),
    /// It is no job.
    Json(serde_json::Error),
    /// It is a job of another wire version.
    Version(Option<u32>),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Read(e) => write!(f, "{e}"),
            JobError::Json(e) => write!(f, "{e}"),
            JobError::Version(v) => write!(
                f,
                "the job is of wire version {v:?}, this agent speaks {WIRE_VERSION} (hint: the agent and cargo-bpfcompat must come from one build; unset BPFCOMPAT_AGENT)"
            ),
        }
    }
}

impl std::error::Error for JobError {}

/// What the agent asks its validation worker to do with one object, as one
/// line of JSON on the worker's stdin: the object with everything resolved
/// for this kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerRequest {
    /// Name in reports.
    pub name: String,
    /// Path inside the guest.
    pub path: String,
    /// How far validation goes.
    pub mode: Mode,
    /// What the real loader changes before load.
    pub fixups: Fixups,
    /// The BTF file for this kernel, when the object brings one.
    pub btf: Option<String>,
    /// The fire-mode trigger (the object's, else the job's).
    pub trigger: Option<Vec<String>>,
    /// See [`Job::strict_maps`].
    #[serde(default)]
    pub strict_maps: bool,
}

/// A command of the user's, run as root in the guest; its exit code is the
/// verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobCommand {
    /// Name in reports.
    pub name: String,
    /// The words of the command; `$VAR` and `${VAR}` are expanded in the guest
    /// from `BPFCOMPAT_BIN`, `BPFCOMPAT_ARTIFACT` and `BPFCOMPAT_KERNEL`.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// The exit code that means success.
    pub expect_exit: i32,
    /// Killed and reported TIMEOUT after this long (without `ready`: its
    /// whole run; with it: until it is ready).
    pub timeout_secs: u64,
    /// When a loader that runs until stopped counts as working; `None`: it
    /// must exit by itself, and its exit code is the verdict.
    #[serde(default)]
    pub ready: Option<Ready>,
    /// Once ready: how long it has to exit after SIGINT, in milliseconds.
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// Once ready: a workload to run before it is stopped (argv).
    #[serde(default)]
    pub trigger: Option<Vec<String>>,
    /// Fire mode: once ready and the workload ran, count the runs of the
    /// programs the command loaded (the built-in workload when no trigger).
    #[serde(default)]
    pub count_runs: bool,
    /// Trace its `bpf()` calls, so a failure is explained by the call the
    /// kernel refused (`--no-trace` turns it off).
    #[serde(default = "yes")]
    pub trace: bool,
}

fn yes() -> bool {
    true
}

fn default_grace_ms() -> u64 {
    DEFAULT_GRACE_MS
}

/// How long a ready loader has to exit after SIGINT by default.
pub const DEFAULT_GRACE_MS: u64 = 10_000;

/// When a long-running command is ready, that is, working.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// A line of its output matches this regular expression.
    Line(String),
    /// It is still running this many milliseconds after it started.
    AfterMs(u64),
}

/// One object of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobObject {
    /// Name in reports.
    pub name: String,
    /// Path inside the guest.
    pub path: String,
    /// What the real loader changes before load.
    #[serde(default)]
    pub fixups: Fixups,
    /// A BTF file (path inside the guest) per kernel profile, for kernels
    /// without their own BTF.
    #[serde(default)]
    pub btf: BTreeMap<String, String>,
    /// This object's fire-mode trigger, overriding the job's.
    #[serde(default)]
    pub trigger: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_and_another_version_is_refused() {
        let mut job = Job::new(Mode::Fire, 7);
        job.trigger = Some(vec!["true".into()]);
        let bytes = serde_json::to_vec(&job).unwrap();
        assert_eq!(Job::parse(&bytes).unwrap(), job);
        let mut old: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        old["version"] = 0.into();
        let err = Job::parse(&serde_json::to_vec(&old).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wire version") && err.contains("BPFCOMPAT_AGENT"),
            "{err}"
        );
        assert!(Job::parse(b"{\"objects\": []}").is_err());
    }

    #[test]
    fn modes_parse_by_name() {
        use crate::named::Named;
        for &(name, mode) in Mode::TABLE {
            assert_eq!(Mode::by_name(name).unwrap(), mode);
            assert_eq!(mode.name(), name);
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{name}\""));
        }
        let err = Mode::by_name("sideways").unwrap_err().to_string();
        assert!(err.contains("load, attach, fire"), "{err}");
    }
}
