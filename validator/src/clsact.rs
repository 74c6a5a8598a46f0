//! The clsact qdisc that tc filters attached through netlink need (tcx
//! links do not): added where missing and removed again, so that a device
//! is left as it was found.

use libbpf_rs::libbpf_sys;

/// `lo` is interface 1 in every network namespace.
pub(crate) const LO_IFINDEX: i32 = 1;

/// A clsact qdisc on a device; dropping it removes the qdisc, with every
/// filter on it, only if it was added here.
pub(crate) struct Clsact {
    ifindex: i32,
    added: bool,
}

impl Clsact {
    /// Adds the qdisc to device `ifindex` unless it has one.
    pub(crate) fn add(ifindex: i32) -> std::io::Result<Clsact> {
        let mut hook = hook(ifindex, libbpf_sys::BPF_TC_INGRESS);
        // SAFETY: `hook` is a complete, sized bpf_tc_hook that outlives the call.
        match unsafe { libbpf_sys::bpf_tc_hook_create(&mut hook) } {
            0 => Ok(Clsact {
                ifindex,
                added: true,
            }),
            err => {
                let err = std::io::Error::from_raw_os_error(-err);
                if err.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(Clsact {
                        ifindex,
                        added: false,
                    })
                } else {
                    Err(err)
                }
            }
        }
    }
}

impl Drop for Clsact {
    fn drop(&mut self) {
        if self.added {
            // Both directions at once: the qdisc itself, not its filters.
            let mut hook = hook(
                self.ifindex,
                libbpf_sys::BPF_TC_INGRESS | libbpf_sys::BPF_TC_EGRESS,
            );
            // SAFETY: as in `add`.
            unsafe { libbpf_sys::bpf_tc_hook_destroy(&mut hook) };
        }
    }
}

fn hook(ifindex: i32, attach_point: libbpf_sys::bpf_tc_attach_point) -> libbpf_sys::bpf_tc_hook {
    libbpf_sys::bpf_tc_hook {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as libbpf_sys::size_t,
        ifindex,
        attach_point,
        ..Default::default()
    }
}
