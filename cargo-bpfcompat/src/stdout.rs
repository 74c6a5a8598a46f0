//! Standard output that a closed reader does not break: `cargo bpfcompat
//! kernels list | head -1` ends quietly (Rust's `crate::stdout::outln!` would panic and
//! exit 101), and a run whose reader went away still finishes, writes its
//! reports and exits with its verdict.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout could not be written: nothing more is tried.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout unless it is closed; a failed write closes it.
pub fn write(args: std::fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `print!` to [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// `crate::stdout::outln!` to [`write`].
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
