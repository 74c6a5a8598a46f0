//! What a traced loader asked the kernel: its `bpf()` calls that create or
//! attach something and its `perf_event_open` calls, with the kernel's
//! answers (guest to host, part of a command's or a kernel test's record).
//!
//! Everything here was read from the loader's memory: names are clipped,
//! lists bounded, and nothing becomes a path. The host classifies a failed
//! call with object mode's rules.

use serde::{Deserialize, Serialize};

/// The most calls one trace keeps (the first ones; later ones are counted).
pub const MAX_CALLS: usize = 2048;
/// The most verifier-log lines kept for one call (its end).
pub const LOG_TAIL_LINES: usize = 60;
/// The longest name or string kept (a loader's memory may hold anything).
pub const MAX_NAME: usize = 256;

/// A loader's traced calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    /// In the order the kernel answered them.
    pub calls: Vec<TracedCall>,
    /// Calls past [`MAX_CALLS`], not kept.
    #[serde(default)]
    pub dropped: u64,
    /// Why nothing was traced (tracing off, or the kernel refused it).
    #[serde(default)]
    pub not_traced: Option<String>,
}

impl Trace {
    /// Whether the kernel took a name with a call (from Linux 4.15): an
    /// unnamed call is then a library's probe; before, every call is
    /// unnamed.
    pub fn names_taken(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.result.errno().is_none() && !c.call.name().is_empty())
    }
}

/// Programs libbpf's feature probes load under names of their own
/// (features.c); its other probes are named `libbpf_…`, or not at all.
const LIBBPF_PROBES: &[&str] = &["det_arg_ctx", "global_reloc"];

impl Call {
    /// Its map's or program's name, empty where it has none.
    pub fn name(&self) -> &str {
        match self {
            Call::MapCreate(m) => &m.name,
            Call::ProgLoad(p) => &p.name,
            _ => "",
        }
    }

    /// Whether this is a loader library's feature probe (libbpf's, aya's),
    /// which kernels refuse by design: never the loader's own failure.
    /// `names_taken`: see [`Trace::names_taken`].
    pub fn is_library_probe(&self, names_taken: bool) -> bool {
        let named = |n: &str| {
            n.starts_with("libbpf_") || n.starts_with("aya_") || LIBBPF_PROBES.contains(&n)
        };
        match self {
            // BTF the kernel refuses is sanitized and loaded again, or done
            // without: a later step says whether that mattered.
            Call::BtfLoad { .. } => true,
            Call::MapCreate(m) => named(&m.name) || (m.name.is_empty() && names_taken),
            Call::ProgLoad(p) => {
                named(&p.name) || (p.name.is_empty() && names_taken && p.insn_cnt <= 8)
            }
            // An attach of a program no traced load named, or of a probe's
            // program (libbpf and aya probe for BPF links that way).
            Call::Attach(a) => a
                .program
                .as_deref()
                .is_none_or(|n| named(n) || (n.is_empty() && names_taken)),
            _ => false,
        }
    }
}

/// One call and the kernel's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TracedCall {
    /// The calling thread, as the guest's init sees it.
    pub tid: i32,
    /// Milliseconds since the loader started.
    pub at_ms: u64,
    /// What was asked.
    pub call: Call,
    /// What the kernel answered: a descriptor (or 0), or a positive errno.
    pub result: CallResult,
}

/// The kernel's answer to one call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CallResult {
    /// It succeeded with this value.
    Ok(i64),
    /// It failed with this (positive) errno.
    Err(i32),
    /// A netlink request whose answer the loader never read.
    NoAnswer,
}

impl CallResult {
    /// The errno of a failed call.
    pub fn errno(self) -> Option<i32> {
        match self {
            CallResult::Err(e) => Some(e),
            CallResult::Ok(_) | CallResult::NoAnswer => None,
        }
    }
}

/// One traced request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    /// `BPF_MAP_CREATE`.
    MapCreate(MapCall),
    /// `BPF_PROG_LOAD`.
    ProgLoad(ProgCall),
    /// `BPF_BTF_LOAD`.
    BtfLoad {
        /// Size of the BTF blob.
        size: u32,
        /// The end of the BTF log the loader received, if it asked for one.
        #[serde(default)]
        log: Vec<String>,
    },
    /// `BPF_LINK_CREATE`, `BPF_PROG_ATTACH`, `BPF_RAW_TRACEPOINT_OPEN`,
    /// `PERF_EVENT_IOC_SET_BPF`, or a netlink request for XDP or tc: a
    /// program attached.
    Attach(AttachCall),
    /// `perf_event_open` of a kprobe, uprobe or tracepoint.
    PerfEvent(PerfCall),
    /// `BPF_OBJ_PIN` or `BPF_OBJ_GET`.
    Pin {
        /// Whether it was a get (else a pin).
        get: bool,
        /// The bpffs path (display only).
        path: String,
    },
}

/// A map the loader created.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MapCall {
    /// Its name as the kernel got it (at most 15 bytes).
    pub name: String,
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// Filled after the run where the call failed: the kernel's answer to
    /// a probe of this map type.
    #[serde(default)]
    pub type_supported: Option<bool>,
}

