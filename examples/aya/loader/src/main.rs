//! Loads the aya object named on the command line with aya, as an aya
//! project's loader does, and attaches its programs: tracepoints to
//! `syscalls/sys_enter_getpid`, kprobes to `do_unlinkat` (the targets the
//! example's bare sections leave to the loader). Exits 0 when everything
//! loaded and attached, 1 with aya's error otherwise.

use aya::programs::{KProbe, TracePoint};
use aya::{Ebpf, programs::Program};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: aya-loader OBJECT");
        std::process::exit(2);
    };
    if let Err(e) = run(&path) {
        eprintln!("aya-loader: {path}: {e}");
        let mut source = std::error::Error::source(&*e);
        while let Some(s) = source {
            eprintln!("  caused by: {s}");
            source = s.source();
        }
        std::process::exit(1);
    }
}

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut ebpf = Ebpf::load(&std::fs::read(path)?)?;
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
