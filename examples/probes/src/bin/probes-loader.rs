//! The example's loader: opens, loads and attaches every skeleton, like the
//! real program would, and says which worked. Exit 0 when all did.
//!
//! `probes-loader [--only NAME]...` limits it to some programs.

use std::mem::MaybeUninit;
use std::process::ExitCode;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use probes::{bounded_loop, fentry, ringbuf, task_state, task_state_guarded};

macro_rules! try_skeleton {
    ($module:ident, $builder:ident) => {{
        let mut storage = MaybeUninit::uninit();
        let result = $module::$builder::default()
            .open(&mut storage)
            .and_then(|open| open.load())
            .and_then(|mut skel| skel.attach().map(|()| skel));
        result.map(drop)
    }};
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only: Vec<&str> = args.chunks(2).filter(|c| c[0] == "--only" && c.len() == 2).map(|c| c[1].as_str()).collect();
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let mut failed = 0;
    let mut report = |name: &str, result: libbpf_rs::Result<()>| match result {
        Ok(()) => println!("ok   {name}"),
        Err(e) => {
            println!("FAIL {name}: {e}");
            failed += 1;
        }
    };
    if wanted("ringbuf") {
        report("ringbuf", try_skeleton!(ringbuf, RingbufSkelBuilder));
    }
    if wanted("bounded_loop") {
        report("bounded_loop", try_skeleton!(bounded_loop, BoundedLoopSkelBuilder));
    }
    if wanted("fentry") {
        report("fentry", try_skeleton!(fentry, FentrySkelBuilder));
    }
    if wanted("task_state") {
        report("task_state", try_skeleton!(task_state, TaskStateSkelBuilder));
    }
    if wanted("task_state_guarded") {
        report("task_state_guarded", try_skeleton!(task_state_guarded, TaskStateGuardedSkelBuilder));
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
