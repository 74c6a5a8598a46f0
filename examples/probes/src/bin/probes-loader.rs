//! The example's loader: opens, loads and attaches every skeleton, like the
//! real program would, and says which worked. Exit 0 when all did.
//!
//! `probes-loader [--only NAME]...` limits it to some programs.
//! `--daemon` runs as most eBPF tools do: once everything is attached it
//! prints `ready` and keeps the programs attached until Ctrl-C (SIGINT).
//! `--quiet` keeps libbpf's messages to itself, as many tools do.
//! `--adaptive` runs as a tool made for many kernels does: each part only
//! where the kernel has what it needs (asked of the kernel's own feature
//! probes), the unguarded `task_state` never (its guarded twin instead),
//! and the ring buffer sized at run time.

use std::mem::MaybeUninit;
use std::process::ExitCode;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use probes::{bounded_loop, fentry, ringbuf, task_state, task_state_guarded};

macro_rules! try_skeleton {
    ($module:ident, $builder:ident, $keep:expr) => {{
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let result = $module::$builder::default()
            .open(storage)
            .and_then(|open| open.load())
            .and_then(|mut skel| skel.attach().map(|()| skel));
        // A daemon keeps its programs attached until it exits.
        result.map(|skel| {
            if $keep {
                std::mem::forget(skel)
            }
        })
    }};
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].as_str())
        .collect();
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let daemon = args.iter().any(|a| a == "--daemon");
    if args.iter().any(|a| a == "--quiet") {
        libbpf_rs::set_print(None);
    }
    let mut failed = 0;
    let mut report = |name: &str, result: libbpf_rs::Result<()>| match result {
        Ok(()) => println!("ok   {name}"),
        Err(e) => {
            println!("FAIL {name}: {e}");
            failed += 1;
        }
    };
    let adaptive = args.iter().any(|a| a == "--adaptive");
    let has = |need: Need| !adaptive || kernel_has(need);
    if wanted("ringbuf") && has(Need::RingBuffer) {
        let result = match adaptive {
            true => ringbuf_sized(RINGBUF_BYTES, daemon),
            false => try_skeleton!(ringbuf, RingbufSkelBuilder, daemon),
        };
        report("ringbuf", result);
    }
    if wanted("bounded_loop") && has(Need::BpfLoop) {
        report(
            "bounded_loop",
            try_skeleton!(bounded_loop, BoundedLoopSkelBuilder, daemon),
        );
    }
    if wanted("fentry") && has(Need::Fentry) {
        report("fentry", try_skeleton!(fentry, FentrySkelBuilder, daemon));
    }
    if wanted("task_state") && !adaptive {
        report(
            "task_state",
            try_skeleton!(task_state, TaskStateSkelBuilder, daemon),
        );
    }
    if wanted("task_state_guarded") && has(Need::Btf) {
        report(
            "task_state_guarded",
            try_skeleton!(task_state_guarded, TaskStateGuardedSkelBuilder, daemon),
        );
    }
    if failed > 0 {
        return ExitCode::from(1);
    }
    if daemon {
        let (stop, stopped) = std::sync::mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop.send(());
        })
        .expect("a SIGINT handler");
        println!("ready");
        let _ = stopped.recv();
        println!("detaching");
    }
    ExitCode::SUCCESS
}

/// What a part of the example needs from the kernel.
#[derive(Clone, Copy)]
enum Need {
    RingBuffer,
    BpfLoop,
    Fentry,
    Btf,
}

/// Whether the running kernel has it: its own feature probes (libbpf's).
fn kernel_has(need: Need) -> bool {
    use libbpf_rs::libbpf_sys as sys;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    let probe = |ret: i32| ret == 1;
    // SAFETY: libbpf's probes take no pointers but their options (none).
    unsafe {
        match need {
            Need::RingBuffer => probe(sys::libbpf_probe_bpf_map_type(
                sys::BPF_MAP_TYPE_RINGBUF,
                std::ptr::null(),
            )),
            Need::BpfLoop => probe(sys::libbpf_probe_bpf_helper(
                sys::BPF_PROG_TYPE_TRACEPOINT,
                sys::BPF_FUNC_loop,
                std::ptr::null(),
            )),
            Need::Fentry => {
                btf && probe(sys::libbpf_probe_bpf_prog_type(
                    sys::BPF_PROG_TYPE_TRACING,
                    std::ptr::null(),
                ))
            }
            Need::Btf => btf,
        }
    }
}

/// The ring buffer's size, chosen at run time (the object declares 4 KiB).
const RINGBUF_BYTES: u32 = 256 << 10;

/// The ring buffer skeleton with its map sized at run time.
fn ringbuf_sized(bytes: u32, keep: bool) -> libbpf_rs::Result<()> {
    let storage = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = ringbuf::RingbufSkelBuilder::default().open(storage)?;
    open.maps.events.set_max_entries(bytes)?;
    let mut skel = open.load()?;
    skel.attach()?;
    if keep {
        std::mem::forget(skel);
    }
    Ok(())
}
