//! One guest's QEMU process, from spawn to exit.
//!
//! The process is ours alone: its own process group, a parent-death signal so
//! it dies with us even on SIGKILL, and its whole group (a wrapper script's
//! children too) is killed and reaped on every path out of [`boot`]. Its
//! supervisor (see [`super::supervisor`]) watches the console for panics,
//! which end the boot at once instead of at the timeout, and the result
//! port for the agent's records as they arrive.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::supervisor::{Guest, Seen, block_on, cancelled};
use super::{BootSpec, qemu_args};
use crate::cancel::Cancel;
use crate::errors::VmError;
use crate::wire::{MalformedRecord, Record};

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
                write!(f, "stopped by {}", crate::cancel::signal_name(*signal))
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
    /// Result-port lines that claimed to be records but were not signed by
    /// the guest's init (something else in the guest wrote them): the first
    /// few.
    pub foreign: Vec<String>,
    /// How many such lines there were.
    pub foreign_count: usize,
    /// The command line, for evidence.
    pub argv: Vec<String>,
    /// Host milliseconds from spawn until the agent said hello.
    pub agent_started_ms: Option<u64>,
    /// Host milliseconds from spawn until the agent said done.
    pub done_ms: Option<u64>,
    /// Host milliseconds from spawn until QEMU exited.
    pub total_ms: u64,
}

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
    tracing::debug!("starting {}", argv.join(" "));
    let limits = Limits {
        timeout,
        liveness,
        cancel,
    };
    let (exit, mut marks, ended, total_ms) = block_on(async {
        let mut guest = Guest::spawn(qemu, &args, spec.incoming.as_deref())?;
        let mut marks = Marks::default();
        let exit = watch(&mut guest, &limits, &mut marks).await;
        let started = guest.started;
        let ended = guest.finish().await;
        Ok::<_, VmError>((exit, marks, ended, started.elapsed().as_millis() as u64))
    })??;
    // With panic=-1, QEMU can exit before the console was read to the
    // panic line: decide again now that the whole console has been drained.
    // A guest whose init finished its job (a signed `done`) and powered off
    // did not panic, whatever its console says.
    let finished = marks.done_ms.is_some() && exit == Exit::PoweredOff;
    let exit = match (exit, ended.panic) {
        (Exit::PoweredOff | Exit::QemuFailed { .. }, Some(line)) if !finished => {
            Exit::Panic { line }
        }
        (Exit::QemuFailed { status, .. }, None) => Exit::QemuFailed {
            status,
            stderr: ended.stderr,
        },
        (other, _) => other,
    };
    let results = ended.results;
    let (records, malformed) = (results.records, results.malformed);
    tracing::debug!(
        "guest ended after {total_ms} ms: {exit:?}; {} records, {} malformed",
        records.len(),
        malformed.len()
    );
    for r in &records {
        tracing::trace!("record: {}", r.to_line());
    }
    if marks.agent_started_ms.is_none() && records.iter().any(|r| matches!(r, Record::Hello { .. }))
    {
        marks.agent_started_ms = Some(total_ms);
    }
    Ok(Boot {
        exit,
        console: ended.console,
        records,
        malformed,
        foreign: results.foreign,
        foreign_count: results.foreign_count,
        argv,
        agent_started_ms: marks.agent_started_ms,
        done_ms: marks.done_ms,
        total_ms,
    })
}

/// How long QEMU has to exit after the console shows a panic (with
/// `panic=-1` a real panic ends it at once).
const PANIC_EXIT: Duration = Duration::from_secs(5);

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

/// Waits until QEMU exits or a limit ends the boot.
async fn watch(guest: &mut Guest, limits: &Limits<'_>, marks: &mut Marks) -> Exit {
    let timeout = tokio::time::sleep(limits.timeout);
    let liveness = tokio::time::sleep(limits.liveness.unwrap_or(limits.timeout));
    let stop = cancelled(limits.cancel);
    tokio::pin!(timeout, liveness, stop);
    let started = guest.started;
    let (mut exited, events) = guest.channels();
    loop {
        tokio::select! {
            status = exited.wait() => {
                return match status {
                    Ok(s) if s.success() => Exit::PoweredOff,
                    Ok(s) => Exit::QemuFailed { status: s.to_string(), stderr: String::new() },
                    Err(e) => Exit::QemuFailed { status: e.to_string(), stderr: String::new() },
                };
            }
            Some(seen) = events.recv() => {
                let ms = started.elapsed().as_millis() as u64;
                match seen {
                    Seen::Record(r) => match *r {
                        Record::Hello { .. } => {
                            marks.agent_started_ms.get_or_insert(ms);
                        }
                        Record::Done { .. } => {
                            marks.done_ms.get_or_insert(ms);
                        }
                        _ => {}
                    },
                    Seen::Panic(line) => {
                        // panic=-1 makes QEMU exit by itself at once. One that
                        // goes on running did not panic: the line was written
                        // by something in the guest (a loader on the console).
                        if tokio::time::timeout(PANIC_EXIT, exited.wait()).await.is_ok() {
                            return Exit::Panic { line };
                        }
                        tracing::debug!("a panic line, yet the guest runs on: {line}");
                    }
                }
            }
            () = &mut liveness, if limits.liveness.is_some() && marks.agent_started_ms.is_none() => {
                return Exit::NoProgress { after: limits.liveness.unwrap_or_default() };
            }
            () = &mut timeout => return Exit::Timeout { after: limits.timeout },
            signal = &mut stop => return Exit::Interrupted { signal },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A stand-in for QEMU (a shell script) and a spec whose files live in `dir`.
    fn fake_qemu(dir: &Path, script: &str) -> (PathBuf, BootSpec) {
        use std::os::unix::fs::PermissionsExt;
        let wrapper = dir.join("qemu-wrapper");
        std::fs::write(&wrapper, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = BootSpec {
            kernel: dir.join("k"),
            initrd: dir.join("i"),
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
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!("sleep 600 &\necho $! > {}\nwait", marker.display());
        let (wrapper, spec) = fake_qemu(dir.path(), &script);
        let started = Instant::now();
        let b = boot_for_a_second(&wrapper, &spec);
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
        assert_gone(&marker);
    }

    /// A boot of the stand-in with a one-second time limit.
    fn boot_for_a_second(wrapper: &Path, spec: &BootSpec) -> Boot {
        boot(wrapper, spec, Duration::from_secs(1), None, &Cancel::new()).unwrap()
    }

    /// The process whose PID the wrapper wrote to `marker` no longer runs
    /// (reaped by init, or a zombie: either way not running `sleep`).
    fn assert_gone(marker: &Path) {
        let pid: i32 = std::fs::read_to_string(marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "the wrapper's child {pid} outlived the guest");
    }

    /// A wrapper's child that left QEMU's process group (`setsid`) and holds
    /// its streams: ended with the group, not left running.
    #[test]
    fn a_wrappers_setsid_child_is_ended_with_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let script = format!(
            "setsid sleep 600 &\necho $! > {}\nexec sleep 600",
            marker.display()
        );
        let (wrapper, spec) = fake_qemu(dir.path(), &script);
        let b = boot_for_a_second(&wrapper, &spec);
        assert!(matches!(b.exit, Exit::Timeout { .. }), "{:?}", b.exit);
        assert_gone(&marker);
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
