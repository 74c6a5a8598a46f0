//! Exit codes, the same for every command: the report's [`Code`] (0 pass,
//! 1 tool failure, 2 regression, 130 / 143 stopped by a signal).

pub use bpfcompat_engine::report::ExitCode as Code;

/// The process exit status of a code.
pub fn status(c: Code) -> std::process::ExitCode {
    std::process::ExitCode::from(c as u8)
}
