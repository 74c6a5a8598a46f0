//! Ctrl-C and SIGTERM during a run: the first one asks the engine to stop
//! (guests are killed, a host check removes what it attached, finished cells
//! are kept and reported); a second one ends the process at once.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bpfcompat_engine::cancel::Cancel;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::exit::Code;

/// Routes SIGINT and SIGTERM into a fresh [`Cancel`] flag.
pub fn install() -> std::io::Result<Cancel> {
    let cancel = Cancel::new();
    let seen = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it runs before `seen` is set: only a second
        // signal exits here.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, seen.clone())?;
        signal_hook::flag::register(sig, seen.clone())?;
        signal_hook::flag::register_usize(sig, cancel.flag(), sig as usize)?;
    }
    let watch = cancel.clone();
    std::thread::spawn(move || {
        while !watch.is_cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!(
            "bpfcompat: {} received: stopping, cleaning up and writing what finished (send it again to stop at once)",
            bpfcompat_engine::cancel::signal_name(watch.signal().unwrap_or_default())
        );
    });
    Ok(cancel)
}

/// The exit code of a run stopped by a signal: 128 + the signal, as shells do.
pub fn exit_code(cancel: &Cancel) -> Option<Code> {
    match i32::try_from(cancel.signal()?).ok()? {
        SIGINT => Some(Code::Interrupted),
        SIGTERM => Some(Code::Terminated),
        _ => Some(Code::ToolFailure),
    }
}
