//! The example's skeletons, loaded and attached by their own Rust code inside
//! a guest of every kernel of the matrix: one trial per (test × kernel).
//!
//! `cargo test --test kernels` (one boot per kernel) or
//! `cargo nextest run --test kernels` (one boot per trial).

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use probes::{bounded_loop, ringbuf, task_state_guarded};

/// Ring buffers need Linux 5.8.
#[bpfcompat::kernel_test(expect_fail = ["ubuntu-16.04-4.15", "ubuntu-20.04-5.4"])]
fn ringbuf_loads() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let mut skel = ringbuf::RingbufSkelBuilder::default().open(&mut storage)?.load()?;
    skel.attach()?;
    Ok(())
}

/// bpf_loop needs Linux 5.17.
#[bpfcompat::kernel_test(expect_fail = ["ubuntu-16.04-4.15", "ubuntu-20.04-5.4", "ubuntu-22.04-5.15", "debian-11-5.10"])]
fn bounded_loop_loads() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let mut skel = bounded_loop::BoundedLoopSkelBuilder::default().open(&mut storage)?.load()?;
    skel.attach()?;
    Ok(())
}

/// The guarded CO-RE read works wherever the kernel has BTF.
#[bpfcompat::kernel_test(expect_fail = ["ubuntu-16.04-4.15"], timeout = "60s")]
fn guarded_core_read_loads() {
    let mut storage = MaybeUninit::uninit();
    let open = task_state_guarded::TaskStateGuardedSkelBuilder::default()
        .open(&mut storage)
        .expect("open");
    let mut skel = open.load().expect("load");
    skel.attach().expect("attach");
}

bpfcompat::main!();
