//! Captures libbpf's log (it is the only place the verifier log and the name
//! of a failing program or map appear).
//!
//! The callback is our own, not libbpf-rs's `set_print`: that one turns each
//! message into a `String` with a UTF-8 `expect`, and a panic inside a C
//! callback aborts the process, so one non-UTF-8 byte in a section name
//! ended a whole validation. Here bytes are converted lossily and nothing
//! can unwind into libbpf.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<(bool, String)>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// libbpf's `LIBBPF_WARN`.
const LEVEL_WARN: libbpf_sys::libbpf_print_level = libbpf_sys::LIBBPF_WARN;

fn record(warn: bool, msg: &str) {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    // One message may hold many lines (the verifier log arrives whole).
    for line in msg.lines() {
        lines.push((warn, line.to_string()));
    }
}

/// The print callback handed to libbpf. The `va_list` is taken as a plain
/// pointer (it always is one on the ABIs libbpf runs on), as libbpf-rs does.
extern "C" fn print(
    level: libbpf_sys::libbpf_print_level,
    format: *const c_char,
    args: *mut c_void,
) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: libbpf passes a valid format string and its matching
        // arguments; vsprintf_raw copies the va_list before each use.
        if let Ok(bytes) = unsafe { vsprintf::vsprintf_raw(format, args) } {
            record(level == LEVEL_WARN, &String::from_utf8_lossy(&bytes));
        }
    });
    0
}

/// Routes libbpf's output into the capture buffer (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        type Callback = unsafe extern "C" fn(
            libbpf_sys::libbpf_print_level,
            *const c_char,
            *mut c_void,
        ) -> c_int;
        let cb: Callback = print;
        // SAFETY: `print` has libbpf_print_fn_t's ABI; only the va_list
        // parameter's pointer type differs (bindgen's is platform-specific).
        unsafe {
            libbpf_sys::libbpf_set_print(Some(std::mem::transmute::<
                Callback,
                unsafe extern "C" fn(
                    libbpf_sys::libbpf_print_level,
                    *const c_char,
                    *mut libbpf_sys::__va_list_tag,
                ) -> c_int,
            >(cb)));
        }
    });
}

/// Takes everything captured since the last call.
pub fn take() -> Vec<Line> {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *lines)
        .into_iter()
        .map(|(warn, text)| Line { warn, text })
        .collect()
}

/// One captured line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Printed at warning level (libbpf's `pr_warn`).
    pub warn: bool,
    /// The text, without the trailing newline (invalid UTF-8 replaced).
    pub text: String,
}
