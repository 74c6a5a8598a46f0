//! `cargo bpfcompat list`: build the workspace and show the BPF objects found.

use clap::Args;

use crate::exit::Code;
use crate::workspace::{CargoArgs, build_workspace, discover};

/// `list` arguments.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub cargo: CargoArgs,
}

pub fn run(a: ListArgs) -> Result<Code, crate::error::Error> {
    let build = build_workspace(&a.cargo)?;
    let found = discover(&build)?;
    if found.is_empty() {
        return Err(format!(
            "the build of {} produced no BPF object",
            build.workspace_root.display()
        )
        .into());
    }
    crate::stdout::outln!("{:<24} {:<14} {:>8}  FOUND IN", "OBJECT", "SHA256", "BYTES");
    for d in &found {
        let mut places = d.found_in.iter();
        crate::stdout::outln!(
            "{:<24} {:<14} {:>8}  {}",
            d.name,
            &d.sha256[..12],
            d.size,
            places.next().map_or("", |s| s)
        );
        for p in places {
            crate::stdout::outln!("{:<24} {:<14} {:>8}  {p}", "", "", "");
        }
    }
    Ok(Code::Pass)
}
