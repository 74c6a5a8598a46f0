//! Stopping a run early: a flag the CLI's signal handlers set and every
//! long wait (downloads, guests) polls, so Ctrl-C and SIGTERM end guests
//! cleanly and the run still reports what finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shared by everything a run starts; cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicUsize>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// The flag itself, for signal handlers that store the signal number
    /// (`signal_hook::flag::register_usize`).
    pub fn flag(&self) -> Arc<AtomicUsize> {
        self.0.clone()
    }

    /// Asks everything to stop; `signal` is the reason (a signal number, or
    /// any non-zero value).
    pub fn cancel(&self, signal: usize) {
        self.0.store(signal.max(1), Ordering::SeqCst);
    }

    /// The signal that stopped the run, if any.
    pub fn signal(&self) -> Option<usize> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Whether the run is being stopped.
    pub fn is_cancelled(&self) -> bool {
        self.signal().is_some()
    }
}

/// `SIGINT`, `SIGTERM`, … for the signals a run is stopped with.
pub fn signal_name(signal: usize) -> String {
    i32::try_from(signal)
        .ok()
        .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
        .map_or_else(|| format!("signal {signal}"), |s| s.as_str().to_string())
}
