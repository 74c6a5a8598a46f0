//! One guest's QEMU process, from spawn to exit.
//!
//! The process is ours alone: its own process group, a parent-death signal so
//! it dies with us even on SIGKILL, and a guard that kills the whole group
//! (a wrapper script's children too) and reaps it on every path out of
//! [`boot`]. The console is drained on a thread and watched for panics, which
//! end the boot at once instead of at the timeout.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BootSpec, qemu_args};
use crate::cancel::Cancel;
use crate::errors::VmError;
use crate::wire::{MalformedRecord, Record, parse_records};

/// How a boot ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// The guest powered off and QEMU exited normally.
    PoweredOff,
    /// The console showed a kernel panic.
    Panic {
        /// The console line that said so.
        line: String,
    },
    /// The guest ran past its time limit and was killed.
    Timeout {
        /// The limit.
        after: Duration,
    },
    /// No sign of life within the liveness window (a hung accelerator).
    NoProgress {
        /// The window.
        after: Duration,
    },
    /// The run was cancelled (a signal) and the guest stopped.
    Interrupted {
        /// The signal number.
        signal: usize,
    },
    /// QEMU itself failed (bad argument, missing file, crash).
    QemuFailed {
        /// Exit status.
        status: String,
        /// What QEMU printed on stderr.
        stderr: String,
    },
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::PoweredOff => write!(f, "guest powered off"),
            Exit::Panic { line } => write!(f, "kernel panic ({line})"),
            Exit::Timeout { after } => write!(f, "no result within {}s", after.as_secs()),
            Exit::NoProgress { after } => write!(f, "no progress within {}s", after.as_secs()),
            Exit::Interrupted { signal } => {
                write!(f, "stopped by {}", crate::classify::signal_name(*signal))
            }
            Exit::QemuFailed { status, stderr } => write!(
                f,
                "QEMU failed ({status}): {}",
                stderr.lines().next().unwrap_or("").trim()
            ),
        }
    }
}

/// Everything one boot produced.
#[derive(Debug, Clone)]
pub struct Boot {
    /// How it ended.
    pub exit: Exit,
    /// The kernel console (first serial port), lossily decoded.
    pub console: String,
    /// Records from the result port, in order.
    pub records: Vec<Record>,
    /// Result-port lines that claimed to be records but did not parse.
    pub malformed: Vec<MalformedRecord>,
    /// The command line, for evidence.
    pub argv: Vec<String>,
    /// Host milliseconds from spawn until the agent said hello.
    pub agent_started_ms: Option<u64>,
    /// Host milliseconds from spawn until the agent said done.
    pub done_ms: Option<u64>,
    /// Host milliseconds from spawn until QEMU exited.
    pub total_ms: u64,
}

/// Console lines that mean the guest kernel is gone.
const PANIC_MARKERS: &[&str] = &["Kernel panic - not syncing", "---[ end Kernel panic"];

