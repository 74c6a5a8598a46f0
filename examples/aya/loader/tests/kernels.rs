//! The aya objects, loaded and attached with aya inside a guest of each
//! kernel: one trial per (test x kernel), the test body runs in the kernel.

use aya::Ebpf;
use aya::programs::TracePoint;

static TEMPLATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/template"));
static BLOOM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bloom"));

/// Loads `object` with aya and attaches its tracepoint `name`.
fn load_and_attach(object: &[u8], name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut ebpf = Ebpf::load(object)?;
    let program: &mut TracePoint = ebpf.program_mut(name).ok_or("no such program")?.try_into()?;
    program.load()?;
    program.attach("syscalls", "sys_enter_getpid")?;
    Ok(())
}

#[bpfcompat::kernel_test(kernels = ["debian-11-5.10", "debian-12-6.1"])]
fn template_loads_and_attaches() -> Result<(), Box<dyn std::error::Error>> {
    load_and_attach(TEMPLATE, "template")
}

/// Bloom filters need Linux 5.16.
#[bpfcompat::kernel_test(kernels = ["debian-11-5.10", "debian-12-6.1"], expect_fail = ["debian-11-5.10"])]
fn bloom_filter_loads() -> Result<(), Box<dyn std::error::Error>> {
    load_and_attach(BLOOM, "bloom")
}

bpfcompat::main!();
