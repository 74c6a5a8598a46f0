//! A loader that does what real loaders sometimes do to the tool that runs
//! them, one thing per mode. Shipped into guests by the end-to-end tests
//! (command mode); each mode exits as it says.
//!
//! - `forge`: writes record lines of every shape (unsigned, an earlier
//!   version's, a hello with a key of its own, a passing command) and a
//!   kernel panic's first line to every serial port and the console, then
//!   exits 1;
//! - `not-utf8`: prints a line that is not UTF-8 between two that are,
//!   exits 0;
//! - `huge-line MIB`: prints one line of MIB MiB, then `end`, exits 0;
//! - `setsid`: leaves a child in a session of its own holding its output,
//!   exits 0;
//! - `daemon`: prints `ready` and waits for SIGINT (no handler: SIGINT's
//!   default action ends it);
//! - `raw-load`: loads, with raw `bpf()` calls and without asking for a
//!   verifier log, a tracepoint program that uses a map and calls bpf_loop
//!   with no callback (refused everywhere: unknown before 5.17, a wrong
//!   argument after); prints the errno and exits 1, or exits 0.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("forge") => forge(),
        Some("not-utf8") => {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"before\n\xff\xfe\xc3 not utf-8\nafter\n");
            let _ = out.flush();
        }
        Some("huge-line") => {
            let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
            let chunk = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout().lock();
            for _ in 0..mib {
                out.write_all(&chunk).expect("stdout");
            }
            out.write_all(b"\nend\n").expect("stdout");
        }
        Some("setsid") => {
            // SAFETY: fork in a single-threaded process; the child only
            // calls setsid and sleeps.
            match unsafe { nix::unistd::fork() }.expect("fork") {
                nix::unistd::ForkResult::Child => {
                    let _ = nix::unistd::setsid();
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                    std::process::exit(0);
                }
                nix::unistd::ForkResult::Parent { .. } => println!("left a child behind"),
            }
        }
        Some("daemon") => {
            println!("ready");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Some("raw-load") => raw_load(),
        _ => {
            eprintln!("usage: unruly-loader forge|not-utf8|huge-line MIB|setsid|daemon|raw-load");
            std::process::exit(2);
        }
    }
}

/// `bpf(cmd, attr)` with a 128-byte attribute.
fn bpf(cmd: u32, attr: &[u8; 128]) -> i64 {
    // SAFETY: a valid attribute buffer of the size given.
    unsafe { nix::libc::syscall(nix::libc::SYS_bpf, cmd, attr.as_ptr(), 128usize) }
}

fn raw_load() -> ! {
    let mut map = [0u8; 128];
    for (at, v) in [(0, 2u32), (4, 4), (8, 8), (12, 1)] {
        map[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    map[28..36].copy_from_slice(b"raw_map\0");
    let fd = bpf(0, &map);
    assert!(fd >= 0, "an array map");
    let mut insns: Vec<u8> = vec![0x18, 0x16, 0, 0];
    insns.extend((fd as u32).to_le_bytes());
    insns.extend([0u8; 8]);
    for (reg, imm) in [(1u8, 1u32), (2, 0), (3, 0), (4, 0)] {
        insns.extend([0xb7, reg, 0, 0]);
        insns.extend(imm.to_le_bytes());
    }
    insns.extend([0x85, 0, 0, 0, 181, 0, 0, 0]);
    insns.extend([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    let mut a = [0u8; 128];
    a[0..4].copy_from_slice(&5u32.to_le_bytes());
    a[4..8].copy_from_slice(&((insns.len() / 8) as u32).to_le_bytes());
    a[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_le_bytes());
    a[16..24].copy_from_slice(&(c"GPL".as_ptr() as u64).to_le_bytes());
    a[48..56].copy_from_slice(b"raw_loop");
    match bpf(5, &a) {
        fd if fd >= 0 => std::process::exit(0),
        _ => {
            println!("refused: {}", std::io::Error::last_os_error());
            std::process::exit(1)
        }
    }
}

fn forge() -> ! {
    let command = r#"{"record":"command","name":"unruly-loader","exit_code":0,"signal":null,"timed_out":false,"spawn_error":null,"output":"","output_bytes":0,"duration_ms":1}"#;
    let hello = r#"{"record":"hello","kernel_release":"9.9.9-forged","kernel_btf":true,"lsm":null,"uptime_ms":1}"#;
    let done = r#"{"record":"done","uptime_ms":2}"#;
    let key = "K".to_string() + &"ab".repeat(32);
    let lines = [
        format!("BPFCOMPAT2 - {command}"),
        format!("BPFCOMPAT2 {key} {hello}"),
        format!("BPFCOMPAT2 {} {command}", "0".repeat(32)),
        format!("BPFCOMPAT1 {command}"),
        format!("BPFCOMPAT2 - {done}"),
        "Kernel panic - not syncing: written by a loader".to_string(),
    ];
    for port in [
        "/dev/ttyS0",
        "/dev/ttyS1",
        "/dev/ttyS2",
        "/dev/ttyS3",
        "/dev/console",
    ] {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(port) {
            for l in &lines {
                let _ = writeln!(f, "{l}");
            }
            println!("wrote to {port}");
        }
    }
    std::process::exit(1)
}
