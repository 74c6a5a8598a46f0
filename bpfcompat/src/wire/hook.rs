//! A program's hook, read from its ELF section name (`kprobe/do_unlinkat`,
//! `uretprobe.multi.s//bin/sh:main`, `cgroup/connect4`) in one place: what
//! kind of program it is, what it attaches to, and every question the
//! classifier, the attach, fire, the floor and both loaders ask of a
//! section. No other module reads a section string.
//!
//! The names follow libbpf's `section_defs` (libbpf.c): a kind, then after
//! the first `/` the target (a function, `category/name`, `binary:function`
//! or a direction). A `.s` at the kind's end is the sleepable variant.

/// A section name, split once into its kind and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook<'a> {
    section: &'a str,
    kind: &'a str,
    target: Option<&'a str>,
}

/// Kinds whose section names a kernel function (`kprobe/f`, `fentry/f`).
const FUNCTION_KINDS: &[&str] = &[
    "kprobe",
    "kretprobe",
    "fentry",
    "fexit",
    "fmod_ret",
    "fentry.s",
    "fexit.s",
    "fmod_ret.s",
];

/// Kinds libbpf cannot auto-attach without a target the section lacks.
const NEEDS_TARGET: &[&str] = &[
    "kprobe",
    "kretprobe",
    "uprobe",
    "uretprobe",
    "uprobe.s",
    "uretprobe.s",
    "tracepoint",
    "tp",
    "raw_tp",
    "raw_tracepoint",
    "tp_btf",
    "fentry",
    "fexit",
    "fmod_ret",
    "lsm",
    "ksyscall",
    "kretsyscall",
];

/// Kinds of programs libbpf's auto-attach has no target for: a loader
/// places them (a socket, a map, an iterator's reader, another program).
const NO_AUTO_TARGET: &[&str] = &[
    "socket",
    "sk_skb",
    "sk_msg",
    "sk_reuseport",
    "sk_lookup",
    "flow_dissector",
    "perf_event",
    "syscall",
    "iter",
    "freplace",
    "lirc_mode2",
    "netfilter",
    "lwt_",
    "sockops",
    "usdt",
];

/// Sections whose hooks fire mode's built-in workload is meant to reach.
const WORKLOAD_REACHES: &[&str] = &[
    "tracepoint/",
    "tp/",
    "raw_tp/",
    "raw_tracepoint/",
    "tp_btf/",
    "kprobe/",
    "kretprobe/",
    "ksyscall/",
    "kretsyscall/",
    "kprobe.multi/",
    "kretprobe.multi/",
    "fentry/",
    "fexit/",
    "fmod_ret/",
    "lsm/",
    "xdp",
    "tc",
    "classifier",
    "cgroup_skb/",
    "cgroup/",
];

/// How a uprobe.multi link is made: on return, or as a session (entry and
/// return, Linux's `uprobe.session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UprobeMulti {
    /// A return probe.
    pub retprobe: bool,
    /// A session (entry and return).
    pub session: bool,
}

impl<'a> Hook<'a> {
    /// The hook of `section`.
    pub fn new(section: &'a str) -> Hook<'a> {
        let (kind, target) = match section.split_once('/') {
            Some((kind, target)) => (kind, Some(target)),
            None => (section, None),
        };
        Hook {
            section,
            kind,
            target,
        }
    }

    /// The whole section name.
    pub fn section(&self) -> &'a str {
        self.section
    }

