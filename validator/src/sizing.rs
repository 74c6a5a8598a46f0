//! Neutral sizes for what an object leaves its loader to size at run time.
//!
//! A map declared with `max_entries`, `key_size` or `value_size` 0 (stack
//! traces, per-CPU buffers) makes libbpf refuse the whole object, though the
//! real loader sizes it before load. The validator gives such a map a
//! documented neutral size instead, so the verdict is about the programs, and
//! reports each assumption. A fix-up the user declared always wins; with
//! `--strict-maps` nothing is assumed (the zero is then `MAP_CONTRACT`).

use bpfcompat_engine::wire::Fixups;
use libbpf_rs::OpenObject;

use crate::sys;

/// `PERF_MAX_STACK_DEPTH`: the frames a stack-trace map's value holds.
const STACK_DEPTH: u32 = 127;

/// Gives every unsized map of `open` that no fix-up names a neutral size;
/// returns one line per map it sized, saying what it assumed.
pub fn size_unsized(open: &mut OpenObject, fixups: &Fixups) -> Vec<String> {
    let mut assumed = Vec::new();
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        if fixups.maps.contains_key(&name) {
            continue;
        }
        let map_type = sys::map_type_name(sys::map_type(&m));
        let declared = [m.max_entries(), m.key_size(), m.value_size()];
        let neutral = neutral_size(&map_type, declared, sys::possible_cpus());
        let mut said = Vec::new();
        for (i, (what, value)) in ["max_entries", "key_size", "value_size"]
            .into_iter()
            .zip(neutral)
            .enumerate()
        {
            let Some(v) = value else { continue };
            let set = match i {
                0 => m.set_max_entries(v),
                1 => m.set_key_size(v),
                _ => m.set_value_size(v),
            };
            if set.is_ok() {
                said.push(format!("{what} {v}"));
            }
        }
        if !said.is_empty() {
            assumed.push(format!(
                "map `{name}` ({map_type}) is sized by its loader at run time: assumed {} (declare a fix-up to use the loader's values)",
                said.join(", ")
            ));
        }
    }
    assumed
}

/// The neutral `max_entries`, `key_size` and `value_size` for a map of
/// `map_type` declared with `declared` (each `None`: keep the declared
/// value). A zero the type requires is kept: ring buffers have no key or
/// value, storage maps no `max_entries`, queues, stacks and bloom filters
/// no key; libbpf itself sizes a perf-event array to the CPUs.
fn neutral_size(map_type: &str, declared: [u32; 3], cpus: u32) -> [Option<u32>; 3] {
    let ring = map_type.ends_with("ringbuf");
    let storage = map_type.ends_with("_storage");
    let keyless = ring || ["queue", "stack", "bloom_filter"].contains(&map_type);
    let [entries, key, value] = declared;
    let max_entries = match map_type {
        _ if entries != 0 || storage || map_type == "perf_event_array" => None,
        // A ring buffer is a power-of-two number of pages.
        _ if ring => Some(4096),
        "percpu_array" => Some(cpus),
        _ => Some(1),
    };
    let key_size = (key == 0 && !keyless && !storage).then_some(4);
    let value_size = match map_type {
        _ if value != 0 || ring => None,
        "stack_trace" => Some(STACK_DEPTH * 8),
        _ => Some(8),
    };
    [max_entries, key_size, value_size]
}

#[cfg(test)]
mod tests {
    use super::neutral_size;

    #[test]
    fn only_zeros_the_type_does_not_require_are_sized() {
        assert_eq!(
            neutral_size("stack_trace", [0, 4, 0], 2),
            [Some(1), None, Some(1016)]
        );
        assert_eq!(
            neutral_size("percpu_array", [0, 4, 64], 2),
            [Some(2), None, None]
        );
        assert_eq!(
            neutral_size("ringbuf", [0, 0, 0], 2),
            [Some(4096), None, None]
        );
        assert_eq!(neutral_size("ringbuf", [4096, 0, 0], 2), [None, None, None]);
        assert_eq!(
            neutral_size("task_storage", [0, 4, 8], 2),
            [None, None, None]
        );
        assert_eq!(
            neutral_size("perf_event_array", [0, 4, 4], 2),
            [None, None, None]
        );
        assert_eq!(
            neutral_size("bloom_filter", [64, 0, 8], 2),
            [None, None, None]
        );
        assert_eq!(neutral_size("hash", [0, 4, 8], 2), [Some(1), None, None]);
        assert_eq!(neutral_size("hash", [16, 4, 8], 2), [None, None, None]);
    }
}
