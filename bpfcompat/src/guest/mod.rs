//! The guest's side that every guest `/init` shares (the agent and a
//! `#[kernel_test]` binary): set-up and the result port ([`init`]), the job
//! disk a restored guest reads ([`job_disk`]), the user's processes apart
//! from the init ([`isolate`]), their calls traced ([`trace`], stopped only
//! at the calls worth recording by a seccomp filter of their own), the
//! kernel's probes without libbpf ([`probe`]) and a job's libraries put in
//! place ([`job_root`]).

pub mod init;
pub mod isolate;
pub mod job_disk;
pub mod job_root;
pub mod probe;
mod seccomp_filter;
pub mod trace;

/// Where a guest finds the kernel modules shipped for its kernel, with an
/// `order` file naming them in load order.
pub const MODULES_DIR: &str = "/lib/modules/bpfcompat";
