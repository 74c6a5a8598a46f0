//! Inside the guest: run the requested test bodies, each in a process of
//! its own under its timeout (a fresh run of this binary in PID and mount
//! namespaces of its own, so it holds nothing of the init's, the key its
//! records are signed with included), report, power off.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use serde::{Deserialize, Serialize};

use super::{CONSOLE_MARK, KernelTest, Outcome, registered};
use crate::guest::init::{ResultPort, hello, power_off, prepare, uptime_ms};
use crate::guest::isolate;
use crate::guest::probe;
use crate::guest::trace::{self, Traced};
use crate::wire::trace::{Call, Trace};
use crate::wire::{JOB_FILE, JOB_PROGRAM, JOB_ROOT, Job, Record};

/// Set for a test binary that a restored guest's `/init` runs in its
/// place: the guest is already set up.
const TAKEN_OVER: &str = "BPFCOMPAT_TAKEN_OVER";

/// Set for the run of this binary that runs one test body: its name.
pub(super) const RUN_TEST: &str = "BPFCOMPAT_RUN_TEST";
/// The descriptor that run writes its [`BodyResult`] to.
const RESULT_FD: &str = "BPFCOMPAT_RESULT_FD";

/// What a test body's process tells the init.
#[derive(Serialize, Deserialize)]
struct BodyResult {
    passed: bool,
    message: Option<String>,
}

