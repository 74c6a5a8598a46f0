//! A loader that runs until stopped, started from a test body: ready once a
//! line of its output says so, then stopped with SIGINT as Ctrl-C would,
//! judged as `cargo bpfcompat test --ready-line` judges one. Its output
//! (stdout and stderr, one stream in the order written) is echoed on the
//! test's stderr, so the kernel's words in it are read as the test's, and
//! kept for the error.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of its output an error shows.
const SHOWN: usize = 40;

/// A loader started by a test, running until stopped.
pub struct Daemon {
    child: Child,
    lines: Receiver<String>,
    output: Arc<Mutex<Vec<String>>>,
}

/// Why a daemon did not get ready or did not stop cleanly, with the end of
/// its output.
#[derive(Debug)]
pub struct DaemonError {
    /// What went wrong.
    pub what: String,
    /// The end of its output.
    pub output: Vec<String>,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        if !self.output.is_empty() {
            write!(f, "; its output (end):\n  {}", self.output.join("\n  "))?;
        }
        Ok(())
    }
}

impl std::error::Error for DaemonError {}

impl Daemon {
    /// Starts `cmd` in a process group of its own, its stdout and stderr
    /// read as one stream.
    pub fn start(cmd: &mut Command) -> std::io::Result<Daemon> {
        let (read, write) = std::io::pipe()?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(write.try_clone()?)
            .stderr(write)
            .process_group(0)
            .spawn()?;
        // The pipe's write ends are the child's alone now.
        let _ = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        let kept = output.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(read);
            let mut buf = Vec::new();
            // Lines as bytes: output that is not UTF-8 is shown lossily; a
            // line without end is taken in 1 MiB pieces (it is the user's
            // loader's output, not to be held whole).
            while std::io::Read::take(&mut reader, 1 << 20)
                .read_until(b'\n', &mut buf)
                .is_ok_and(|n| n > 0)
            {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                buf.clear();
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                kept.push(line.clone());
                let cut = kept.len().saturating_sub(SHOWN);
                kept.drain(..cut);
                drop(kept);
                let _ = tx.send(line);
            }
        });
        Ok(Daemon {
            child,
            lines,
            output,
        })
    }

    /// Waits until a line of its output is `ready` (the line), failing when
    /// it exits first or `within` passes.
    pub fn wait_for(
        &mut self,
        ready: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Result<String, DaemonError> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) if ready(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) | Err(RecvTimeoutError::Timeout)
                    if self.exited().is_some() =>
                {
                    let status = self.exited().unwrap_or_default();
                    return Err(self.error(format!("it {status} before it was ready")));
                }
                Err(_) if left.is_zero() => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.error(format!(
                        "it was not ready within {} s",
                        within.as_secs_f32()
                    )));
                }
                Err(_) => {}
            }
        }
    }

    /// Sends SIGINT to its process group and waits up to `grace` for it to
    /// exit: exit 0 or death by that SIGINT is clean; past `grace` it is
    /// killed and that is an error.
    pub fn stop(mut self, grace: Duration) -> Result<(), DaemonError> {
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on the daemon's own process group.
        unsafe { nix::libc::kill(group, nix::libc::SIGINT) };
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) if s.success() || s.signal() == Some(nix::libc::SIGINT) => {
                    return Ok(());
                }
                Ok(Some(s)) => return Err(self.error(format!("it {} on SIGINT", describe(s)))),
                Ok(None) if started.elapsed() > grace => {
                    // SAFETY: as above.
                    unsafe { nix::libc::kill(group, nix::libc::SIGKILL) };
                    let _ = self.child.wait();
                    return Err(self.error(format!(
                        "it was still running {} s after SIGINT: killed",
                        grace.as_secs_f32()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(self.error(format!("lost it: {e}"))),
            }
        }
    }

    fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(describe)
    }

    fn error(&self, what: String) -> DaemonError {
        // The reader ends with the output; give it a moment to catch up.
        std::thread::sleep(Duration::from_millis(50));
        DaemonError {
            what,
            output: self
                .output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on the daemon's own process group.
            unsafe { nix::libc::kill(-(self.child.id() as i32), nix::libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn ready_then_stopped_cleanly_or_not() {
        let mut d = Daemon::start(&mut sh(
            "trap 'exit 0' INT; echo loading; echo ready; while :; do sleep 0.05; done",
        ))
        .unwrap();
        assert_eq!(
            d.wait_for(|l| l == "ready", Duration::from_secs(10))
                .unwrap(),
            "ready"
        );
        d.stop(Duration::from_secs(5)).unwrap();

        let mut d = Daemon::start(&mut sh("echo 'libbpf: failed to load'; exit 1")).unwrap();
        let err = d
            .wait_for(|l| l == "ready", Duration::from_secs(10))
            .unwrap_err();
        assert!(
            err.what.contains("exited with 1 before it was ready"),
            "{err}"
        );
        assert_eq!(err.output, ["libbpf: failed to load"]);

        let mut d = Daemon::start(&mut sh(
            "trap '' INT; echo ready; while :; do sleep 0.05; done",
        ))
        .unwrap();
        d.wait_for(|l| l == "ready", Duration::from_secs(10))
            .unwrap();
        let err = d.stop(Duration::from_millis(300)).unwrap_err();
        assert!(err.what.contains("still running"), "{err}");
    }
}
