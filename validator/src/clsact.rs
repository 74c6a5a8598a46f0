//! The clsact qdisc on `lo` that tc filters attached through netlink need
//! (tcx links do not): added where missing and removed again, so that a
//! check on a host leaves `lo` as it found it.

use libbpf_rs::libbpf_sys;

/// `lo` is interface 1 in every network namespace.
pub(crate) const LO_IFINDEX: i32 = 1;

/// A clsact qdisc on `lo`; dropping it removes the qdisc, with every filter
/// on it, only if it was added here.
pub(crate) struct ClsactOnLo {
    added: bool,
}

impl ClsactOnLo {
    /// Adds the qdisc unless `lo` has one.
    pub(crate) fn add() -> std::io::Result<ClsactOnLo> {
        let mut hook = hook(libbpf_sys::BPF_TC_INGRESS);
        // SAFETY: `hook` is a complete, sized bpf_tc_hook that outlives the call.
        match unsafe { libbpf_sys::bpf_tc_hook_create(&mut hook) } {
            0 => Ok(ClsactOnLo { added: true }),
            err => {
                let err = std::io::Error::from_raw_os_error(-err);
                if err.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(ClsactOnLo { added: false })
                } else {
                    Err(err)
                }
            }
        }
    }
}

impl Drop for ClsactOnLo {
    fn drop(&mut self) {
        if self.added {
            // Both directions at once: the qdisc itself, not its filters.
            let mut hook = hook(libbpf_sys::BPF_TC_INGRESS | libbpf_sys::BPF_TC_EGRESS);
            // SAFETY: as in `add`.
            unsafe { libbpf_sys::bpf_tc_hook_destroy(&mut hook) };
        }
    }
}

fn hook(attach_point: libbpf_sys::bpf_tc_attach_point) -> libbpf_sys::bpf_tc_hook {
    libbpf_sys::bpf_tc_hook {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as libbpf_sys::size_t,
        ifindex: LO_IFINDEX,
        attach_point,
        ..Default::default()
    }
}
