//! The one versioned protocol between the host, the guest agent and a
//! `#[kernel_test]` binary in a guest.
//!
//! - [`job`]: host to guest, the job file and the agent's worker requests;
//! - [`fixups`]: what a real loader changes before load, part of a job;
//! - [`records`]: guest to host, one line per record on the result port;
//! - [`complexity`]: the verifier's statistics for a program, part of a record;
//! - [`channel`]: which result-port lines are the guest init's (signed per boot);
//! - [`kernel_tests`]: a `#[kernel_test]` binary on the host and the CLI;
//! - [`trace`]: what a traced loader asked the kernel, part of a record;
//! - [`hook`]: a program's hook, read from its section name in one place.
//!
//! The whole protocol has one version, [`WIRE_VERSION`]: in every record
//! prefix and in every job. Host and agent come from one build; a mismatch is
//! refused, never misread.

pub mod channel;
mod complexity;
mod fixups;
pub mod hook;
mod job;
pub mod kernel_tests;
mod records;
pub mod trace;

/// The protocol's version (the digit of [`RECORD_PREFIX`]).
pub const WIRE_VERSION: u32 = 2;

pub use complexity::{Complexity, LOG_LEVEL_STATS};
pub use fixups::{
    AttachTargets, Count, FENTRY_STAND_INS, Fixups, InnerMap, KernelFixups, MapFixup, ProgramFixup,
    RangeError, ReleaseRange, Validator, placeholder_attach,
};
pub use hook::Hook;
pub use job::{
    DEFAULT_GRACE_MS, JOB_DIR, JOB_FILE, JOB_PROGRAM, JOB_ROOT, Job, JobCommand, JobError,
    JobObject, Mode, Ready, SHIP_DIR, WorkerRequest,
};
pub use records::{
    BPF_F_LINK, BPF_F_MMAPABLE, CommandReport, CommandRuns, Fault, Fire, MalformedRecord,
    MapReport, OUTPUT_KEEP, ObjectReport, Outcome, ProgramReport, RECORD_PREFIX, ReadyAt, Record,
    StepFailure, Stop, VariantChoice, tail,
};
