//! The guest agent: the `/init` of every validation guest.
//!
//! It mounts what BPF needs, says hello on the result port, has every object
//! of the job validated, sends one record per object and powers off.
//!
//! Validation runs in a worker process, never in PID 1 (a crash there would
//! panic the kernel). One worker validates the objects in turn, so process
//! start-up and libbpf's kernel feature probes are paid once per guest, not
//! once per object. A worker that crashes or hangs costs only the object in
//! flight: it is killed and a fresh worker takes the rest.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bpfcompat_engine::guest::init::{begin, power_off, uptime_ms};
use bpfcompat_engine::wire::{
    Fault, JOB_FILE, Job, JobObject, ObjectReport, Record, WorkerRequest,
};

use crate::{Options, validate_object};

/// Argument that makes the binary a validation worker.
const WORKER_ARG: &str = "__bpfcompat-worker";

/// The agent binary's `main`: as PID 1 it runs the job; with [`WORKER_ARG`]
/// it validates the objects it is sent; anything else is a usage error.
pub fn main() -> ExitCode {
    if std::process::id() == 1 {
        run_as_init();
    }
    if std::env::args().nth(1).as_deref() == Some(WORKER_ARG) {
        return run_worker();
    }
    eprintln!("bpfcompat-agent runs inside bpfcompat's guests; run `cargo bpfcompat test` instead");
    ExitCode::from(1)
}

/// Runs the job and powers off; never returns.
fn run_as_init() -> ! {
    let mut port = begin("bpfcompat agent");
    match Job::read(JOB_FILE) {
        Ok(job) => {
            let mut worker = None;
            for obj in &job.objects {
                let report = validate_in_worker(&mut worker, obj, &job, &Worker::spawn);
                let _ = port.send(&Record::Object(Box::new(report)));
            }
            if let Some(w) = worker {
                w.stop();
            }
            let kernel = std::env::var("BPFCOMPAT_KERNEL").unwrap_or_default();
            if !job.commands.is_empty() {
                let root = Path::new(bpfcompat_engine::wire::JOB_ROOT);
                for w in bpfcompat_engine::guest::job_root::install(root, Path::new("/")) {
                    eprintln!("bpfcompat agent: {w}");
                }
            }
            for cmd in &job.commands {
                let _ = port.send(&Record::Command(Box::new(crate::command::run_command(
                    cmd, &kernel,
                ))));
            }
            let _ = port.send(&Record::Done {
                uptime_ms: uptime_ms(),
            });
        }
        Err(e) => {
            let _ = port.send(&Record::AgentError {
                message: format!("cannot read {JOB_FILE}: {e}"),
            });
        }
    }
    power_off();
}

