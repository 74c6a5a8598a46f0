//! Loads an aya object with aya, as an aya project's loader does, and
//! attaches its programs: tracepoints to `syscalls/sys_enter_getpid`,
//! kprobes to `do_unlinkat` (the targets the example's bare sections leave
//! to the loader). Without an argument it loads the template it embeds (as
//! aya projects embed what aya-build put in OUT_DIR); with one, that object
//! file. Exits 0 when everything loaded and attached, 1 with aya's error.

use aya::programs::{KProbe, TracePoint};
use aya::{Ebpf, programs::Program};

fn main() {
    let path = std::env::args().nth(1);
    let bytes = match &path {
        Some(p) => std::fs::read(p).unwrap_or_else(|e| {
            eprintln!("aya-loader: {p}: {e}");
            std::process::exit(1)
        }),
        None => TEMPLATE.to_vec(),
    };
    let path = path.unwrap_or_else(|| "the embedded template".into());
    if let Err(e) = run(&bytes) {
        eprintln!("aya-loader: {path}: {e}");
        let mut source = std::error::Error::source(&*e);
        while let Some(s) = source {
            eprintln!("  caused by: {s}");
            source = s.source();
        }
        std::process::exit(1);
    }
}

/// The template object, embedded as aya projects embed theirs.
static TEMPLATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/template"));

fn run(bytes: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let mut ebpf = Ebpf::load(bytes)?;
    let names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
    let mut links = 0;
    for name in names {
        match ebpf.program_mut(&name).ok_or("program vanished")? {
            Program::TracePoint(tp) => {
                let tp: &mut TracePoint = tp;
                tp.load()?;
                tp.attach("syscalls", "sys_enter_getpid")?;
            }
            Program::KProbe(kp) => {
                let kp: &mut KProbe = kp;
                kp.load()?;
                kp.attach("do_unlinkat", 0)?;
            }
            _ => return Err(format!("program `{name}`: a type this example does not attach").into()),
        }
        println!("ok   {name}");
        links += 1;
    }
    println!("{links} programs loaded and attached");
    Ok(())
}
