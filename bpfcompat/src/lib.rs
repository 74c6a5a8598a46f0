//! bpfcompat: test eBPF objects and loaders on real distro kernels, each in a
//! throw-away QEMU guest, and report per object and kernel what the kernel's
//! verifier accepted or rejected, with a classified cause.
//!
//! This crate is the engine and has no libbpf dependency, so a user's test
//! binary that links libbpf-rs can link it too. The pieces, in data-flow order:
//! [`matrix`] (which kernels), [`kernel`] (fetch them), [`guest`] (the job and
//! initramfs), [`vm`] (QEMU), [`run`] (schedule guests, emit events),
//! [`classify`] (verdicts) and [`report`] (what people and CI read).

pub mod cancel;
pub mod classify;
pub mod config;
pub mod errors;
pub mod guest;
pub mod harness;
pub mod kernel;
pub mod matrix;
pub mod named;
pub mod objects;
pub mod outcome;
pub mod partition;
pub mod process_group;
#[cfg(test)]
mod proptests;
pub mod report;
pub mod run;
pub mod safe;
pub mod vm;
pub mod wire;

pub use bpfcompat_test::kernel_test;

/// Defines `main` for a `harness = false` test target of `#[kernel_test]`s.
#[macro_export]
macro_rules! main {
    () => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness::main()
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