/// A running worker: its stdin for requests, its report lines on a channel.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Worker {
    /// This binary as a worker.
    fn spawn() -> std::io::Result<Worker> {
        let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
        let mut cmd = Command::new(exe);
        cmd.arg(WORKER_ARG);
        Worker::spawn_command(cmd)
    }

    fn spawn_command(mut cmd: Command) -> std::io::Result<Worker> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines,
        })
    }

    fn kill(mut self) -> String {
        bpfcompat_engine::process_group::kill(&self.child);
        self.child.wait().map(|s| s.to_string()).unwrap_or_default()
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Validates one object in the worker, starting one (with `spawn`) when
/// there is none and discarding it when it dies or hangs.
fn validate_in_worker(
    slot: &mut Option<Worker>,
    obj: &JobObject,
    job: &Job,
    spawn: &dyn Fn() -> std::io::Result<Worker>,
) -> ObjectReport {
    let started = Instant::now();
    let faulted = |fault: Fault| ObjectReport {
        object: obj.name.clone(),
        fault: Some(fault),
        duration_ms: started.elapsed().as_millis() as u64,
        ..ObjectReport::default()
    };
    let mut worker = match slot.take() {
        Some(w) => w,
        None => match spawn() {
            Ok(w) => w,
            Err(e) => {
                return faulted(Fault::Crashed {
                    detail: format!("cannot start the validator: {e}"),
                });
            }
        },
    };
    let kernel = std::env::var("BPFCOMPAT_KERNEL").unwrap_or_default();
    let release = bpfcompat_engine::guest::init::kernel_release();
    let request = WorkerRequest {
        name: obj.name.clone(),
        path: obj.path.clone(),
        mode: job.mode,
        fixups: obj.fixups.for_kernel(&kernel, &release),
        btf: obj.btf.get(&kernel).cloned(),
        trigger: obj.trigger.clone().or_else(|| job.trigger.clone()),
        strict_maps: job.strict_maps,
    };
    let line = serde_json::to_string(&request).expect("requests serialize") + "\n";
    if let Err(e) = worker
        .stdin
        .write_all(line.as_bytes())
        .and_then(|()| worker.stdin.flush())
    {
        let status = worker.kill();
        return faulted(Fault::Crashed {
            detail: format!("the validator is gone ({e}; {status})"),
        });
    }
    match worker
        .lines
        .recv_timeout(Duration::from_secs(job.object_timeout_secs))
    {
        Ok(line) => match serde_json::from_str::<ObjectReport>(&line) {
            Ok(report) => {
                *slot = Some(worker);
                report
            }
            Err(e) => {
                let status = worker.kill();
                faulted(Fault::Crashed {
                    detail: format!("unreadable report ({e}; {status}): {}", clip(&line)),
                })
            }
        },
        Err(RecvTimeoutError::Timeout) => {
            worker.kill();
            faulted(Fault::Timeout {
                after_secs: job.object_timeout_secs,
            })
        }
        Err(RecvTimeoutError::Disconnected) => {
            let status = worker.kill();
            faulted(Fault::Crashed {
                detail: format!("the validator died while validating this object ({status})"),
            })
        }
    }
}

/// Test hook: `BPFCOMPAT_AGENT_FAULT=crash:NAME`, `hang:NAME` or
/// `panic:NAME` (from the guest's kernel command line) makes the worker die,
/// hang or crash the kernel on object NAME, so the isolation above and the
/// host's panic handling can be tested in a real guest.
fn inject_fault(object: &str) {
    let Ok(spec) = std::env::var("BPFCOMPAT_AGENT_FAULT") else {
        return;
    };
    match spec.split_once(':') {
        Some(("crash", name)) if name == object => std::process::abort(),
        Some(("panic", name)) if name == object => {
            let _ = std::fs::write("/proc/sysrq-trigger", "c");
        }
        Some(("hang", name)) if name == object => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        _ => {}
    }
}

fn clip(s: &str) -> String {
    s.chars().take(400).collect()
}

/// The worker: one request per stdin line, one report per stdout line.
fn run_worker() -> ExitCode {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines().map_while(Result::ok) {
        let Ok(req) = serde_json::from_str::<WorkerRequest>(&line) else {
            eprintln!("bpfcompat worker: bad request: {}", clip(&line));
            return ExitCode::from(2);
        };
        inject_fault(&req.name);
        let opts = Options {
            mode: req.mode,
            fixups: req.fixups,
            btf_custom_path: req.btf.map(Into::into),
            trigger: req.trigger,
            strict_maps: req.strict_maps,
            // A throw-away guest: the workload must pass every program.
            site: crate::Site::Guest,
            // The host ends a guest by killing it.
            cancel: Default::default(),
        };
        let report = validate_object(&req.name, Path::new(&req.path), &opts);
        let out = serde_json::to_string(&report).expect("reports serialize") + "\n";
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_engine::wire::{Fixups, Mode};

    /// A worker played by a shell script: it answers each request line by
    /// `script`'s rules. `$n` counts requests across workers of one test.
    fn fake(script: &'static str) -> impl Fn() -> std::io::Result<Worker> {
        move || {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script]);
            Worker::spawn_command(cmd)
        }
    }

    fn object(name: &str) -> JobObject {
        JobObject {
            name: name.into(),
            path: format!("/job/objects/{name}.bpf.o"),
            fixups: Fixups::default(),
            btf: Default::default(),
            trigger: None,
        }
    }

    const ANSWER: &str = r#"while read -r line; do
        name=$(echo "$line" | sed 's/.*"name":"\([^"]*\)".*/\1/')
        case "$name" in
          crash) exit 3 ;;
          hang) sleep 600 ;;
          *) echo "{\"object\":\"$name\",\"object_error\":null,\"maps\":[],\"programs\":[],\"fault\":null,\"duration_ms\":1}" ;;
        esac
      done"#;

    #[test]
    fn one_worker_serves_many_objects_and_a_crash_or_hang_costs_one() {
        let job = Job::new(Mode::Load, 1);
        let spawn = fake(ANSWER);
        let mut slot = None;
        let a = validate_in_worker(&mut slot, &object("a"), &job, &spawn);
        assert_eq!((a.object.as_str(), &a.fault), ("a", &None));
        let first = slot.as_ref().map(|w| w.child.id());
        let b = validate_in_worker(&mut slot, &object("b"), &job, &spawn);
        assert_eq!(b.fault, None);
        assert_eq!(
            slot.as_ref().map(|w| w.child.id()),
            first,
            "the same worker"
        );

        let crash = validate_in_worker(&mut slot, &object("crash"), &job, &spawn);
        assert!(
            matches!(&crash.fault, Some(Fault::Crashed { detail }) if detail.contains("died")),
            "{:?}",
            crash.fault
        );
        assert!(slot.is_none(), "a crashed worker is discarded");
        let c = validate_in_worker(&mut slot, &object("c"), &job, &spawn);
        assert_eq!(c.fault, None, "a fresh worker takes the next object");

        let hang = validate_in_worker(&mut slot, &object("hang"), &job, &spawn);
        assert_eq!(hang.fault, Some(Fault::Timeout { after_secs: 1 }));
        let d = validate_in_worker(&mut slot, &object("d"), &job, &spawn);
        assert_eq!(d.fault, None);
    }

    #[test]
    fn a_worker_that_cannot_start_or_answers_garbage_is_a_crash() {
        let job = Job::new(Mode::Load, 5);
        let missing = || -> std::io::Result<Worker> {
            Worker::spawn_command(Command::new("/nonexistent/worker"))
        };
        let r = validate_in_worker(&mut None, &object("a"), &job, &missing);
        assert!(
            matches!(r.fault, Some(Fault::Crashed { .. })),
            "{:?}",
            r.fault
        );
        let garbage = fake("read -r line; echo not-json; sleep 600");
        let r = validate_in_worker(&mut None, &object("a"), &job, &garbage);
        assert!(
            matches!(&r.fault, Some(Fault::Crashed { detail }) if detail.contains("unreadable report")),
            "{:?}",
            r.fault
        );
    }
}