/// Finds the QEMU binary (`BPFCOMPAT_QEMU`, else `qemu-system-x86_64` on PATH).
pub fn find_qemu() -> Result<PathBuf, VmError> {
    let name = std::env::var("BPFCOMPAT_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let candidate = Path::new(&name);
    if candidate.components().count() > 1 {
        return if candidate.is_file() {
            Ok(candidate.to_path_buf())
        } else {
            Err(VmError::QemuMissing { binary: name })
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .ok_or(VmError::QemuMissing { binary: name })
}

/// Kills the child's whole process group and reaps the child on drop,
/// whatever path left [`boot`]. The group goes even when the child itself
/// has exited: a wrapper's QEMU may still hold the console pipe.
pub(super) struct Guard(pub(super) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        crate::process_group::kill(&self.0);
        let _ = self.0.wait();
    }
}

/// Boots one guest and waits for it to end. `liveness`: give up with
/// [`Exit::NoProgress`] if the agent has not said hello by then; `cancel`
/// stops the guest with [`Exit::Interrupted`].
pub fn boot(
    qemu: &Path,
    spec: &BootSpec,
    timeout: Duration,
    liveness: Option<Duration>,
    cancel: &Cancel,
) -> Result<Boot, VmError> {
    let args = qemu_args(spec);
    let argv: Vec<String> = std::iter::once(qemu.as_os_str().to_owned())
        .chain(args.iter().cloned())
        .map(|s: OsString| s.to_string_lossy().into_owned())
        .collect();
    private_empty_file(&spec.results).map_err(|source| VmError::Io {
        context: format!("cannot create the result file {}", spec.results.display()),
        source,
    })?;
    tracing::debug!("starting {}", argv.join(" "));
    let started = Instant::now();
    let mut child = spawn(qemu, &args)?;
    let drains = Drains::start(&mut child.0);
    let limits = Limits {
        timeout,
        liveness,
        cancel,
    };
    let (exit, mut marks) = watch(&mut child, &spec.results, &drains, &limits, started);
    drop(child); // kill the group (if still running) and reap
    let (exit, console) = drains.finish(exit);
    let (records, malformed) = read_records(&spec.results);
    tracing::debug!(
        "guest ended after {} ms: {exit:?}; {} records, {} malformed",
        started.elapsed().as_millis(),
        records.len(),
        malformed.len()
    );
    for r in &records {
        tracing::trace!("record: {}", r.to_line());
    }
    if marks.agent_started_ms.is_none() && records.iter().any(|r| matches!(r, Record::Hello { .. }))
    {
        marks.agent_started_ms = Some(started.elapsed().as_millis() as u64);
    }
    Ok(Boot {
        exit,
        console,
        records,
        malformed,
        argv,
        agent_started_ms: marks.agent_started_ms,
        done_ms: marks.done_ms,
        total_ms: started.elapsed().as_millis() as u64,
    })
}

/// Starts QEMU in its own process group, to die with this process.
pub(super) fn spawn(qemu: &Path, args: &[OsString]) -> Result<Guard, VmError> {
    let mut cmd = Command::new(qemu);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it makes the kernel kill QEMU if
    // this process dies without running any destructor.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().map(Guard).map_err(|source| VmError::Io {
        context: format!("cannot start {}", qemu.display()),
        source,
    })
}

/// The threads that drain QEMU's console (watching it for panics) and stderr.
pub(super) struct Drains {
    console: Arc<Mutex<Vec<u8>>>,
    panicked: Arc<Mutex<Option<String>>>,
    console_thread: std::thread::JoinHandle<()>,
    stderr_thread: std::thread::JoinHandle<String>,
}

impl Drains {
    pub(super) fn start(child: &mut Child) -> Drains {
        let console = Arc::new(Mutex::new(Vec::<u8>::new()));
        let panicked = Arc::new(Mutex::new(None::<String>));
        let stdout = child.stdout.take().expect("piped");
        let console_thread = {
            let (console, panicked) = (console.clone(), panicked.clone());
            std::thread::spawn(move || drain_console(stdout, &console, &panicked))
        };
        let mut stderr = child.stderr.take().expect("piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Drains {
            console,
            panicked,
            console_thread,
            stderr_thread,
        }
    }

    pub(super) fn panic_line(&self) -> Option<String> {
        self.panicked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After QEMU is gone: the final exit and the whole console.
    pub(super) fn finish(self, exit: Exit) -> (Exit, String) {
        let _ = self.console_thread.join();
        let stderr_text = self.stderr_thread.join().unwrap_or_default();
        // With panic=-1, QEMU can exit before the console thread read the
        // panic line: decide again now that the whole console has been drained.
        let late_panic = self
            .panicked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let exit = match (exit, late_panic) {
            (Exit::PoweredOff | Exit::QemuFailed { .. }, Some(line)) => Exit::Panic { line },
            (Exit::QemuFailed { status, .. }, None) => Exit::QemuFailed {
                status,
                stderr: stderr_text,
            },
            (other, _) => other,
        };
        let console =
            String::from_utf8_lossy(&self.console.lock().unwrap_or_else(|e| e.into_inner()))
                .into_owned();
        (exit, console)
    }
}

/// When a boot is given up.
struct Limits<'a> {
    timeout: Duration,
    liveness: Option<Duration>,
    cancel: &'a Cancel,
}

/// Host milliseconds at which the guest's init said hello and done.
#[derive(Default)]
struct Marks {
    agent_started_ms: Option<u64>,
    done_ms: Option<u64>,
}

