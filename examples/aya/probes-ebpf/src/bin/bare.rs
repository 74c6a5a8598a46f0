//! Bare sections, as aya writes them when the loader names the target at
//! attach time: `#[tracepoint]` and `#[kprobe]` without arguments.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{kprobe, tracepoint},
    programs::{ProbeContext, TracePointContext},
};

#[tracepoint]
pub fn bare_tracepoint(_ctx: TracePointContext) -> u32 {
    0
}

#[kprobe]
pub fn bare_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
