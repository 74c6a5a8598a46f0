//! Exit codes, the same for every command.

use std::process::ExitCode;

/// What a run ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Every required cell passed (or failed exactly as expected).
    Pass = 0,
    /// The tool could not do its job: bad input, no QEMU, no kernel, no network.
    Tool = 1,
    /// A required cell failed: the objects are not compatible.
    Regression = 2,
    /// Stopped by SIGINT (Ctrl-C); the reports hold what finished.
    Interrupted = 130,
    /// Stopped by SIGTERM; the reports hold what finished.
    Terminated = 143,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}

impl From<bpfcompat::report::ExitCode> for Code {
    fn from(c: bpfcompat::report::ExitCode) -> Code {
        match c {
            bpfcompat::report::ExitCode::Pass => Code::Pass,
            bpfcompat::report::ExitCode::ToolFailure => Code::Tool,
            bpfcompat::report::ExitCode::Regression => Code::Regression,
        }
    }
}
