//! bpfcompat: run your own eBPF loader's tests inside real distro kernels.
//!
//! ```ignore
//! #[bpfcompat::kernel_test(expect_fail = { "debian-11-5.10" = "UNSUPPORTED_HELPER" })]
//! fn loop_loads() -> anyhow::Result<()> { /* load and attach with your own code */ Ok(()) }
//!
//! bpfcompat::main!();
//! ```
//!
//! Each (test × kernel) is a libtest-mimic trial; the test binary boots as
//! each kernel's `/init` and runs the test body there. This crate is what a
//! test binary links, and it is thin: the protocol ([`wire`]), the guest's
//! init runtime ([`guest`]) and the harness ([`harness`]). Fetching kernels
//! and booting them is the installed `cargo-bpfcompat`'s work, which the
//! harness runs (`BPFCOMPAT_CLI`, else `cargo-bpfcompat` on `PATH`).

mod daemon;
pub mod guest;
pub mod harness;
pub mod named;
pub mod wire;

pub use bpfcompat_test::kernel_test;
pub use daemon::{Daemon, DaemonError};

/// In a `#[kernel_test(bins = ["NAME"])]`'s body: where the package's
/// binary NAME is in the guest (shipped with its shared libraries).
pub fn shipped(name: &str) -> std::path::PathBuf {
    std::path::Path::new(wire::SHIP_DIR).join(name)
}

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
