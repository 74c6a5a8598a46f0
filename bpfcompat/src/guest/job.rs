//! The job handed to a guest agent, as `/job/job.json` in the initramfs.

use serde::{Deserialize, Serialize};

/// Directory of the job inside the guest.
pub const JOB_DIR: &str = "/job";
/// The job description inside the guest.
pub const JOB_FILE: &str = "/job/job.json";

/// Everything a guest agent is asked to do in one boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// The objects to validate, each in its own child process.
    pub objects: Vec<JobObject>,
    /// Whether loaded programs are also attached.
    pub attach: bool,
    /// A child that runs longer is killed and its object reported TIMEOUT.
    pub object_timeout_secs: u64,
}

/// One object of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobObject {
    /// Name in reports.
    pub name: String,
    /// Path inside the guest.
    pub path: String,
}