/// A program the loader loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgCall {
    /// Its name as the kernel got it (at most 15 bytes).
    pub name: String,
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// `attach_btf_id`, when it names a kernel function or type.
    #[serde(default)]
    pub attach_btf_id: u32,
    /// Whether that ID is another BTF's (a module's, or a program's for
    /// freplace) rather than the kernel's own.
    #[serde(default)]
    pub attach_elsewhere: bool,
    /// That id's name in the kernel's BTF, where it was resolved.
    #[serde(default)]
    pub attach_to: Option<String>,
    /// Instruction count.
    pub insn_cnt: u32,
    /// The license string.
    pub license: String,
    /// The helper IDs its instructions call.
    #[serde(default)]
    pub helpers: Vec<u32>,
    /// Whether the loader asked for a verifier log with this call.
    #[serde(default)]
    pub log_asked: bool,
    /// The end of the verifier log the loader received (or, where it asked
    /// for none, the log of the same load made again: see `replay`).
    #[serde(default)]
    pub log: Vec<String>,
    /// For a refused load that asked for no log: `replayed` when `log` is
    /// the tracer's replay of it, else why there is none.
    #[serde(default)]
    pub replay: Option<String>,
    /// The loaded program's ID, where it loaded and the ID could be read.
    #[serde(default)]
    pub prog_id: Option<u32>,
    /// The kernel's figures for the loaded program, read by ID.
    #[serde(default)]
    pub loaded: Option<LoadedFacts>,
    /// Filled after the run where the call failed: the kernel's answer to
    /// a probe of this program type.
    #[serde(default)]
    pub type_supported: Option<bool>,
    /// Filled after the run where the call failed: helpers the kernel's
    /// probe says this program type cannot call.
    #[serde(default)]
    pub unsupported_helpers: Vec<u32>,
}

/// What the kernel says of a program it loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoadedFacts {
    /// Instructions after the verifier's rewrites.
    pub xlated_len: u32,
    /// JIT-compiled size in bytes (0 when not JIT-compiled).
    pub jited_len: u32,
    /// Instructions the verifier processed (Linux 5.16 and later).
    #[serde(default)]
    pub verified_insns: Option<u32>,
}

/// A program attached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AttachCall {
    /// How: `link_create`, `prog_attach`, `raw_tracepoint_open`,
    /// `perf_event_set_bpf`, `netlink_xdp` or `netlink_tc`.
    pub how: String,
    /// The program's name, when its descriptor came from a traced load.
    #[serde(default)]
    pub program: Option<String>,
    /// `enum bpf_attach_type` (link create, prog attach).
    #[serde(default)]
    pub attach_type: Option<u32>,
    /// A raw tracepoint's name, or the interface (and direction) of an
    /// XDP or tc attach.
    #[serde(default)]
    pub target: Option<String>,
}

/// A perf event opened for a probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PerfCall {
    /// `kprobe`, `kretprobe`, `uprobe`, `uretprobe`, `tracepoint` or
    /// `other` (the event's PMU type number then in `pmu`).
    pub probe: String,
    /// The kprobe's function, the uprobe's file, or the tracepoint's ID.
    pub target: String,
    /// The PMU type number.
    pub pmu: u32,
}

/// libbpf's names of map types, by `enum bpf_map_type` number.
pub const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// libbpf's names of program types, by `enum bpf_prog_type` number.
pub const PROG_TYPES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// A map type's name (its number where the table has none).
pub fn map_type_name(t: u32) -> String {
    MAP_TYPES
        .get(t as usize)
        .map_or_else(|| format!("map type {t}"), |s| s.to_string())
}

/// A program type's name (its number where the table has none).
pub fn prog_type_name(t: u32) -> String {
    PROG_TYPES
        .get(t as usize)
        .map_or_else(|| format!("program type {t}"), |s| s.to_string())
}

/// The section prefix libbpf gives a program of this type and expected
/// attach type: what object mode's rules read a program's kind from.
pub fn section_of(prog_type: u32, expected_attach_type: u32) -> &'static str {
    match (prog_type, expected_attach_type) {
        (2, _) => "kprobe/",
        (3, _) => "tc",
        (5, _) => "tracepoint/",
        (6, _) => "xdp",
        (7, _) => "perf_event",
        (17, _) => "raw_tp/",
        (26, 23) => "tp_btf/",
        (26, 24) => "fentry/",
        (26, 25) => "fexit/",
        (26, 26) => "fmod_ret/",
        (26, 28) => "iter/",
        (27, _) => "struct_ops/",
        (28, _) => "freplace/",
        (29, _) => "lsm/",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_tables_follow_the_uapi_numbers() {
        // Spot checks against include/uapi/linux/bpf.h.
        assert_eq!(map_type_name(27), "ringbuf");
        assert_eq!(map_type_name(30), "bloom_filter");
        assert_eq!(map_type_name(99), "map type 99");
        assert_eq!(prog_type_name(26), "tracing");
        assert_eq!(prog_type_name(29), "lsm");
        assert_eq!(section_of(26, 24), "fentry/");
    }
}
