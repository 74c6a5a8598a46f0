//! A map declared in `.maps` with BTF, the way aya's `#[btf_map]` lays it
//! out (the struct of pointer-typed fields libbpf and aya read from BTF),
//! written by hand: aya-ebpf 0.1 has no `#[btf_map]`.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::bpf_map_type::BPF_MAP_TYPE_ARRAY, helpers::bpf_map_lookup_elem, macros::tracepoint,
    programs::TracePointContext,
};

#[repr(C)]
pub struct ArrayDef {
    r#type: *const [i32; BPF_MAP_TYPE_ARRAY as usize],
    key: *const u32,
    value: *const u64,
    max_entries: *const [i32; 1],
}

// SAFETY: the definition is never dereferenced; only its BTF is read.
unsafe impl Sync for ArrayDef {}

#[unsafe(link_section = ".maps")]
#[unsafe(no_mangle)]
static COUNTS: ArrayDef = ArrayDef {
    r#type: core::ptr::null(),
    key: core::ptr::null(),
    value: core::ptr::null(),
    max_entries: core::ptr::null(),
};

#[tracepoint(category = "syscalls", name = "sys_enter_getpid")]
pub fn btfmap(_ctx: TracePointContext) -> u32 {
    let key = 0u32;
    // SAFETY: a lookup in the array map declared above.
    let value = unsafe {
        bpf_map_lookup_elem(
            core::ptr::addr_of!(COUNTS) as *mut _,
            core::ptr::addr_of!(key) as *const _,
        )
    };
    if !value.is_null() {
        // SAFETY: a non-NULL lookup result points at the u64 value.
        unsafe { *(value as *mut u64) += 1 };
    }
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
