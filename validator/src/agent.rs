//! The guest agent: the `/init` of every validation guest.
//!
//! It mounts what BPF needs, says hello on the result port, validates each
//! object of the job in a child process of its own (so a crash or hang costs
//! one object, not the guest), sends one record per object and powers off.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bpfcompat::guest::init::{ResultPort, kernel_release, mount_all, power_off, uptime_ms};
use bpfcompat::guest::{JOB_FILE, Job, JobObject};
use bpfcompat::protocol::{Fault, ObjectReport, Record};

use crate::{Options, validate_object};

/// Argument that makes the binary validate one object and print its report.
const CHILD_ARG: &str = "__bpfcompat-validate";

/// The agent binary's `main`: as PID 1 it runs the job; with [`CHILD_ARG`]
/// it validates one object; anything else is a usage error.
pub fn main() -> ExitCode {
    if std::process::id() == 1 {
        run_as_init();
    }
    if let Some(code) = run_child_if_requested() {
        return code;
    }
    eprintln!("bpfcompat-agent runs inside bpfcompat's guests; run `cargo bpfcompat test` instead");
    ExitCode::from(1)
}

/// Runs the job and powers off; never returns.
fn run_as_init() -> ! {
    let warnings = mount_all();
    // Old kernels account BPF memory against RLIMIT_MEMLOCK.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    );
    let mut port = match ResultPort::open() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bpfcompat agent: cannot open the result port: {e}");
            power_off();
        }
    };
    for w in &warnings {
        eprintln!("bpfcompat agent: {w}");
    }
    let _ = port.send(&Record::Hello {
        kernel_release: kernel_release(),
        kernel_btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
        uptime_ms: uptime_ms(),
    });
    match std::fs::read(JOB_FILE)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Job>(&b).map_err(|e| e.to_string()))
    {
        Ok(job) => {
            for obj in &job.objects {
                let report = run_child(obj, &job);
                let _ = port.send(&Record::Object(report));
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

/// Validates one object in a child process, with the job's time limit.
fn run_child(obj: &JobObject, job: &Job) -> ObjectReport {
    let started = Instant::now();
    let faulted = |fault: Fault| ObjectReport {
        object: obj.name.clone(),
        fault: Some(fault),
        duration_ms: started.elapsed().as_millis() as u64,
        ..ObjectReport::default()
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut child = match Command::new(exe)
        .arg(CHILD_ARG)
        .arg(&obj.name)
        .arg(&obj.path)
        .arg(if job.attach { "attach" } else { "load" })
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return faulted(Fault::Crashed {
                detail: format!("cannot start the validator: {e}"),
            });
        }
    };
    // Read stdout on a thread so a large report cannot block the child.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let limit = Duration::from_secs(job.object_timeout_secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return faulted(Fault::Timeout {
                    after_secs: job.object_timeout_secs,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                return faulted(Fault::Crashed {
                    detail: e.to_string(),
                });
            }
        }
    };
    let out = reader.join().unwrap_or_default();
    match serde_json::from_str::<ObjectReport>(out.trim()) {
        Ok(report) if status.success() => report,
        _ => faulted(Fault::Crashed {
            detail: format!(
                "validator exited with {status}; output: {}",
                out.chars().take(400).collect::<String>()
            ),
        }),
    }
}

/// In the child process (argument [`CHILD_ARG`]): validate, print the report
/// as JSON on stdout, exit.
fn run_child_if_requested() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_ARG) || args.len() != 5 {
        return None;
    }
    let opts = Options {
        attach: args[4] == "attach",
    };
    let report = validate_object(&args[2], Path::new(&args[3]), &opts);
    println!(
        "{}",
        serde_json::to_string(&report).expect("reports serialize")
    );
    Some(ExitCode::SUCCESS)
}
