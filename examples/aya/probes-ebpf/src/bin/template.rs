//! What the aya template generates: a tracepoint program that logs through
//! aya-log, plus a ring buffer; aya declares both maps in the legacy `maps`
//! section, which libbpf 1.x refuses to open.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{map, tracepoint},
    maps::RingBuf,
    programs::TracePointContext,
};
use aya_log_ebpf::info;

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4096, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_getpid")]
pub fn template(ctx: TracePointContext) -> u32 {
    info!(&ctx, "getpid called");
    if let Some(mut event) = EVENTS.reserve::<u32>(0) {
        event.write(1);
        event.submit(0);
    }
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
