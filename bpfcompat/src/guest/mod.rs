//! What runs inside a guest and how it gets there: the job description, the
//! initramfs (agent, its shared libraries, the job's files) and the small
//! runtime an agent uses as the guest's `/init`.

mod closure;
mod initramfs;
pub mod init;
mod job;
mod strip;

pub use closure::library_closure;
pub use initramfs::Initramfs;
pub use strip::strip_debug;
pub use job::{Job, JobObject, JOB_DIR, JOB_FILE};
