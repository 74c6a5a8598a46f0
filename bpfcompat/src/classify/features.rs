//! Which Linux release introduced a helper, map type, program type or kfunc:
//! the remediation names it so a user knows the floor they are hitting.

#[path = "helper_table.rs"]
mod helper_table;

use helper_table::HELPERS;

/// `bpf_<name>` of a helper ID.
pub fn helper_name(id: u32) -> Option<String> {
    HELPERS
        .iter()
        .find(|h| h.0 == id)
        .map(|h| format!("bpf_{}", h.1))
}

/// The release that added a helper, where known.
pub fn helper_since(id: u32) -> Option<&'static str> {
    HELPERS.iter().find(|h| h.0 == id).and_then(|h| h.2)
}

/// The helper ID of `bpf_<name>`.
pub(crate) fn helper_id(name: &str) -> Option<u32> {
    let bare = name.strip_prefix("bpf_").unwrap_or(name);
    HELPERS.iter().find(|h| h.1 == bare).map(|h| h.0)
}

/// Map types (libbpf-rs names) and the release that added them.
pub(crate) fn map_type_since(t: &str) -> Option<&'static str> {
    Some(match t {
        "Hash" | "Array" | "ProgArray" | "PerfEventArray" => "4.4",
        "PercpuHash" | "PercpuArray" | "StackTrace" => "4.6",
        "CgroupArray" => "4.8",
        "LruHash" | "LruPercpuHash" => "4.10",
        "LpmTrie" => "4.11",
        "ArrayOfMaps" | "HashOfMaps" => "4.12",
        "Devmap" | "Sockmap" => "4.14",
        "Cpumap" => "4.15",
        "Xskmap" | "Sockhash" => "4.18",
        "CgroupStorage" | "ReuseportSockarray" => "4.19",
        "PercpuCgroupStorage" | "Queue" | "Stack" => "4.20",
        "SkStorage" => "5.2",
        "DevmapHash" => "5.4",
        "StructOps" => "5.6",
        "RingBuf" => "5.8",
        "InodeStorage" => "5.10",
        "TaskStorage" => "5.11",
        "BloomFilter" => "5.16",
        "UserRingBuf" => "6.1",
        "CGrpStorage" => "6.2",
        "Arena" => "6.9",
        _ => return None,
    })
}

/// Program types (libbpf-rs names) and the release that added them.
pub(crate) fn prog_type_since(t: &str) -> Option<&'static str> {
    Some(match t {
        "SocketFilter" => "3.19",
        "Kprobe" | "SchedCls" | "SchedAct" => "4.1",
        "Tracepoint" => "4.7",
        "Xdp" => "4.8",
        "PerfEvent" => "4.9",
        "CgroupSkb" | "CgroupSock" | "LwtIn" | "LwtOut" | "LwtXmit" => "4.10",
        "SockOps" => "4.13",
        "SkSkb" => "4.14",
        "CgroupDevice" => "4.15",
        "SkMsg" | "RawTracepoint" | "CgroupSockAddr" => "4.17",
        "LwtSeg6local" | "LircMode2" => "4.18",
        "SkReuseport" => "4.19",
        "FlowDissector" => "4.20",
        "CgroupSysctl" | "RawTracepointWritable" => "5.2",
        "CgroupSockopt" => "5.3",
        "Tracing" => "5.5",
        "StructOps" | "Ext" => "5.6",
        "Lsm" => "5.7",
        "SkLookup" => "5.9",
        "Syscall" => "5.14",
        "Netfilter" => "6.4",
        _ => return None,
    })
}

/// kfuncs whose first release is known here.
pub(crate) fn kfunc_since(name: &str) -> Option<&'static str> {
    Some(match name {
        "bpf_rcu_read_lock" | "bpf_rcu_read_unlock" => "6.2",
        "bpf_cpumask_create" | "bpf_cpumask_release" => "6.3",
        "bpf_iter_num_new" | "bpf_iter_num_next" | "bpf_iter_num_destroy" => "6.4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_table_matches_the_uapi_numbering() {
        assert_eq!(helper_name(1).as_deref(), Some("bpf_map_lookup_elem"));
        assert_eq!(helper_name(131).as_deref(), Some("bpf_ringbuf_reserve"));
        assert_eq!(helper_name(181).as_deref(), Some("bpf_loop"));
        assert_eq!(helper_since(181), Some("5.17"));
        assert_eq!(helper_id("bpf_loop"), Some(181));
        assert_eq!(helper_name(100_000), None);
    }
}
