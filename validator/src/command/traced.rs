//! What the agent adds to a loader's trace ([`bpfcompat_engine::guest::trace`]):
//! the kernel's figures for each program it loaded (read by ID while the
//! loader is stopped right after the load), and after the run, for each
//! refused map or program, the kernel's own probes of that type and of the
//! helpers it calls: what object mode's rules decide with.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use bpfcompat_engine::wire::trace::{Call, LoadedFacts, Trace};

/// The kernel's figures for a loaded program: by `id`, else (kernels whose
/// fdinfo has no ID) the newest program with that `tag`.
pub(super) fn loaded_facts(id: Option<u32>, tag: Option<&str>) -> Option<(u32, LoadedFacts)> {
    let id = match id {
        Some(id) => id,
        None => newest_with_tag(tag?)?,
    };
    let (info, _) = info(id)?;
    Some((
        id,
        LoadedFacts {
            xlated_len: info.xlated_prog_len / 8,
            jited_len: info.jited_prog_len,
            verified_insns: (info.verified_insns > 0).then_some(info.verified_insns),
        },
    ))
}

/// A program's info by ID, and its tag in hex.
fn info(id: u32) -> Option<(libbpf_sys::bpf_prog_info, String)> {
    // SAFETY: libbpf's wrappers of BPF_PROG_GET_FD_BY_ID and
    // BPF_OBJ_GET_INFO_BY_FD on a buffer of the size given; the fd is owned.
    unsafe {
        let fd = libbpf_sys::bpf_prog_get_fd_by_id(id);
        if fd < 0 {
            return None;
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        (libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) == 0).then(|| {
            let tag: String = info.tag.iter().map(|b| format!("{b:02x}")).collect();
            (info, tag)
        })
    }
}

fn newest_with_tag(tag: &str) -> Option<u32> {
    let mut id = 0u32;
    let mut found = None;
    // SAFETY: libbpf's wrapper of BPF_PROG_GET_NEXT_ID.
    while unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut id) } == 0 {
        if info(id).is_some_and(|(_, t)| t == tag) {
            found = Some(id);
        }
    }
    found
}

/// After the run: the kernel's probes for each refused map and program
/// type, the helpers a refused program calls, and the names of the kernel
/// functions programs were loaded for.
pub(super) fn enrich(trace: &mut Trace) {
    let ids: Vec<u32> = trace
        .calls
        .iter()
        .filter_map(|c| match &c.call {
            Call::ProgLoad(p) if p.attach_btf_id != 0 && !p.attach_elsewhere => {
                Some(p.attach_btf_id)
            }
            _ => None,
        })
        .collect();
    let names = super::btf_names::names(&ids);
    let names_taken = trace.names_taken();
    // Each probe is a program load the verifier runs (slow in an emulated
    // guest): a type or a helper is asked once, however many refused calls
    // (a loader's retries) need the answer.
    let mut map_types = std::collections::HashMap::new();
    let mut prog_types = std::collections::HashMap::new();
    let mut helpers = std::collections::HashMap::new();
    for c in &mut trace.calls {
        // A library's own probes are refused by design: not probed again.
        let failed = c.result.errno().is_some() && !c.call.is_library_probe(names_taken);
        match &mut c.call {
            Call::MapCreate(m) if failed => {
                m.type_supported = *map_types
                    .entry(m.map_type)
                    .or_insert_with(|| crate::sys::probe_map_type(m.map_type));
            }
            Call::ProgLoad(p) => {
                if !p.attach_elsewhere {
                    p.attach_to = names.get(&p.attach_btf_id).cloned();
                }
                if failed {
                    p.type_supported = *prog_types
                        .entry(p.prog_type)
                        .or_insert_with(|| crate::sys::probe_prog_type(p.prog_type));
                    let t = p.prog_type;
                    p.unsupported_helpers = p
                        .helpers
                        .iter()
                        .copied()
                        .filter(|&id| {
                            *helpers.entry((t, id)).or_insert_with(|| {
                                !crate::evidence::unsupported_helpers(t, &[id]).is_empty()
                            })
                        })
                        .collect();
                }
            }
            _ => {}
        }
    }
}
