//! The one place a guest is started, for the scheduler and the
//! `#[kernel_test]` harness alike: cold (a kernel and an initramfs, the
//! process's accelerator policy and retries) or, in [`warm`], restored from
//! a saved machine.

pub(crate) mod launch;
pub(crate) mod warm;

use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::errors::VmError;
use crate::kernel::CachedKernel;
use crate::vm::{AccelPolicy, AttemptEvent, Attempts, BootSpec, Booted, boot_until_init};

/// One guest to boot.
#[derive(Debug)]
pub struct Guest<'a> {
    /// The QEMU binary.
    pub qemu: &'a Path,
    /// The kernel.
    pub kernel: &'a CachedKernel,
    /// Its initramfs.
    pub initrd: &'a Path,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest vCPUs.
    pub cpus: u32,
    /// `key=value` kernel parameters, which reach init as environment.
    pub env: Vec<String>,
    /// Limit for one boot.
    pub timeout: Duration,
    /// Boots retried when a guest dies before init starts.
    pub retries: u32,
    /// The process's accelerator policy.
    pub accel: &'a AccelPolicy,
    /// Stops the guest.
    pub cancel: &'a Cancel,
}

/// Boots `g` until its init runs (or gives up); `on` hears every attempt.
pub fn boot_guest(g: &Guest, on: &mut dyn FnMut(AttemptEvent)) -> Result<Booted, VmError> {
    let attempts = Attempts {
        qemu: g.qemu,
        timeout: g.timeout,
        retries: g.retries,
        accel: g.accel,
        cancel: g.cancel,
    };
    let spec = |_attempt: u32, accel| BootSpec {
        kernel: g.kernel.vmlinuz.clone(),
        initrd: g.initrd.to_path_buf(),
        accel,
        memory_mib: g.memory_mib,
        cpus: g.cpus,
        extra_cmdline: g.env.clone(),
        job_disk: None,
        monitor: None,
        incoming: None,
    };
    boot_until_init(&attempts, &spec, on)
}
