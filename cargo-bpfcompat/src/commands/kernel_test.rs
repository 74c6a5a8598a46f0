//! `kernel-test plan` and `kernel-test run`: what a `#[kernel_test]` binary
//! asks of the installed CLI (see `bpfcompat::wire::kernel_tests`): one
//! JSON request on stdin, one JSON answer on stdout; progress on stderr.

use std::io::Read;

use bpfcompat_engine::kernel_tests;
use clap::Subcommand;

use crate::exit::Code;

/// The two requests.
#[derive(Subcommand)]
pub enum KernelTestCommand {
    /// The (test × kernel) cells of a test binary's tests.
    Plan,
    /// Boot a kernel with the test binary as `/init` for its tests.
    Run,
}

/// Reads the request, answers it.
pub fn run(c: KernelTestCommand) -> Result<Code, crate::error::Error> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    let answer = match c {
        KernelTestCommand::Plan => {
            let req = serde_json::from_slice(&input).map_err(|e| unreadable(&e))?;
            serde_json::to_string(&kernel_tests::plan(&req))
        }
        KernelTestCommand::Run => {
            let req = serde_json::from_slice(&input).map_err(|e| unreadable(&e))?;
            serde_json::to_string(&kernel_tests::run(&req)?)
        }
    };
    crate::stdout::outln!("{}", answer.expect("answers serialize"));
    Ok(Code::Pass)
}

fn unreadable(e: &serde_json::Error) -> String {
    format!(
        "cannot read the request ({e}) (hint: use the cargo-bpfcompat of the same release as the `bpfcompat` your tests depend on)"
    )
}
