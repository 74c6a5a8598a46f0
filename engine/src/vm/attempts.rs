//! Booting one guest until its init runs: the accelerator policy (KVM only
//! where a guest was seen running, TCG for good after one hung, said once)
//! and bounded retries of guests that die before init starts. The runner
//! and the `#[kernel_test]` harness both boot through here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Accel, AccelChoice, Boot, BootSpec, Exit, boot, probe_kvm};
use crate::cancel::Cancel;
use crate::errors::VmError;

/// Without a hello from the guest's init by then, a KVM guest is taken to be hung.
pub(crate) const KVM_LIVENESS: Duration = Duration::from_secs(15);

/// The accelerator decision, shared by every guest of a process.
#[derive(Debug)]
pub struct AccelPolicy {
    kvm: AtomicBool,
    verified: AtomicBool,
    fallback_said: AtomicBool,
}

impl AccelPolicy {
    /// Decides from the user's choice: `Kvm` fails when KVM cannot be used;
    /// `Auto` starts on KVM where the host looks capable, else on TCG and
    /// returns why.
    pub fn new(choice: AccelChoice) -> Result<(AccelPolicy, Option<String>), VmError> {
        let (kvm, why_not) = match choice {
            AccelChoice::Tcg => (false, None),
            AccelChoice::Kvm => {
                probe_kvm().map_err(|reason| VmError::KvmUnusable { reason })?;
                (true, None)
            }
            AccelChoice::Auto => match probe_kvm() {
                Ok(()) => (true, None),
                Err(reason) => (false, Some(reason)),
            },
        };
        let policy = AccelPolicy {
            kvm: AtomicBool::new(kvm),
            // Only `auto` watches KVM guests for a sign of life.
            verified: AtomicBool::new(choice != AccelChoice::Auto),
            fallback_said: AtomicBool::new(false),
        };
        Ok((policy, why_not))
    }

    /// The accelerator once it is known to work (TCG, or KVM after a guest
    /// ran on it); `None` while KVM is unproven.
    pub(crate) fn settled(&self) -> Option<Accel> {
        let accel = self.current();
        (accel == Accel::Tcg || self.verified.load(Ordering::SeqCst)).then_some(accel)
    }

    /// Records that a KVM guest ran (a restored one, watched for life).
    pub(crate) fn mark_verified(&self) {
        self.verified.store(true, Ordering::SeqCst);
    }

    pub(crate) fn current(&self) -> Accel {
        if self.kvm.load(Ordering::SeqCst) {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

/// What happens while booting, for the caller's events and evidence.
#[derive(Debug)]
pub enum AttemptEvent<'a> {
    /// Attempt `n` (1-based) starts.
    Starting {
        /// The attempt.
        n: u32,
    },
    /// An attempt ended (evidence may be kept from it).
    Ended {
        /// The attempt.
        n: u32,
        /// What it produced.
        boot: &'a Boot,
    },
    /// KVM runs no guest here: every later guest of the process uses TCG.
    /// Sent once per process.
    FellBackToTcg {
        /// How the KVM guest ended.
        exit: &'a Exit,
    },
}

/// How a guest is booted: limits and retries.
#[derive(Debug, Clone, Copy)]
pub struct Attempts<'a> {
    /// The QEMU binary.
    pub qemu: &'a Path,
    /// Limit for one boot, spawn to exit.
    pub timeout: Duration,
    /// Boots retried when a guest dies before its init starts.
    pub retries: u32,
    /// The process's accelerator policy.
    pub accel: &'a AccelPolicy,
    /// Stops the guest.
    pub cancel: &'a Cancel,
}

/// The boot that counts, and what came before it.
#[derive(Debug)]
pub struct Booted {
    /// The last boot: init started in it, or retries ran out, or it was
    /// interrupted.
    pub boot: Boot,
    /// Earlier boots that died before init started: the attempt and how.
    pub retried: Vec<(u32, Exit)>,
    /// The accelerator of the last boot.
    pub accel: Accel,
}

/// Boots until the guest's init starts. `spec` builds attempt `n`'s
/// machine for an accelerator. A KVM guest that never started init while KVM
/// was not yet seen working moves the whole process to TCG and does not
/// count as an attempt; a guest that panicked, powered off or timed out
/// before init is retried up to `retries` times.
pub fn boot_until_init(
    a: &Attempts,
    spec: &dyn Fn(u32, Accel) -> BootSpec,
    on: &mut dyn FnMut(AttemptEvent),
) -> Result<Booted, VmError> {
    let mut n = 0;
    let mut retried = Vec::new();
    loop {
        n += 1;
        let accel = a.accel.current();
        let unverified_kvm = accel == Accel::Kvm && !a.accel.verified.load(Ordering::SeqCst);
        on(AttemptEvent::Starting { n });
        let b = boot(
            a.qemu,
            &spec(n, accel),
            a.timeout,
            unverified_kvm.then_some(KVM_LIVENESS),
            a.cancel,
        )?;
        on(AttemptEvent::Ended { n, boot: &b });
        let started = b.agent_started_ms.is_some();
        if matches!(b.exit, Exit::Interrupted { .. }) {
            return Ok(Booted {
                boot: b,
                retried,
                accel,
            });
        }
        if unverified_kvm && !started {
            // Hung, or QEMU refused the CPU: TCG from now on, for every guest.
            a.accel.kvm.store(false, Ordering::SeqCst);
            if !a.accel.fallback_said.swap(true, Ordering::SeqCst) {
                on(AttemptEvent::FellBackToTcg { exit: &b.exit });
            }
            n -= 1;
            continue;
        }
        if accel == Accel::Kvm && started {
            a.accel.verified.store(true, Ordering::SeqCst);
        }
        let retryable = !started
            && matches!(
                b.exit,
                Exit::Panic { .. } | Exit::Timeout { .. } | Exit::PoweredOff
            );
        if retryable && n <= a.retries {
            retried.push((n, b.exit.clone()));
            continue;
        }
        return Ok(Booted {
            boot: b,
            retried,
            accel,
        });
    }
}
