//! A tracepoint that reads the current task through BTF
//! (bpf_get_current_task_btf, Linux 5.11): a helper the kernel refuses,
//! for an aya object whose program fails for a reason of the kernel's.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::gen::bpf_get_current_task_btf, macros::tracepoint, programs::TracePointContext,
};

/// The helper is GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[tracepoint(category = "syscalls", name = "sys_enter_getpid")]
pub fn taskbtf(_ctx: TracePointContext) -> u32 {
    // SAFETY: the helper takes no arguments; its result is only compared.
    let task = unsafe { bpf_get_current_task_btf() };
    u32::from(task.is_null())
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
