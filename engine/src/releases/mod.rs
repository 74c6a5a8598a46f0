//! Which Linux release introduced a helper, map type, program type or kfunc:
//! the remediation names it so a user knows the floor they are hitting.
//! The two long tables are data files beside this one (tab-separated).

use std::sync::LazyLock;

/// One row of `helpers.tsv`.
struct Helper {
    id: u32,
    /// Without the `bpf_` prefix.
    name: &'static str,
    since: Option<&'static str>,
}

static HELPERS: LazyLock<Vec<Helper>> = LazyLock::new(|| {
    rows(include_str!("helpers.tsv"))
        .map(|[id, name, since]| Helper {
            id: id.parse().expect("helpers.tsv: a numeric ID"),
            name,
            since: (since != "-").then_some(since),
        })
        .collect()
});

/// The tab-separated rows of a built-in table, comments and blank lines
/// skipped. The tables are checked by the tests below.
fn rows<const N: usize>(table: &'static str) -> impl Iterator<Item = [&'static str; N]> {
    table
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            cols.try_into()
                .unwrap_or_else(|_| panic!("a built-in table has a row of the wrong width: {l}"))
        })
}

fn helper(id: u32) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.id == id)
}

/// `bpf_<name>` of a helper ID.
pub fn helper_name(id: u32) -> Option<String> {
    helper(id).map(|h| format!("bpf_{}", h.name))
}

/// The release that added a helper, where known.
pub fn helper_since(id: u32) -> Option<&'static str> {
    helper(id).and_then(|h| h.since)
}

/// The helper ID of `bpf_<name>`.
pub(crate) fn helper_id(name: &str) -> Option<u32> {
    let bare = name.strip_prefix("bpf_").unwrap_or(name);
    HELPERS.iter().find(|h| h.name == bare).map(|h| h.id)
}

/// Map types (libbpf's names, as bpftool prints them) and the release that
/// added them.
pub(crate) fn map_type_since(t: &str) -> Option<&'static str> {
    Some(match t {
        "hash" | "array" | "prog_array" | "perf_event_array" => "4.4",
        "percpu_hash" | "percpu_array" | "stack_trace" => "4.6",
        "cgroup_array" => "4.8",
        "lru_hash" | "lru_percpu_hash" => "4.10",
        "lpm_trie" => "4.11",
        "array_of_maps" | "hash_of_maps" => "4.12",
        "devmap" | "sockmap" => "4.14",
        "cpumap" => "4.15",
        "xskmap" | "sockhash" => "4.18",
        "cgroup_storage" | "reuseport_sockarray" => "4.19",
        "percpu_cgroup_storage" | "queue" | "stack" => "4.20",
        "sk_storage" => "5.2",
        "devmap_hash" => "5.4",
        "struct_ops" => "5.6",
        "ringbuf" => "5.8",
        "inode_storage" => "5.10",
        "task_storage" => "5.11",
        "bloom_filter" => "5.16",
        "user_ringbuf" => "6.1",
        "cgrp_storage" => "6.2",
        "arena" => "6.9",
        _ => return None,
    })
}

/// Program types (libbpf's names) and the release that added them.
pub(crate) fn prog_type_since(t: &str) -> Option<&'static str> {
    Some(match t {
        "socket_filter" => "3.19",
        "kprobe" | "sched_cls" | "sched_act" => "4.1",
        "tracepoint" => "4.7",
        "xdp" => "4.8",
        "perf_event" => "4.9",
        "cgroup_skb" | "cgroup_sock" | "lwt_in" | "lwt_out" | "lwt_xmit" => "4.10",
        "sock_ops" => "4.13",
        "sk_skb" => "4.14",
        "cgroup_device" => "4.15",
        "sk_msg" | "raw_tracepoint" | "cgroup_sock_addr" => "4.17",
        "lwt_seg6local" | "lirc_mode2" => "4.18",
        "sk_reuseport" => "4.19",
        "flow_dissector" => "4.20",
        "cgroup_sysctl" | "raw_tracepoint_writable" => "5.2",
        "cgroup_sockopt" => "5.3",
        "tracing" => "5.5",
        "struct_ops" | "ext" => "5.6",
        "lsm" => "5.7",
        "sk_lookup" => "5.9",
        "syscall" => "5.14",
        "netfilter" => "6.4",
        _ => return None,
    })
}

/// struct_ops types (the kernel struct a `.struct_ops` map implements) and
/// the release that made each one implementable in BPF.
pub(crate) fn struct_ops_since(name: &str) -> Option<&'static str> {
    Some(match name {
        "tcp_congestion_ops" => "5.6",
        "hid_bpf_ops" => "6.11",
        "sched_ext_ops" => "6.12",
        _ => return None,
    })
}

