//! The kernel's build configuration (the `config-<release>` its package
//! ships), reduced to the options that decide whether BPF features work:
//! kept in the report and read by the classifier to name a missing option.

use std::collections::BTreeMap;

/// The options kept, by name. Unset options are kept as `n`.
pub(crate) const OPTIONS: &[&str] = &[
    "CONFIG_BPF",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_BPF_JIT",
    "CONFIG_BPF_LSM",
    "CONFIG_BPF_EVENTS",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_DEBUG_INFO_BTF_MODULES",
    "CONFIG_FPROBE",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_KPROBES",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_UPROBES",
    "CONFIG_UPROBE_EVENTS",
    "CONFIG_TRACEPOINTS",
    "CONFIG_CGROUP_BPF",
    "CONFIG_NET_CLS_BPF",
    "CONFIG_NET_SCH_INGRESS",
    "CONFIG_NET_CLS_ACT",
    "CONFIG_NETKIT",
    "CONFIG_XDP_SOCKETS",
    "CONFIG_LSM",
];

/// The [`OPTIONS`] a config file sets (`y`, `m`, a string without quotes)
/// or leaves unset (`n`); options the file does not mention are absent.
pub(crate) fn bpf_options(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let (name, value) = if let Some(rest) = line.strip_prefix("# ") {
            match rest.strip_suffix(" is not set") {
                Some(name) => (name, "n"),
                None => continue,
            }
        } else {
            match line.split_once('=') {
                Some((name, value)) => (name, value.trim_matches('"')),
                None => continue,
            }
        };
        if OPTIONS.contains(&name) {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// The [`bpf_options`] of the running kernel (`release`), from the config
/// its package installed in /boot, else the kernel's own /proc/config.gz;
/// empty where neither is there.
pub fn running(release: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("/boot/config-{release}")).or_else(|_| {
        let mut text = String::new();
        std::fs::File::open("/proc/config.gz").and_then(|f| {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(f), &mut text)
        })?;
        Ok::<_, std::io::Error>(text)
    });
    text.map(|t| bpf_options(&t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_unset_and_string_options() {
        let text = "#\n# Automatically generated\nCONFIG_BPF=y\n# CONFIG_FPROBE is not set\nCONFIG_NET_CLS_BPF=m\nCONFIG_LSM=\"lockdown,yama\"\nCONFIG_OTHER=y\n";
        let o = bpf_options(text);
        assert_eq!(o["CONFIG_BPF"], "y");
        assert_eq!(o["CONFIG_FPROBE"], "n");
        assert_eq!(o["CONFIG_NET_CLS_BPF"], "m");
        assert_eq!(o["CONFIG_LSM"], "lockdown,yama");
        assert!(!o.contains_key("CONFIG_OTHER"));
    }
}
