//! How a guest gets what it runs: the initramfs (agent, its shared
//! libraries, the job's files) and the kernel modules every guest gets
//! (`modules`). The runtime inside the guest (set-up, the
//! result port, the job disk, the user's processes apart) is the thin
//! `bpfcompat` crate's, re-exported here; the job itself is [`crate::wire`].

mod closure;
mod initramfs;
pub(crate) mod modules;
mod strip;

pub use bpfcompat::guest::{MODULES_DIR, init, isolate, job_disk, job_root, trace};
pub use closure::library_closure;
pub use initramfs::Initramfs;
pub use strip::strip_debug;
