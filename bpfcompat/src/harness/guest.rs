//! Inside the guest: run the requested test bodies, each in its own process
//! under its timeout, report, power off.

use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

use super::{CONSOLE_MARK, KernelTest, Outcome, registered};
use crate::guest::init::{ResultPort, begin, power_off, uptime_ms};
use crate::wire::{JOB_FILE, JOB_PROGRAM, Job, Record};

/// Set for a test binary that a restored guest's `/init` runs in its
/// place: the guest is already set up and has said hello.
const TAKEN_OVER: &str = "BPFCOMPAT_TAKEN_OVER";

/// Runs the test bodies the job names, reports each, powers off.
pub(crate) fn run() -> ! {
    let mut port = if std::env::var_os(TAKEN_OVER).is_some() {
        ResultPort::open().unwrap_or_else(|e| {
            eprintln!("bpfcompat: cannot open the result port: {e}");
            power_off()
        })
    } else {
        let mut port = begin("bpfcompat");
        if Path::new(JOB_PROGRAM).exists() {
            // A restored machine's init is the build that saved it; the
            // job brings this build, which runs as PID 1 in its place.
            let e = Command::new(JOB_PROGRAM).env(TAKEN_OVER, "1").exec();
            let _ = port.send(&Record::AgentError {
                message: format!("cannot run the test binary {JOB_PROGRAM}: {e}"),
            });
            power_off();
        }
        port
    };
    let job = std::fs::read(JOB_FILE)
        .map_err(|e| e.to_string())
        .and_then(|b| Job::parse(&b));
    let wanted = match job {
        Ok(job) => job.tests,
        Err(message) => {
            let _ = port.send(&Record::AgentError {
                message: format!("cannot read {JOB_FILE}: {message}"),
            });
            power_off();
        }
    };
    let tests = registered();
    for name in &wanted {
        let started = Instant::now();
        let (passed, message) = match tests.iter().find(|t| t.name == name) {
            None => (false, Some(format!("no test `{name}` in this binary"))),
            Some(t) => {
                // The host cuts the console at these lines: each test's own
                // part is its evidence.
                eprintln!("{CONSOLE_MARK}{name}");
                match in_child(t, &mut port) {
                    None => continue,
                    Some(failed) => (false, Some(failed)),
                }
            }
        };
        let _ = port.send(&Record::Test {
            name: name.clone(),
            passed,
            message,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    let _ = port.send(&Record::Done {
        uptime_ms: uptime_ms(),
    });
    power_off();
}

/// Runs one test body in a child process, so that a hang can be killed at
/// the test's `timeout` and a crash ends only that test. The child reports
/// its own result; `None` when it did, else why it has none.
fn in_child(t: &KernelTest, port: &mut ResultPort) -> Option<String> {
    let started = Instant::now();
    // SAFETY: PID 1 of the guest is single-threaded here; the child only
    // runs the test body, reports and exits.
    let child = match unsafe { fork() } {
        Err(e) => return Some(format!("cannot fork for the test: {e}")),
        Ok(ForkResult::Child) => {
            let (passed, message) = match catch_unwind(AssertUnwindSafe(t.run)) {
                Ok(Outcome::Pass) => (true, None),
                Ok(Outcome::Fail(e)) => (false, Some(e)),
                Err(panic) => (false, Some(format!("panicked: {}", panic_message(&*panic)))),
            };
            let sent = port.send(&Record::Test {
                name: t.name.to_string(),
                passed,
                message,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            std::process::exit(if sent.is_ok() { 0 } else { 1 });
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    let limit = Duration::from_secs(match t.timeout_secs {
        0 => super::DEFAULT_TIMEOUT_SECS,
        n => n,
    });
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if started.elapsed() > limit => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Some(format!(
                    "timed out: still running after {} s (timeout = \"{}s\"); killed",
                    limit.as_secs(),
                    limit.as_secs()
                ));
            }
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
            Ok(WaitStatus::Exited(_, 0)) => return None,
            Ok(WaitStatus::Exited(_, code)) => {
                return Some(format!(
                    "the test process exited with {code} before reporting"
                ));
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Some(format!("the test process was killed by {signal}"));
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Some(format!("lost the test process: {e}")),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
