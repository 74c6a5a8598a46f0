//! The QEMU command line, from pure functions (one per concern) so it can be
//! unit-tested and shown in evidence as is.

use std::ffi::OsString;
use std::path::PathBuf;

use super::Accel;
use super::supervisor::{INCOMING_FD, RESULT_FD};

/// Everything that determines one guest's command line.
#[derive(Debug, Clone)]
pub struct BootSpec {
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initramfs (uncompressed cpio).
    pub initrd: PathBuf,
    /// Accelerator.
    pub accel: Accel,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Extra kernel parameters (`key=value` ones reach init as environment).
    pub extra_cmdline: Vec<String>,
    /// A warm guest's job disk (virtio-blk, read-only); the guest waits for
    /// its job there instead of reading it from the initramfs.
    pub job_disk: Option<PathBuf>,
    /// A QMP monitor socket, to save the machine.
    pub monitor: Option<PathBuf>,
    /// Restore this saved machine instead of booting. An open file, not a
    /// path: what was verified is what is restored, whatever happens to the
    /// cache's file meanwhile.
    pub incoming: Option<std::sync::Arc<std::fs::File>>,
}

/// The kernel command line.
pub fn kernel_cmdline(spec: &BootSpec) -> String {
    let mut p = vec![
        // The console (evidence) on the first serial port.
        "console=ttyS0".to_string(),
        // Only warnings and worse: every console byte costs time under TCG,
        // and panics, oopses and BUGs still print.
        "loglevel=4".into(),
        // A panic reboots at once, and -no-reboot turns that into QEMU exiting.
        "panic=-1".into(),
        // An oops in a BPF path must not leave a half-dead guest running.
        "oops=panic".into(),
        // Our /init; it is PID 1 and powers off when done.
        "rdinit=/init".into(),
    ];
    p.extend(spec.extra_cmdline.iter().cloned());
    if spec.job_disk.is_some() {
        p.push("BPFCOMPAT_JOB=disk".into());
    }
    p.join(" ")
}

fn accel_args(a: Accel) -> Vec<OsString> {
    match a {
        Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
        Accel::Tcg => vec!["-accel".into(), "tcg".into()],
    }
}

/// The full argv after the binary name.
pub fn qemu_args(spec: &BootSpec) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        // No default devices, no display, no monitor: only what we ask for.
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        // Reboot (including panic=-1) exits QEMU instead of rebooting.
        "-no-reboot".into(),
    ];
    a.extend(accel_args(spec.accel));
    a.extend([
        "-m".into(),
        spec.memory_mib.to_string().into(),
        "-smp".into(),
        spec.cpus.to_string().into(),
        "-kernel".into(),
        spec.kernel.clone().into(),
        "-initrd".into(),
        spec.initrd.clone().into(),
        "-append".into(),
        kernel_cmdline(spec).into(),
        // ttyS0: kernel console, read live from QEMU's stdout.
        "-serial".into(),
        "stdio".into(),
        // ttyS1: result records only, on a pipe the supervisor reads. QEMU
        // reopens the inherited pipe through /proc (its fd sets truncate,
        // which a pipe refuses).
        "-serial".into(),
        format!("file:/proc/self/fd/{RESULT_FD}").into(),
    ]);
    a.extend(warm_args(spec));
    a
}

/// The job disk, the monitor and the restore: what a warm guest adds. The
/// disk is the machine's only extra device, so a saved machine and its
/// restore have the same devices whatever the job.
fn warm_args(spec: &BootSpec) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    if let Some(disk) = &spec.job_disk {
        let mut drive = OsString::from("if=none,id=job,format=raw,readonly=on,file=");
        drive.push(disk);
        a.extend([
            "-drive".into(),
            drive,
            "-device".into(),
            "virtio-blk-pci,drive=job".into(),
        ]);
    }
    if let Some(sock) = &spec.monitor {
        let mut qmp = OsString::from("unix:");
        qmp.push(sock);
        qmp.push(",server=on,wait=off");
        a.extend(["-qmp".into(), qmp]);
    }
    if spec.incoming.is_some() {
        a.extend(["-incoming".into(), format!("fd:{INCOMING_FD}").into()]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_has_the_safety_flags_and_two_serial_ports() {
        let spec = BootSpec {
            kernel: "/k/vmlinuz".into(),
            initrd: "/t/initrd".into(),
            accel: Accel::Tcg,
            memory_mib: 512,
            cpus: 1,
            extra_cmdline: vec!["BPFCOMPAT_KERNEL=debian-12-6.1".into()],
            job_disk: None,
            monitor: None,
            incoming: None,
        };
        let argv: Vec<String> = qemu_args(&spec)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = argv.join(" ");
        assert!(
            joined.starts_with("-nodefaults -display none -no-reboot -accel tcg -m 512 -smp 1")
        );
        assert!(joined.contains("-serial stdio -serial file:/proc/self/fd/3"));
        assert!(!joined.contains("-incoming"));
        let cmdline = &argv[argv.iter().position(|a| a == "-append").unwrap() + 1];
        assert_eq!(
            cmdline,
            "console=ttyS0 loglevel=4 panic=-1 oops=panic rdinit=/init BPFCOMPAT_KERNEL=debian-12-6.1"
        );
        let kvm = qemu_args(&BootSpec {
            accel: Accel::Kvm,
            ..spec
        });
        assert!(kvm.iter().any(|a| a == "host"));
    }
}
