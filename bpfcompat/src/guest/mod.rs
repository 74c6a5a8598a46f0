//! What runs inside a guest and how it gets there: the job description, the
//! initramfs (agent, its shared libraries, the job's files) and the small
//! runtime an agent uses as the guest's `/init`.

mod closure;
pub mod init;
mod initramfs;
mod job;
mod strip;

pub use closure::library_closure;
pub use initramfs::Initramfs;
pub use job::{
    Count, Fixups, InnerMap, JOB_DIR, JOB_FILE, Job, JobCommand, JobObject, MapFixup, ProgramFixup,
};
pub use strip::strip_debug;
