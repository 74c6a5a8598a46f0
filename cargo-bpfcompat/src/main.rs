//! `cargo bpfcompat`: the command-line front end. It parses arguments,
//! dispatches, renders an error once and exits with a documented code.
//!
//! The same binary is also the guest agent: booted as a guest's `/init` (PID 1)
//! it validates the job's objects instead of parsing a command line, which is
//! why it is the one file shipped into every guest.

mod cli;
mod commands;
mod exit;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    if validator::agent::is_guest_agent() {
        validator::agent::run_as_init();
    }
    if let Some(code) = validator::agent::run_child_if_requested() {
        return code;
    }
    match cli::run() {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::Code::Tool.into()
        }
    }
}
