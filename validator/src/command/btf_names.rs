//! Names of the running kernel's BTF IDs, read straight from
//! `/sys/kernel/btf/vmlinux`: a walk over the type headers up to the IDs
//! asked for. libbpf would parse and index every type first (about 100 ms
//! in an emulated guest, more than the rest of tracing); this reads each
//! header once and keeps nothing but the names asked for.

use std::collections::BTreeMap;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The names of `ids` in the kernel's BTF (those it has).
pub(super) fn names(ids: &[u32]) -> BTreeMap<u32, String> {
    match std::fs::read(VMLINUX) {
        Ok(btf) => names_in(&btf, ids),
        Err(_) => BTreeMap::new(),
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The walk over one BTF blob (little-endian, as the guest is).
fn names_in(b: &[u8], ids: &[u32]) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    let Some(last) = ids.iter().copied().max() else {
        return out;
    };
    if b.get(..2) != Some(&[0x9f, 0xeb]) {
        return out;
    }
    let header = || -> Option<(usize, usize, usize, usize)> {
        let hdr = u32_at(b, 4)? as usize;
        let (type_off, type_len) = (u32_at(b, 8)? as usize, u32_at(b, 12)? as usize);
        let str_off = u32_at(b, 16)? as usize;
        Some((
            hdr + type_off,
            hdr + type_off + type_len,
            hdr + str_off,
            b.len(),
        ))
    };
    let Some((mut at, types_end, strings, _)) = header() else {
        return out;
    };
    let mut id = 1u32;
    while id <= last && at + 12 <= types_end.min(b.len()) {
        let (Some(name_off), Some(info)) = (u32_at(b, at), u32_at(b, at + 4)) else {
            break;
        };
        if ids.contains(&id)
            && let Some(name) = b.get(strings + name_off as usize..)
        {
            let end = name.iter().position(|c| *c == 0).unwrap_or(name.len());
            out.insert(
                id,
                String::from_utf8_lossy(&name[..end.min(256)]).into_owned(),
            );
        }
        let vlen = (info & 0xffff) as usize;
        let extra = match (info >> 24) & 0x1f {
            1 | 14 | 17 => 4,     // int, var, decl tag
            3 => 12,              // array
            4 | 5 => vlen * 12,   // struct, union
            6 | 13 => vlen * 8,   // enum, func proto
            15 | 19 => vlen * 12, // datasec, enum64
            _ => 0,
        };
        at += 12 + extra;
        id += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_running_kernels_functions_by_id() {
        let Ok(btf) = std::fs::read(VMLINUX) else {
            eprintln!("skipped: this kernel has no BTF");
            return;
        };
        // ID 1 exists in every kernel's BTF; an ID past the end has no name.
        let found = names_in(&btf, &[1, u32::MAX - 1]);
        assert!(found.contains_key(&1), "{found:?}");
        assert!(!found.contains_key(&(u32::MAX - 1)));
        // Garbage is no BTF.
        assert!(names_in(b"not btf at all", &[1]).is_empty());
    }
}