    /// The kind: the part before the first `/` (`uprobe.multi.s`).
    pub fn kind(&self) -> &'a str {
        self.kind
    }

    /// The part after the first `/`, where there is one.
    pub fn target(&self) -> Option<&'a str> {
        self.target
    }

    /// The tracepoint a section names: `tracepoint/<category>/<name>`.
    pub fn tracepoint(&self) -> Option<(&'a str, &'a str)> {
        self.target?.split_once('/')
    }

    /// The sleepable variant of its kind (`fentry.s`).
    pub fn sleepable(&self) -> bool {
        self.kind.ends_with(".s")
    }

    /// The kind without the sleepable `.s`.
    pub fn base_kind(&self) -> &'a str {
        self.kind.trim_end_matches(".s")
    }

    /// Whether the section begins with `prefix`: for tables keyed by
    /// section prefix (the releases of attach types).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.section.starts_with(prefix)
    }

    /// The kind and function of a section that names a kernel function
    /// (`kprobe/f+0x4` → `f`, `fentry/mod:f` → `f`).
    pub fn function(&self) -> Option<(&'a str, &'a str)> {
        let target = self.target?.rsplit(':').next()?.split('+').next()?;
        (FUNCTION_KINDS.contains(&self.kind) && !target.is_empty()).then_some((self.kind, target))
    }

    /// Whether a kind of [`Hook::function`] finds its function in BTF
    /// (fentry, fexit, fmod_ret) rather than by address (kprobes).
    pub fn finds_function_in_btf(kind: &str) -> bool {
        kind.starts_with('f')
    }

    /// A kprobe or kretprobe of any flavour (`kprobe.multi` too).
    pub fn is_kprobe(&self) -> bool {
        self.has_prefix("kprobe") || self.has_prefix("kretprobe")
    }

    /// A return kprobe of any flavour.
    pub fn is_kretprobe(&self) -> bool {
        self.has_prefix("kretprobe")
    }

    /// A kprobe.multi link (entry or return).
    pub fn is_kprobe_multi(&self) -> bool {
        self.has_prefix("kprobe.multi") || self.has_prefix("kretprobe.multi")
    }

    /// A tracepoint section that names none (`tracepoint`, `tp`).
    pub fn is_bare_tracepoint(&self) -> bool {
        matches!(self.section, "tracepoint" | "tp")
    }

    /// A raw tracepoint that names its tracepoint.
    pub fn is_raw_tracepoint(&self) -> bool {
        [
            "raw_tp/",
            "raw_tracepoint/",
            "raw_tp.w/",
            "raw_tracepoint.w/",
        ]
        .iter()
        .any(|p| self.has_prefix(p))
    }

    /// A struct_ops program.
    pub fn is_struct_ops(&self) -> bool {
        self.has_prefix("struct_ops")
    }

    /// An freplace (extension) program.
    pub fn is_freplace(&self) -> bool {
        self.has_prefix("freplace")
    }

    /// A program that runs on the BPF LSM's hooks (cgroup LSM ones too).
    pub fn runs_on_bpf_lsm(&self) -> bool {
        ["lsm/", "lsm.s/", "lsm_cgroup/"]
            .iter()
            .any(|p| self.has_prefix(p))
    }

    /// A netkit program.
    pub fn is_netkit(&self) -> bool {
        self.has_prefix("netkit/")
    }

    /// A USDT program.
    pub fn is_usdt(&self) -> bool {
        self.has_prefix("usdt")
    }

    /// A USDT program whose section names its binary and probe.
    pub fn usdt_names_binary(&self) -> bool {
        self.has_prefix("usdt/")
    }

    /// An XDP program.
    pub fn is_xdp(&self) -> bool {
        self.has_prefix("xdp")
    }

    /// A program on a cgroup (`cgroup/...`, `cgroup_skb/...`), LSM ones
    /// left out.
    pub fn is_cgroup(&self) -> bool {
        self.has_prefix("cgroup")
    }

    /// A program that attaches to a cgroup, cgroup LSM ones too.
    pub fn attaches_to_cgroup(&self) -> bool {
        self.is_cgroup() || self.has_prefix("lsm_cgroup")
    }

    /// A cgroup_skb program with its direction (aya sets the expected
    /// attach type for these).
    pub fn is_cgroup_skb_with_direction(&self) -> bool {
        self.has_prefix("cgroup_skb/")
    }

    /// XDP and tc programs, which need a network device.
    pub fn needs_net_device(&self) -> bool {
        ["xdp", "tc", "classifier"]
            .iter()
            .any(|p| self.has_prefix(p))
    }

    /// A tc program attached through a tcx link (libbpf reads `tc/ingress`
    /// and `tc/egress` as aliases of `tcx/`).
    pub fn is_tcx(&self) -> bool {
        self.has_prefix("tcx/") || matches!(self.section, "tc/ingress" | "tc/egress")
    }

    /// Kinds that attach another way before their BPF link (XDP through
    /// netlink, cgroup programs through BPF_PROG_ATTACH, tc as a filter).
    pub fn has_older_attach(&self) -> bool {
        ["xdp", "cgroup", "tc", "classifier", "sk_lookup"]
            .iter()
            .any(|p| self.has_prefix(p) && !self.has_prefix("tcx"))
    }

    /// Why a program is not attached on its own, for kinds a loader places
    /// itself: attaching them as plain XDP or tc would be refused and say
    /// nothing of the kernel.
    pub fn placed_by_the_loader(&self) -> Option<&'static str> {
        match (self.kind, self.target) {
            ("xdp" | "xdp.frags", Some("devmap" | "cpumap")) => Some(
                "runs from the devmap or cpumap entries its loader fills, not from an interface",
            ),
            ("action", _) => Some("a tc action: its loader adds it to a filter's actions"),
            _ => None,
        }
    }

    /// Whether the loader supplies the target at run time: a kind of hook
    /// with no target (`SEC("kprobe")`, `SEC("uprobe")`), a uprobe without
    /// `binary:function`, or a USDT probe (its binary and provider are
    /// named at attach time). libbpf's auto-attach cannot attach them.
    pub fn loader_names_target(&self) -> bool {
        if self.is_usdt() {
            return true;
        }
        match self.target {
            None => NEEDS_TARGET.contains(&self.section),
            Some(target) => {
                (self.kind.starts_with("uprobe") || self.kind.starts_with("uretprobe"))
                    && !target.contains(':')
            }
        }
    }

    /// Kinds libbpf's auto-attach has no target for, or whose target the
    /// loader names: left to the loader.
    pub fn left_to_the_loader(&self) -> bool {
        NO_AUTO_TARGET.iter().any(|p| self.has_prefix(p)) || self.loader_names_target()
    }

    /// Whether a configured target is taken at attach time (kprobes and
    /// tracepoints) rather than at load (BTF-typed programs).
    pub fn takes_target_at_attach(&self) -> bool {
        self.is_kprobe()
            || ["tracepoint", "tp"]
                .iter()
                .any(|k| self.section == *k || self.has_prefix(&format!("{k}/")))
    }

    /// Programs whose section names a BTF target: libbpf resolves it in the
    /// kernel's BTF before loading anything.
    pub fn needs_kernel_btf(&self) -> bool {
        matches!(
            self.kind,
            "fentry"
                | "fentry.s"
                | "fexit"
                | "fexit.s"
                | "fmod_ret"
                | "fmod_ret.s"
                | "tp_btf"
                | "lsm"
                | "lsm.s"
                | "lsm_cgroup"
                | "iter"
                | "iter.s"
        ) || self.is_struct_ops()
    }

    /// A section that names no attach target (`kprobe`, `fentry`, aya's
    /// bare `#[kprobe]`): the loader chooses it.
    pub fn is_bare(&self) -> bool {
        const KINDS: &[&str] = &[
            "kprobe",
            "kretprobe",
            "fentry",
            "fexit",
            "fmod_ret",
            "lsm",
            "tp_btf",
            "tracepoint",
            "tp",
            "raw_tp",
            "raw_tracepoint",
            "uprobe",
            "uretprobe",
        ];
        KINDS.contains(&self.section.trim_end_matches('/'))
    }

    /// For a uprobe section on a binary (`uprobe/PATH:FUNC`,
    /// `uretprobe.s/…`): the binary and whether it is a return probe.
    pub fn uprobe_on_a_binary(&self) -> Option<(&'a str, bool)> {
        let retprobe = match self.kind {
            "uprobe" | "uprobe.s" => false,
            "uretprobe" | "uretprobe.s" => true,
            _ => return None,
        };
        let (binary, _function) = self.target?.rsplit_once(':')?;
        Some((binary, retprobe))
    }

    /// For a uprobe.multi section (`uprobe.multi`, `uretprobe.multi`,
    /// sleepable `.s`, with or without `/binary:pattern`): how it attaches.
    pub fn uprobe_multi(&self) -> Option<UprobeMulti> {
        let (retprobe, session) = match self.base_kind() {
            "uprobe.multi" => (false, false),
            "uretprobe.multi" => (true, false),
            "uprobe.session" => (false, true),
            _ => return None,
        };
        Some(UprobeMulti { retprobe, session })
    }

    /// The hook several mechanisms can reach, and how preferred this one is
    /// (0 first): entry and exit of a kernel function, or a tracepoint.
    pub fn alternative(&self) -> Option<(String, u8)> {
        let target = self.target?;
        let (hook, rank) = match self.kind {
            "fentry" => ("entry", 0),
            "kprobe" => ("entry", 2),
            "fexit" => ("exit", 0),
            "kretprobe" => ("exit", 2),
            "tp_btf" => ("tp", 0),
            "raw_tp" | "raw_tracepoint" => ("tp", 1),
            // `tracepoint/<category>/<name>`: the name is the hook.
            "tracepoint" | "tp" => {
                return Some((format!("tp:{}", target.rsplit('/').next()?), 2));
            }
            _ => return None,
        };
        // A kprobe target may carry an offset (`func+0x10`): another hook.
        (!target.is_empty() && !target.contains('+')).then(|| (format!("{hook}:{target}"), rank))
    }

    /// Whether fire mode's built-in workload is meant to reach this hook.
    pub fn workload_reaches(&self) -> bool {
        WORKLOAD_REACHES.iter().any(|k| self.has_prefix(k))
    }

    /// libbpf's program type of a section, by its kind (a sleepable `.s`
    /// dropped; for `cgroup/...` the hook).
    pub fn prog_type(&self) -> Option<&'static str> {
        Some(match self.base_kind() {
            "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "ksyscall"
            | "kretsyscall" | "uprobe" | "uretprobe" | "uprobe.multi" | "uretprobe.multi"
            | "uprobe.session" | "usdt" => "kprobe",
            "tracepoint" | "tp" => "tracepoint",
            "raw_tracepoint" | "raw_tp" => "raw_tracepoint",
            "raw_tracepoint.w" | "raw_tp.w" => "raw_tracepoint_writable",
            "tp_btf" | "fentry" | "fexit" | "fmod_ret" | "iter" => "tracing",
            "freplace" => "ext",
            "lsm" | "lsm_cgroup" => "lsm",
            "struct_ops" => "struct_ops",
            "xdp" | "xdp.frags" => "xdp",
            "tc" | "tcx" | "classifier" | "netkit" => "sched_cls",
            "action" => "sched_act",
            "socket" => "socket_filter",
            "sk_reuseport" => "sk_reuseport",
            "sk_skb" => "sk_skb",
            "sk_msg" => "sk_msg",
            "sk_lookup" => "sk_lookup",
            "sockops" => "sock_ops",
            "cgroup_skb" => "cgroup_skb",
            "perf_event" => "perf_event",
            "flow_dissector" => "flow_dissector",
            "netfilter" => "netfilter",
            "syscall" => "syscall",
            "lirc_mode2" => "lirc_mode2",
            "cgroup" => match self.target?.split('/').next()? {
                "skb" => "cgroup_skb",
                "dev" => "cgroup_device",
                "sysctl" => "cgroup_sysctl",
                "getsockopt" | "setsockopt" => "cgroup_sockopt",
                "sock" | "sock_create" | "sock_release" | "post_bind4" | "post_bind6" => {
                    "cgroup_sock"
                }
                _ => "cgroup_sock_addr",
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Hook, UprobeMulti};

    fn uprobe_multi(s: &str) -> Option<UprobeMulti> {
        Hook::new(s).uprobe_multi()
    }

    fn uprobe_on_a_binary(s: &str) -> Option<(&str, bool)> {
        Hook::new(s).uprobe_on_a_binary()
    }

    fn placed_by_the_loader(s: &str) -> Option<&'static str> {
        Hook::new(s).placed_by_the_loader()
    }

    fn loader_names_target(s: &str) -> bool {
        Hook::new(s).loader_names_target()
    }

    #[test]
    fn uprobe_multi_sections_and_their_direction() {
        let how = |retprobe, session| Some(UprobeMulti { retprobe, session });
        assert_eq!(uprobe_multi("uprobe.multi"), how(false, false));
        assert_eq!(
            uprobe_multi("uretprobe.multi.s//bin/sh:main"),
            how(true, false)
        );
        assert_eq!(
            uprobe_multi("uprobe.multi.s/libc.so.6:malloc*"),
            how(false, false)
        );
        assert_eq!(
            uprobe_multi("uprobe.session.s//bin/sh:main"),
            how(false, true)
        );
        for s in ["uprobe", "uprobe//bin/sh:main", "kprobe.multi/do_*", "usdt"] {
            assert_eq!(uprobe_multi(s), None, "{s}");
        }
    }

    #[test]
    fn uprobes_on_a_binary_name_it_and_their_direction() {
        assert_eq!(
            uprobe_on_a_binary("uprobe//usr/local/bin/app:handle"),
            Some(("/usr/local/bin/app", false))
        );
        assert_eq!(
            uprobe_on_a_binary("uretprobe.s/libc.so.6:malloc"),
            Some(("libc.so.6", true))
        );
        for s in [
            "uprobe",
            "uprobe/app",
            "uprobe.multi//bin/sh:main",
            "usdt/libc.so.6:libc:setjmp",
        ] {
            assert_eq!(uprobe_on_a_binary(s), None, "{s}");
        }
    }

    #[test]
    fn programs_a_loader_places_itself_are_not_attached_as_plain_xdp_or_tc() {
        for s in ["xdp/devmap", "xdp.frags/cpumap", "action"] {
            assert!(placed_by_the_loader(s).is_some(), "{s}");
        }
        for s in ["xdp", "xdp.frags", "tc", "classifier", "tcx/ingress"] {
            assert!(placed_by_the_loader(s).is_none(), "{s}");
        }
    }

    #[test]
    fn sections_without_a_target_are_left_to_the_loader() {
        for s in [
            "uprobe",
            "uretprobe.s",
            "kprobe",
            "tracepoint",
            "uprobe/libfoo.so",
        ] {
            assert!(loader_names_target(s), "{s}");
        }
        for s in [
            "uprobe//usr/lib/libc.so.6:malloc",
            "kprobe/do_unlinkat",
            "tracepoint/syscalls/sys_enter_getpid",
            "xdp",
            "tc",
        ] {
            assert!(!loader_names_target(s), "{s}");
        }
    }

    #[test]
    fn section_kinds_give_libbpfs_program_types() {
        for (section, t) in [
            ("kprobe/do_unlinkat", "kprobe"),
            ("tp/syscalls/sys_enter_getpid", "tracepoint"),
            ("tp_btf/sched_switch", "tracing"),
            ("fentry.s/do_unlinkat", "tracing"),
            ("cgroup/connect4", "cgroup_sock_addr"),
            ("cgroup/sock_create", "cgroup_sock"),
            ("cgroup_skb/egress", "cgroup_skb"),
            ("xdp.frags", "xdp"),
            ("struct_ops/cc_ssthresh", "struct_ops"),
        ] {
            assert_eq!(Hook::new(section).prog_type(), Some(t), "{section}");
        }
        assert_eq!(Hook::new("license").prog_type(), None);
    }
}
