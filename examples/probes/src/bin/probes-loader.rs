//! The example's loader: opens, loads and attaches every skeleton, like the
//! real program would, and says which worked. Exit 0 when all did.
//!
//! `probes-loader [--only NAME]...` limits it to some programs.
//! `--daemon` runs as most eBPF tools do: once everything is attached it
//! prints `ready` and keeps the programs attached until Ctrl-C (SIGINT).
//! `--quiet` keeps libbpf's messages to itself, as many tools do.

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
    if wanted("ringbuf") {
        report(
            "ringbuf",
            try_skeleton!(ringbuf, RingbufSkelBuilder, daemon),
        );
    }
    if wanted("bounded_loop") {
        report(
            "bounded_loop",
            try_skeleton!(bounded_loop, BoundedLoopSkelBuilder, daemon),
        );
    }
    if wanted("fentry") {
        report("fentry", try_skeleton!(fentry, FentrySkelBuilder, daemon));
    }
    if wanted("task_state") {
        report(
            "task_state",
            try_skeleton!(task_state, TaskStateSkelBuilder, daemon),
        );
    }
    if wanted("task_state_guarded") {
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
