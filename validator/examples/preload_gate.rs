//! A pre-load gate in a loader: refuse an object the running kernel will not
//! accept, with the reason, before loading it for real.
//!
//! `cargo run -p bpfcompat-validator --example preload_gate -- probe.bpf.o`

use std::process::ExitCode;

use validator::{Options, Source, validate_on_host};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: preload_gate <object.bpf.o>");
        return ExitCode::from(1);
    };
    // The bytes could equally come from `include_bytes!` or a skeleton.
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    match validate_on_host(
        &path,
        Source::Bytes(&bytes),
        &Options {
            mode: bpfcompat_engine::wire::Mode::Attach,
            ..Options::default()
        },
    ) {
        Ok(v) if v.passed() => {
            println!("{path}: this kernel accepts it; loading for real");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            let c = &v.cell;
            println!(
                "{path}: refused: {} in program {}: {}\n  fix: {}",
                c.code.map(|c| c.as_str()).unwrap_or("?"),
                c.program.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or(""),
                c.remediation.as_deref().unwrap_or("-"),
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