/// Runs the test bodies the job names, reports each, powers off.
pub(crate) fn run() -> ! {
    let mut port = if std::env::var_os(TAKEN_OVER).is_some() {
        ResultPort::open().unwrap_or_else(|e| {
            eprintln!("bpfcompat: cannot open the result port: {e}");
            power_off()
        })
    } else {
        let mut port = prepare("bpfcompat");
        if Path::new(JOB_PROGRAM).exists() {
            // A restored machine's init is the build that saved it; the
            // job brings this build, which runs as PID 1 in its place and
            // says the hello (the hello's key is the sender's alone).
            let e = Command::new(JOB_PROGRAM).env(TAKEN_OVER, "1").exec();
            let _ = port.send(&Record::AgentError {
                message: format!("cannot run the test binary {JOB_PROGRAM}: {e}"),
            });
            power_off();
        }
        port
    };
    hello(&mut port);
    let wanted = match Job::read(JOB_FILE) {
        Ok(job) => job.tests,
        Err(message) => {
            let _ = port.send(&Record::AgentError {
                message: format!("cannot read {JOB_FILE}: {message}"),
            });
            power_off();
        }
    };
    // Shipped binaries find their libraries where the loader looks.
    for w in crate::guest::job_root::install(Path::new(JOB_ROOT), Path::new("/")) {
        eprintln!("bpfcompat: {w}");
    }
    let tests = registered();
    for name in &wanted {
        let started = Instant::now();
        let (passed, message, trace) = match tests.iter().find(|t| t.name == name) {
            None => (
                false,
                Some(format!("no test `{name}` in this binary")),
                None,
            ),
            Some(t) => {
                // The host cuts the console at these lines: each test's own
                // part is its evidence.
                eprintln!("{CONSOLE_MARK}{name}");
                let (result, mut trace) = in_child(t);
                probe_refusals(&mut trace);
                let trace = Some(Box::new(trace));
                match result {
                    Ok(r) => (r.passed, r.message, trace),
                    Err(failed) => (false, Some(failed.to_string()), trace),
                }
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let _ = port.send(&Record::Test {
            name: name.clone(),
            passed,
            message,
            duration_ms,
            trace,
        });
    }
    let _ = port.send(&Record::Done {
        uptime_ms: uptime_ms(),
    });
    power_off();
}

/// The run of this binary that runs one test body (see [`RUN_TEST`]):
/// writes its result and exits.
pub(super) fn run_body(name: &str) -> ! {
    let result = match registered().into_iter().find(|t| t.name == name) {
        None => BodyResult {
            passed: false,
            message: Some(format!("no test `{name}` in this binary")),
        },
        Some(t) => match catch_unwind(AssertUnwindSafe(t.run)) {
            Ok(Outcome::Pass) => BodyResult {
                passed: true,
                message: None,
            },
            Ok(Outcome::Fail(e)) => BodyResult {
                passed: false,
                message: Some(e),
            },
            Err(panic) => BodyResult {
                passed: false,
                message: Some(format!("panicked: {}", panic_message(&*panic))),
            },
        },
    };
    let fd = std::env::var(RESULT_FD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    if let Some(fd) = fd {
        // SAFETY: the descriptor the init made for this process alone.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let line = serde_json::to_vec(&result).expect("results serialize");
        let _ = std::io::Write::write_all(&mut f, &line);
    }
    std::process::exit(0)
}

/// Runs one test body in a process of its own (this binary again, in its
/// own namespaces, its `bpf()` calls traced), so that a hang can be killed
/// at the test's `timeout` and a crash ends only that test; its result, or
/// why it has none, and what it asked the kernel.
fn in_child(t: &KernelTest) -> (Result<BodyResult, NoResult>, Trace) {
    let started = Instant::now();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return (
                Err(NoResult::Setup("find this binary", e)),
                Trace::default(),
            );
        }
    };
    // The result pipe's write end stays open across exec (no CLOEXEC).
    let pipes = nix::unistd::pipe().and_then(|(read, write)| {
        nix::fcntl::fcntl(
            &read,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        Ok((read, write, nix::unistd::dup(std::io::stderr())?))
    });
    let (read, write, console) = match pipes {
        Ok(p) => p,
        Err(e) => {
            let e = std::io::Error::from(e);
            return (Err(NoResult::Setup("make a pipe", e)), Trace::default());
        }
    };
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.push((RUN_TEST.into(), t.name.into()));
    env.push((RESULT_FD.into(), write.as_raw_fd().to_string()));
    let argv = [exe.to_string_lossy().into_owned()];
    let spawned = Traced::start(
        &isolate::Spawn {
            argv: &argv,
            env: &env,
            output: &console,
        },
        trace::Options {
            trace: true,
            loaded: None,
        },
    );
    drop(write);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return (Err(NoResult::Setup("start the test", e)), Trace::default()),
    };
    let reader = read_result(read);
    let limit = Duration::from_secs(match t.timeout_secs {
        0 => super::DEFAULT_TIMEOUT_SECS,
        n => n,
    });
    let ended = child.wait(limit.saturating_sub(started.elapsed()));
    let result = match ended {
        None => {
            child.kill();
            Err(NoResult::TimedOut(limit))
        }
        Some(WaitStatus::Exited(_, code)) => reader
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .flatten()
            .ok_or(NoResult::Exited(code)),
        Some(WaitStatus::Signaled(_, signal, _)) => Err(NoResult::Killed(signal)),
        Some(other) => Err(NoResult::Lost(format!("{other:?}"))),
    };
    (result, child.finish())
}

/// Why a test body gave no result.
#[derive(Debug)]
enum NoResult {
    /// A step before the body ran failed.
    Setup(&'static str, std::io::Error),
    /// It ran past its timeout and was killed.
    TimedOut(Duration),
    /// It exited without reporting.
    Exited(i32),
    /// A signal ended it.
    Killed(nix::sys::signal::Signal),
    /// It ended in a way no test process ends.
    Lost(String),
}

impl std::fmt::Display for NoResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoResult::Setup(step, e) => write!(f, "cannot {step}: {e}"),
            NoResult::TimedOut(limit) => {
                let secs = limit.as_secs();
                write!(
                    f,
                    "timed out: still running after {secs} s (timeout = \"{secs}s\"); killed"
                )
            }
            NoResult::Exited(code) => {
                write!(f, "the test process exited with {code} before reporting")
            }
            NoResult::Killed(signal) => write!(f, "the test process was killed by {signal}"),
            NoResult::Lost(how) => write!(f, "lost the test process: {how}"),
        }
    }
}

/// For each map or program the kernel refused the test, the kernel's own
/// probes of that type and of the helpers the program calls.
fn probe_refusals(trace: &mut Trace) {
    let names_taken = trace.names_taken();
    for c in &mut trace.calls {
        if c.result.errno().is_none() || c.call.is_library_probe(names_taken) {
            continue;
        }
        match &mut c.call {
            Call::MapCreate(m) => m.type_supported = probe::map_type(m.map_type),
            Call::ProgLoad(p) => {
                p.type_supported = probe::prog_type(p.prog_type);
                p.unsupported_helpers = probe::unsupported_helpers(p.prog_type, &p.helpers);
            }
            _ => {}
        }
    }
}

/// Reads the body's result on a thread, bounded (a body's process cannot
/// hand the init an endless line).
fn read_result(read: OwnedFd) -> std::sync::mpsc::Receiver<Option<BodyResult>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::fs::File::from(read)
            .take(1 << 20)
            .read_to_end(&mut bytes);
        let _ = tx.send(serde_json::from_slice(&bytes).ok());
    });
    rx
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
