//! The example's skeletons, loaded and attached by their own Rust code inside
//! a guest of every kernel of the matrix: one trial per (test × kernel).
//!
//! `cargo test --test kernels` (one boot per kernel) or
//! `cargo nextest run --test kernels` (one boot per trial).

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use probes::{bounded_loop, ringbuf, task_state_guarded};

/// Ring buffers need Linux 5.8: the test's own map create is refused.
#[bpfcompat::kernel_test(expect_fail = {
    "ubuntu-16.04-4.15" = "UNSUPPORTED_MAP_TYPE",
    "ubuntu-20.04-5.4" = "UNSUPPORTED_MAP_TYPE",
})]
fn ringbuf_loads() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let mut skel = ringbuf::RingbufSkelBuilder::default()
        .open(&mut storage)?
        .load()?;
    skel.attach()?;
    Ok(())
}

/// bpf_loop needs Linux 5.17: the kernel's verifier refuses the program.
#[bpfcompat::kernel_test(expect_fail = {
    "ubuntu-16.04-4.15" = "UNSUPPORTED_HELPER",
    "ubuntu-20.04-5.4" = "UNSUPPORTED_HELPER",
    "ubuntu-22.04-5.15" = "UNSUPPORTED_HELPER",
    "debian-11-5.10" = "UNSUPPORTED_HELPER",
})]
fn bounded_loop_loads() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let mut skel = bounded_loop::BoundedLoopSkelBuilder::default()
        .open(&mut storage)?
        .load()?;
    skel.attach()?;
    Ok(())
}

/// The guarded CO-RE read works wherever the kernel has BTF.
#[bpfcompat::kernel_test(expect_fail = { "ubuntu-16.04-4.15" = "MISSING_BTF" }, timeout = "60s")]
fn guarded_core_read_loads() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let open = task_state_guarded::TaskStateGuardedSkelBuilder::default().open(&mut storage)?;
    let mut skel = open.load()?;
    skel.attach()?;
    Ok(())
}

/// The example's loader as it runs in production: attached until Ctrl-C.
/// It is shipped into each guest (`bins`); it must get ready, then exit
/// cleanly on SIGINT. bpf_loop (5.17) keeps it from getting ready on 5.10:
/// its own refused load (traced in the guest) names the cause.
#[bpfcompat::kernel_test(
    bins = ["probes-loader"],
    kernels = ["debian-11-5.10", "debian-12-6.1"],
    expect_fail = { "debian-11-5.10" = "UNSUPPORTED_HELPER" }
)]
fn loader_runs_until_stopped() -> anyhow::Result<()> {
    let mut loader = bpfcompat::Daemon::start(
        std::process::Command::new(bpfcompat::shipped("probes-loader")).args([
            "--daemon",
            "--only",
            "ringbuf",
            "--only",
            "bounded_loop",
        ]),
    )?;
    loader.wait_for(|line| line == "ready", std::time::Duration::from_secs(30))?;
    loader.stop(std::time::Duration::from_secs(10))?;
    Ok(())
}

bpfcompat::main!();
