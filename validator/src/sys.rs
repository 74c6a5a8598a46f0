//! The few libbpf calls libbpf-rs does not expose faithfully: raw map and
//! program type numbers (libbpf-rs maps types newer than it knows to
//! `Unknown`), libbpf's canonical type names, and the kernel feature probes
//! on raw numbers.

use std::ffi::CStr;
use std::ptr;

use libbpf_rs::{AsRawLibbpf, OpenMap, OpenProgram};

/// The map's type number (`enum bpf_map_type`).
pub fn map_type(m: &OpenMap) -> u32 {
    // SAFETY: the pointer comes from a live OpenMap.
    unsafe { libbpf_sys::bpf_map__type(m.as_libbpf_object().as_ptr()) }
}

/// A loaded map's `map_flags` as libbpf created it (after its sanitizing).
pub fn loaded_map_flags(m: &libbpf_rs::Map) -> u32 {
    // SAFETY: the pointer comes from a live Map.
    unsafe { libbpf_sys::bpf_map__map_flags(m.as_libbpf_object().as_ptr()) }
}

/// The names of the programs libbpf loaded (it leaves some out itself,
/// e.g. struct_ops programs whose map was not created).
pub fn loaded_programs(obj: &libbpf_rs::Object) -> std::collections::BTreeSet<String> {
    obj.progs()
        // SAFETY: the pointer comes from a live Program of `obj`.
        .filter(|p| unsafe { libbpf_sys::bpf_program__fd(p.as_libbpf_object().as_ptr()) } >= 0)
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect()
}

/// The program's type number (`enum bpf_prog_type`).
pub fn prog_type(p: &OpenProgram) -> u32 {
    // SAFETY: the pointer comes from a live OpenProgram.
    unsafe { libbpf_sys::bpf_program__type(p.as_libbpf_object().as_ptr()) }
}

fn name(s: *const std::os::raw::c_char, fallback: String) -> String {
    if s.is_null() {
        return fallback;
    }
    // SAFETY: libbpf returns static NUL-terminated strings.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// libbpf's name of a map type (`ringbuf`, `cgrp_storage`, …).
/// The helpers an instruction stream calls, sorted and distinct, from its
/// `(code, src_reg, imm)` triples: BPF_JMP | BPF_CALL with src_reg 0 calls
/// the helper numbered by imm (src_reg 1 is a subprogram, 2 a kfunc).
pub fn called_helpers(insns: impl Iterator<Item = (u8, u8, i32)>) -> Vec<u32> {
    let mut ids: Vec<u32> = insns
        .filter(|&(code, src_reg, _)| code == 0x85 && src_reg == 0)
        .map(|(_, _, imm)| imm as u32)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

pub fn map_type_name(t: u32) -> String {
    // SAFETY: plain table lookup; NULL for unknown numbers.
    name(
        unsafe { libbpf_sys::libbpf_bpf_map_type_str(t) },
        format!("map type {t}"),
    )
}

/// libbpf's name of a program type (`tracepoint`, `tracing`, …).
pub fn prog_type_name(t: u32) -> String {
    // SAFETY: plain table lookup; NULL for unknown numbers.
    name(
        unsafe { libbpf_sys::libbpf_bpf_prog_type_str(t) },
        format!("program type {t}"),
    )
}

fn probe(ret: i32) -> Option<bool> {
    match ret {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// Whether the running kernel supports a map type (`None`: the probe failed).
pub fn probe_map_type(t: u32) -> Option<bool> {
    // SAFETY: no pointers besides the optional opts, passed as NULL.
    probe(unsafe { libbpf_sys::libbpf_probe_bpf_map_type(t, ptr::null()) })
}

/// Whether the running kernel supports a program type.
pub fn probe_prog_type(t: u32) -> Option<bool> {
    // SAFETY: as above.
    probe(unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(t, ptr::null()) })
}

/// Whether programs of type `t` may call helper `id` on the running kernel.
pub fn probe_helper(t: u32, id: u32) -> Option<bool> {
    // SAFETY: as above.
    probe(unsafe { libbpf_sys::libbpf_probe_bpf_helper(t, id, ptr::null()) })
}

/// The map type number of libbpf's name (`ringbuf` → 27).
pub fn map_type_by_name(name: &str) -> Option<u32> {
    (0..128).find(|&t| {
        // SAFETY: plain table lookup; NULL for unknown numbers.
        let s = unsafe { libbpf_sys::libbpf_bpf_map_type_str(t) };
        !s.is_null() && unsafe { CStr::from_ptr(s) }.to_bytes() == name.as_bytes()
    })
}

/// The program type number of libbpf's name (`kprobe` → 2).
pub fn prog_type_by_name(name: &str) -> Option<u32> {
    (0..128).find(|&t| {
        // SAFETY: plain table lookup; NULL for unknown numbers.
        let s = unsafe { libbpf_sys::libbpf_bpf_prog_type_str(t) };
        !s.is_null() && unsafe { CStr::from_ptr(s) }.to_bytes() == name.as_bytes()
    })
}

/// Changes a map's type before load.
pub fn set_map_type(m: &libbpf_rs::OpenMapMut, t: u32) -> Result<(), i32> {
    // SAFETY: the pointer comes from a live OpenMapMut.
    let ret = unsafe { libbpf_sys::bpf_map__set_type(m.as_libbpf_object().as_ptr(), t) };
    if ret == 0 { Ok(()) } else { Err(ret) }
}

/// Changes a program's type before load.
pub fn set_prog_type(p: &libbpf_rs::OpenProgramMut, t: u32) -> Result<(), i32> {
    // SAFETY: the pointer comes from a live OpenProgramMut.
    let ret = unsafe { libbpf_sys::bpf_program__set_type(p.as_libbpf_object().as_ptr(), t) };
    if ret == 0 { Ok(()) } else { Err(ret) }
}

/// Creates a map outside any object (an inner-map prototype).
pub fn create_map(
    t: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> Result<std::os::fd::OwnedFd, i32> {
    use std::os::fd::FromRawFd;
    // SAFETY: NULL name and options are allowed.
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            t,
            ptr::null(),
            key_size,
            value_size,
            max_entries,
            ptr::null(),
        )
    };
    if fd < 0 {
        return Err(fd);
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Possible CPUs, as libbpf counts them for per-CPU maps.
pub fn possible_cpus() -> u32 {
    // SAFETY: no arguments.
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    u32::try_from(n).unwrap_or(1)
}
