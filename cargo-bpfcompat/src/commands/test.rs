//! `cargo bpfcompat test`.

use clap::Args;

use crate::exit::Code;

/// `test` arguments.
#[derive(Args)]
pub struct TestArgs {}

pub fn run(_a: TestArgs) -> Result<Code, Box<dyn std::error::Error>> {
    Ok(Code::Tool)
}
