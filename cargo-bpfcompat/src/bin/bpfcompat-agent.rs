//! The guest agent: the `/init` of every validation guest.
//!
//! A binary of its own (installed next to `cargo-bpfcompat`) so that what
//! travels into each guest's initramfs is only the validator, not the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    validator::agent::main()
}
