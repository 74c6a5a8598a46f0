//! bpfcompat's engine: test eBPF objects and loaders on real distro kernels,
//! each in a throw-away QEMU guest, and report per object and kernel what the
//! kernel's verifier accepted or rejected, with a classified cause.
//!
//! `cargo-bpfcompat` and the guest agent use it; a user's tests link only the
//! thin `bpfcompat` crate, whose protocol ([`wire`]) and guest runtime this
//! crate re-exports. The pieces, in data-flow order:
//! [`matrix`] (which kernels), [`kernel`] (fetch them), [`guest`] (the job and
//! initramfs), [`vm`] (QEMU), [`run`] (schedule guests, emit events),
//! [`classify`] (verdicts) and [`report`] (what people and CI read).

pub mod bisect;
pub mod cancel;
pub mod classify;
pub mod config;
pub mod contract;
pub mod errors;
pub mod floor;
pub mod guest;
pub mod kernel;
pub mod kernel_tests;
pub mod matrix;
pub mod objects;
pub mod oci;
pub mod outcome;
pub mod partition;
pub mod placeholders;
pub(crate) mod private;
pub mod process_group;
#[cfg(test)]
mod proptests;
pub(crate) mod releases;
pub mod report;
pub mod run;
pub mod safe;
pub mod vm;

pub use bpfcompat::{named, wire};
