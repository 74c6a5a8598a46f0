//! The CLI's side of `#[kernel_test]`s: which (test × kernel) cells a test
//! binary's tests make ([`plan`]), and one kernel booted with the test
//! binary as `/init` ([`run`]), its results read with the kernel's words
//! (see [`bpfcompat::wire::kernel_tests`] for the exchange).

mod boot;
mod plan;
mod results;

pub use plan::plan;
pub use results::run;
