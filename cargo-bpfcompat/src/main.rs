//! `cargo bpfcompat`: the command-line front end. It parses arguments,
//! dispatches, renders an error once and exits with a documented code.
//! The guest agent is the separate `bpfcompat-agent` binary of this package.

mod args;
mod artifacts;
mod cli;
mod commands;
mod error;
mod exit;
mod messages;
mod progress;
mod render;
mod report_files;
mod signals;
mod stdout;
mod workspace;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => exit::status(code),
        Err(err) => {
            eprintln!("{} {err}", crate::render::label("error"));
            exit::status(err.exit_code())
        }
    }
}
