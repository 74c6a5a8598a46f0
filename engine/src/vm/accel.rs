//! Hardware acceleration: KVM only where it really works.
//!
//! Some hosts (nested virtualisation without VMX passed through) have a
//! `/dev/kvm` that opens and creates VMs whose guests never run. `auto`
//! therefore checks the CPU flags first and, when those look right, still
//! watches the first KVM guest for a sign of life (see [`crate::run`]).

use std::fs::OpenOptions;

/// The accelerator a guest runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM where it works, TCG otherwise.
    Auto,
    /// KVM or fail.
    Kvm,
    /// TCG always.
    Tcg,
}

impl crate::named::Named for AccelChoice {
    const WHAT: &'static str = "accelerator";
    const TABLE: &'static [(&'static str, AccelChoice)] = &[
        ("auto", AccelChoice::Auto),
        ("kvm", AccelChoice::Kvm),
        ("tcg", AccelChoice::Tcg),
    ];
}

/// Whether KVM can be tried: `Ok(())`, or why not.
pub fn probe_kvm() -> Result<(), String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm cannot be opened ({e})"))?;
    // Some hosts hide the flags yet run KVM fine; this lets the boot probe
    // alone decide there (and lets tests exercise that probe).
    if std::env::var_os("BPFCOMPAT_KVM_SKIP_CPU_CHECK").is_some_and(|v| v == "1") {
        return Ok(());
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    if !flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
        return Err("/dev/kvm opens but the CPU advertises neither vmx nor svm (nested virtualisation without hardware support: KVM guests hang)".into());
    }
    Ok(())
}