/// Polls QEMU until it exits or a limit ends the boot.
fn watch(
    child: &mut Guard,
    results: &Path,
    drains: &Drains,
    limits: &Limits,
    started: Instant,
) -> (Exit, Marks) {
    let mut marks = Marks::default();
    let exit = loop {
        let elapsed = started.elapsed();
        if let Ok(Some(status)) = child.0.try_wait() {
            break if status.success() {
                Exit::PoweredOff
            } else {
                Exit::QemuFailed {
                    status: status.to_string(),
                    stderr: String::new(),
                }
            };
        }
        if marks.agent_started_ms.is_none() || marks.done_ms.is_none() {
            let (records, _) = read_records(results);
            let ms = Some(elapsed.as_millis() as u64);
            if marks.agent_started_ms.is_none()
                && records.iter().any(|r| matches!(r, Record::Hello { .. }))
            {
                marks.agent_started_ms = ms;
            }
            if marks.done_ms.is_none() && records.iter().any(|r| matches!(r, Record::Done { .. })) {
                marks.done_ms = ms;
            }
        }
        if let Some(line) = drains.panic_line() {
            // panic=-1 makes QEMU exit by itself; give it a moment to flush.
            std::thread::sleep(Duration::from_millis(300));
            break Exit::Panic { line };
        }
        if let Some(window) = limits.liveness
            && marks.agent_started_ms.is_none()
            && elapsed > window
        {
            break Exit::NoProgress { after: window };
        }
        if elapsed > limits.timeout {
            break Exit::Timeout {
                after: limits.timeout,
            };
        }
        if let Some(signal) = limits.cancel.signal() {
            break Exit::Interrupted { signal };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (exit, marks)
}

/// An empty file only this user can read, whatever the umask: QEMU opens
/// it to write the guest's records and keeps its mode.
pub(super) fn private_empty_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let _ = std::fs::remove_file(path);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

fn drain_console(mut out: impl Read, console: &Mutex<Vec<u8>>, panicked: &Mutex<Option<String>>) {
    let mut buf = [0u8; 8192];
    let mut line = Vec::new();
    while let Ok(n) = out.read(&mut buf) {
        if n == 0 {
            break;
        }
        console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&buf[..n]);
        for &b in &buf[..n] {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            // A marker need not start a line (the BIOS leaves text without a newline).
            let text = String::from_utf8_lossy(&line);
            if PANIC_MARKERS.iter().any(|m| text.contains(m)) {
                panicked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| text.trim().to_string());
            }
            line.clear();
        }
    }
}

pub(super) fn read_records(path: &Path) -> (Vec<Record>, Vec<MalformedRecord>) {
    std::fs::read(path)
        .map(|b| parse_records(&String::from_utf8_lossy(&b)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for QEMU (a shell script) and a spec whose files live in `dir`.
    fn fake_qemu(dir: &Path, script: &str) -> (PathBuf, BootSpec) {
        use std::os::unix::fs::PermissionsExt;
        let wrapper = dir.join("qemu-wrapper");
        std::fs::write(&wrapper, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = BootSpec {
            kernel: dir.join("k"),
            initrd: dir.join("i"),
            results: dir.join("results"),
            accel: super::super::Accel::Tcg,
            memory_mib: 64,
            cpus: 1,
            extra_cmdline: Vec::new(),
            job_disk: None,
            monitor: None,
            incoming: None,
        };
        (wrapper, spec)
    }

    /// A "QEMU" that forks a child holding the console pipe and never ends:
    /// the timeout must take the whole group, and quickly.
    #[test]
    fn timeout_kills_a_forking_wrapper_and_its_children() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!("sleep 600 &\necho $! > {}\nwait", marker.display());
        let (wrapper, spec) = fake_qemu(dir.path(), &script);
        let started = Instant::now();
        let b = boot(
            &wrapper,
            &spec,
            Duration::from_secs(1),
            None,
            &Cancel::new(),
        )
        .unwrap();
        assert_eq!(
            b.exit,
            Exit::Timeout {
                after: Duration::from_secs(1)
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped by init or gone: either way no longer running `sleep`.
        std::thread::sleep(Duration::from_millis(200));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "the wrapper's child {pid} outlived the timeout");
        let mode = std::fs::metadata(&spec.results)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn cancel_stops_a_guest() {
        let dir = tempfile::tempdir().unwrap();
        let (wrapper, spec) = fake_qemu(dir.path(), "exec sleep 600");
        let cancel = Cancel::new();
        let c = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c.cancel(2);
        });
        let started = Instant::now();
        let b = boot(&wrapper, &spec, Duration::from_secs(600), None, &cancel).unwrap();
        assert_eq!(b.exit, Exit::Interrupted { signal: 2 });
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
