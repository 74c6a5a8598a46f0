//! A bloom filter map (Linux 5.16): the map a kernel lacks, for an aya
//! object that fails for a reason of the kernel's.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{map, tracepoint},
    maps::BloomFilter,
    programs::TracePointContext,
};

#[map]
static mut SEEN: BloomFilter<u32> = BloomFilter::with_max_entries(64, 0);

#[tracepoint(category = "syscalls", name = "sys_enter_getpid")]
pub fn bloom(_ctx: TracePointContext) -> u32 {
    // SAFETY: the map is only used through its helper calls.
    let _ = unsafe { (*core::ptr::addr_of_mut!(SEEN)).insert(&1, 0) };
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
