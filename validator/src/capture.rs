//! Captures libbpf's log (it is the only place the verifier log and the name
//! of a failing program or map appear).

use std::sync::{Mutex, Once};

use libbpf_rs::PrintLevel;

static LINES: Mutex<Vec<(PrintLevel, String)>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

fn record(level: PrintLevel, msg: String) {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    // One message may hold many lines (the verifier log arrives whole).
    for line in msg.lines() {
        lines.push((level, line.to_string()));
    }
}

/// Routes libbpf's output into the capture buffer (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        libbpf_rs::set_print(Some((PrintLevel::Debug, record)));
    });
}

/// Takes everything captured since the last call.
pub fn take() -> Vec<Line> {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *lines)
        .into_iter()
        .map(|(level, text)| Line {
            warn: matches!(level, PrintLevel::Warn),
            text,
        })
        .collect()
}

/// One captured line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Printed at warning level (libbpf's `pr_warn`).
    pub warn: bool,
    /// The text, without the trailing newline.
    pub text: String,
}
