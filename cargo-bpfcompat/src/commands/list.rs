//! `cargo bpfcompat list`: build the workspace and show the BPF objects found.

use clap::Args;

use crate::args::MessageFormat;
use crate::exit::Code;
use crate::workspace::CargoArgs;

/// `list` arguments.
#[derive(Args)]
pub struct ListArgs {
    /// `human` (default): a table; `json`: one record per object on
    /// stdout (`reason` `object`: name, package, sha256, bytes, path,
    /// found_in).
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    #[command(flatten)]
    pub cargo: CargoArgs,
}

pub fn run(a: ListArgs) -> Result<Code, crate::error::Error> {
    let (_, found) = crate::workspace::built_objects(&a.cargo)?;
    if a.message_format == MessageFormat::Json {
        for d in &found {
            crate::messages::object(d);
        }
        return Ok(Code::Pass);
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