/// Features that are neither a helper nor a type, and their first release
/// (the commit that added each, upstream).
pub(crate) mod features {
    /// Global variables: direct map value loads (`BPF_PSEUDO_MAP_VALUE`),
    /// "bpf: implement lookup-free direct value access for maps", Linux 5.2.
    pub(crate) const GLOBAL_DATA: &str = "5.2";
    /// BTF-defined maps as aya 0.14 creates them (type IDs and the object's
    /// BTF): refused on Ubuntu's 4.15, 4.18, 5.0 and 5.3, accepted on 5.4
    /// (measured: the kernel's BTF loading of a rustc object, not one
    /// upstream commit).
    pub(crate) const AYA_BTF_MAPS: &str = "5.4";
    /// Module BTF (`CONFIG_DEBUG_INFO_BTF_MODULES`), where fentry-like
    /// programs find a module's function: "bpf: Load and verify kernel
    /// module BTFs", Linux 5.11.
    pub(crate) const MODULE_BTF: &str = "5.11";
    /// Kernel symbols (`BPF_PSEUDO_BTF_ID`, `__ksym` variables), "bpf:
    /// Introduce pseudo_btf_id", Linux 5.10.
    pub(crate) const KSYM: &str = "5.10";
    /// Callbacks (`BPF_PSEUDO_FUNC`), with `bpf_for_each_map_elem`, Linux 5.13.
    pub(crate) const CALLBACK: &str = "5.13";
    /// mmap-able array maps (`BPF_F_MMAPABLE`), "bpf: Add mmap() support for
    /// BPF_MAP_TYPE_ARRAY", Linux 5.5.
    pub(crate) const ARRAY_MMAP: &str = "5.5";
    /// Struct_ops maps registered through a BPF link (`.struct_ops.link`,
    /// `BPF_F_LINK`): "bpf: Create links for BPF struct_ops maps", Linux 6.4.
    pub(crate) const STRUCT_OPS_LINK: &str = "6.4";
    /// A program's expected attach type given at load
    /// (`expected_attach_type`): "bpf: Check attach type at prog load
    /// time", Linux 4.17.
    pub(crate) const EXPECTED_ATTACH_TYPE: &str = "4.17";
}

/// Attach types whose BPF link (or attach API) a section asks for, by the
/// section's prefix: what they are called and the release that added them.
/// From the upstream commits that introduced each attach type.
pub(crate) fn attach_since(hook: crate::wire::Hook) -> Option<(&'static str, &'static str)> {
    static TABLE: LazyLock<Vec<[&str; 3]>> =
        LazyLock::new(|| rows(include_str!("attach.tsv")).collect());
    TABLE
        .iter()
        .find(|[prefix, _, _]| hook.has_prefix(prefix))
        .map(|[_, what, since]| (*what, *since))
}

/// Whether the kernel release `release` (`uname -r`, e.g.
/// `5.10.0-46-cloud-amd64`) is older than `major.minor`; `None` when either
/// does not parse.
pub(crate) fn release_older_than(release: &str, since: &str) -> Option<bool> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    Some(parse(release)? < parse(since)?)
}

/// kfuncs whose first release is known here.
pub(crate) fn kfunc_since(name: &str) -> Option<&'static str> {
    Some(match name {
        "bpf_rcu_read_lock" | "bpf_rcu_read_unlock" => "6.2",
        "bpf_cpumask_create" | "bpf_cpumask_release" => "6.3",
        "bpf_iter_num_new"
        | "bpf_iter_num_next"
        | "bpf_iter_num_destroy"
        | "bpf_dynptr_from_skb"
        | "bpf_dynptr_from_xdp"
        | "bpf_dynptr_slice"
        | "bpf_dynptr_slice_rdwr" => "6.4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_compare_by_major_and_minor() {
        assert_eq!(
            release_older_than("5.10.0-46-cloud-amd64", "5.18"),
            Some(true)
        );
        assert_eq!(
            release_older_than("6.12.117+deb13-cloud-amd64", "5.18"),
            Some(false)
        );
        assert_eq!(release_older_than("5.18.0", "5.18"), Some(false));
        assert_eq!(release_older_than("4.15.0-142-generic", "4.17"), Some(true));
        assert_eq!(release_older_than("garbage", "5.18"), None);
        assert_eq!(
            attach_since(crate::wire::Hook::new("kprobe.multi/do_unlinkat"))
                .unwrap()
                .1,
            "5.18"
        );
        assert_eq!(
            attach_since(crate::wire::Hook::new("kprobe/do_unlinkat")),
            None
        );
    }

    #[test]
    fn helper_table_matches_the_uapi_numbering() {
        assert_eq!(helper_name(1).as_deref(), Some("bpf_map_lookup_elem"));
        assert_eq!(helper_name(131).as_deref(), Some("bpf_ringbuf_reserve"));
        assert_eq!(helper_name(181).as_deref(), Some("bpf_loop"));
        assert_eq!(helper_since(181), Some("5.17"));
        assert_eq!(helper_id("bpf_loop"), Some(181));
        assert_eq!(helper_name(100_000), None);
    }

    #[test]
    fn the_tables_parse_and_helper_ids_run_from_one_without_gaps() {
        for (i, h) in HELPERS.iter().enumerate() {
            assert_eq!(h.id as usize, i + 1, "bpf_{}", h.name);
            assert!(
                h.since
                    .is_none_or(|v| release_older_than("99.0", v) == Some(false))
            );
        }
        assert!(attach_since(crate::wire::Hook::new("netkit/")).is_some());
    }
}
