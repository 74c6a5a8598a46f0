//! What runs inside a guest and how it gets there: the initramfs (agent, its
//! shared libraries, the job's files) and the small runtime an agent uses as
//! the guest's `/init`. The job itself is part of [`crate::wire`].

mod closure;
pub mod init;
mod initramfs;
pub mod isolate;
pub mod job_disk;
pub mod job_root;
mod strip;

pub use closure::library_closure;
pub use initramfs::{Initramfs, MODULES_DIR};
pub use strip::strip_debug;
