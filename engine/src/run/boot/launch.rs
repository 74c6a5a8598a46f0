//! From a fetched kernel to a running guest, for every mode: the scheduler
//! (object mode, command mode, `kernels survey`) and the `#[kernel_test]`
//! harness launch the same way. Warm where a saved machine can be had
//! (saving it first), cold otherwise and on any failure of the warm path,
//! with the kernel's modules added to the initramfs either way; each boot
//! attempt, a restore and the fall-back to cold are heard by the caller,
//! which keeps its evidence and says what it wants of them.

use std::cell::RefCell;
use std::path::Path;

use super::warm::{Warm, WarmGuest, WarmRun, run_warm};
use super::{Guest, boot_guest};
use crate::errors::VmError;
use crate::guest::Initramfs;
use crate::run::Event;
use crate::vm::{AttemptEvent, Boot, Booted};

/// One guest to launch.
pub(crate) struct Launch<'a> {
    /// The kernel profile's name (events, files).
    pub name: &'a str,
    /// The cold guest; its initramfs is without the kernel's modules, which
    /// are added here.
    pub cold: Guest<'a>,
    /// Where the initramfs with the kernel's modules is written.
    pub work: &'a Path,
    /// Restore a saved machine first; `None`: cold only.
    pub warm: Option<WarmLaunch<'a>>,
    /// Writes the cold guest's initramfs, where it is made only when
    /// needed (a restored guest takes its job from the job disk).
    pub make_cold: Option<&'a dyn Fn() -> Result<(), String>>,
}

/// How a guest is restored.
pub(crate) struct WarmLaunch<'a> {
    /// The run's warm settings (cache, job disk, accelerator, limits).
    pub run: &'a WarmRun<'a>,
    /// The saved machine's initramfs, without the kernel's modules.
    pub base: &'a Path,
    /// What makes two saved machines the same; `None`: the initramfs with
    /// the kernel's modules, byte for byte.
    pub identity: Option<String>,
    /// What the machine runs as `/init` (`agent`, `harness`).
    pub kind: &'static str,
}

/// What a launch says while it runs.
pub(crate) enum Heard<'b> {
    /// The warm path: saving, restoring, or booting cold and why.
    Run(Event),
    /// A cold boot's attempt.
    Attempt(AttemptEvent<'b>),
    /// The restored guest ended: its evidence.
    Restored(&'b Boot),
}

/// A launched guest after it ended.
pub(crate) struct Launched {
    /// The boot (a restored one has no retries).
    pub booted: Booted,
    /// Restored from a saved machine.
    pub restored: bool,
    /// Why it booted cold where warm was asked.
    pub cold_reason: Option<String>,
}

/// Launches `l`: warm when asked and possible, else cold.
pub(crate) fn launch(l: &Launch, on: &mut dyn FnMut(Heard)) -> Result<Launched, VmError> {
    let mut cold_reason = None;
    if let Some(w) = &l.warm {
        match restore(l, w, on) {
            Ok(booted) => {
                return Ok(Launched {
                    booted,
                    restored: true,
                    cold_reason: None,
                });
            }
            Err(reason) => {
                on(Heard::Run(Event::Cold {
                    kernel: l.name.to_string(),
                    reason: reason.clone(),
                }));
                cold_reason = Some(reason);
            }
        }
    }
    let kernel = l.cold.kernel;
    if let Some(make) = l.make_cold {
        make().map_err(|e| VmError::Io {
            context: format!("cannot write {}'s initramfs", l.name),
            source: std::io::Error::other(e),
        })?;
    }
    // The kernel's own modules travel in an initramfs of its own.
    let own = l.work.join(format!("{}.initrd", l.name));
    let initrd = match kernel.modules.is_empty() {
        true => l.cold.initrd,
        false => {
            Initramfs::with_modules(l.cold.initrd, &kernel.modules, &own).map_err(|e| {
                VmError::Io {
                    context: format!("cannot add {}'s kernel modules to its initramfs", l.name),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            &own
        }
    };
    let guest = Guest {
        initrd,
        env: l.cold.env.clone(),
        ..l.cold
    };
    let booted = boot_guest(&guest, &mut |e| on(Heard::Attempt(e)))?;
    Ok(Launched {
        booted,
        restored: false,
        cold_reason,
    })
}

/// Restores the kernel's saved machine (saving it first when needed); the
/// reason to boot cold instead.
fn restore(l: &Launch, w: &WarmLaunch, on: &mut dyn FnMut(Heard)) -> Result<Booted, String> {
    let kernel = l.cold.kernel;
    let initrd = l.work.join(format!("{}.base.initrd", l.name));
    Initramfs::with_modules(w.base, &kernel.modules, &initrd).map_err(|e| {
        format!(
            "cannot add {}'s kernel modules to its initramfs: {e}",
            l.name
        )
    })?;
    let identity = match &w.identity {
        Some(i) => i.clone(),
        None => crate::kernel::blake3_file(&initrd)
            .map_err(|e| format!("cannot read {}: {e}", initrd.display()))?,
    };
    let guest = WarmGuest {
        initrd: &initrd,
        identity,
        kind: w.kind,
        env: &l.cold.env,
        name: l.name,
    };
    // The warm path tells its events through a shared reference.
    let on = RefCell::new(on);
    let heard = |e| (on.borrow_mut())(Heard::Run(e));
    match run_warm(w.run, kernel, &guest, &heard) {
        Warm::Restored(boot, accel) => {
            (on.borrow_mut())(Heard::Restored(&boot));
            Ok(Booted {
                boot,
                retried: Vec::new(),
                accel,
            })
        }
        Warm::Cold(reason) => Err(reason),
    }
}
