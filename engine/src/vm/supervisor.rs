//! One guest's supervisor. A guest has several channels open at once: QEMU's
//! process, its console (the first serial port, watched for panics), its
//! stderr, the result port (a pipe QEMU writes the guest's records to), and
//! while it is being saved, the monitor; around them run the guest's limits
//! and the run's stop flag. A current-thread tokio runtime per guest waits on
//! all of them together; the engine around it stays synchronous (each guest's
//! thread blocks on its own runtime).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::errors::VmError;
use crate::wire::channel::{Line, Verifier};
use crate::wire::{MalformedRecord, Record};

/// The fd QEMU finds the result port's pipe on (`file:/proc/self/fd/3`).
pub(super) const RESULT_FD: RawFd = 3;
/// The fd a restored guest reads its saved machine from (`-incoming fd:4`).
pub(super) const INCOMING_FD: RawFd = 4;

/// Console lines that mean the guest kernel is gone.
const PANIC_MARKERS: &[&str] = &["Kernel panic - not syncing", "---[ end Kernel panic"];

/// How long the streams may stay open once QEMU's process group is gone.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What the guest's streams report while it runs.
pub(super) enum Seen {
    /// A record on the result port.
    Record(Box<Record>),
    /// A console line that says the kernel panicked.
    Panic(String),
}

/// A running guest: QEMU in its own process group and the tasks draining
/// its streams. [`Guest::finish`] ends it; dropping it kills the group.
pub(super) struct Guest {
    child: tokio::process::Child,
    /// QEMU's pid, which leads its process group.
    group: Option<i32>,
    /// In QEMU's environment: finds what left its group (a wrapper's
    /// `setsid` child holding the streams) to end it with the group.
    mark: crate::process_group::Mark,
    /// Records and panics, as they happen.
    events: mpsc::UnboundedReceiver<Seen>,
    console: JoinHandle<(Vec<u8>, Option<String>)>,
    stderr: JoinHandle<Vec<u8>>,
    results: JoinHandle<Results>,
    /// When QEMU was started.
    pub started: Instant,
}

/// What a guest left once it ended.
pub(super) struct Ended {
    /// The console, lossily decoded.
    pub console: String,
    /// The first panic line the console showed, however late it came.
    pub panic: Option<String>,
    /// What QEMU printed on stderr.
    pub stderr: String,
    /// What came on the result port.
    pub results: Results,
}

/// The result port of one boot.
#[derive(Default, Debug)]
pub(super) struct Results {
    /// The guest init's records, in order.
    pub records: Vec<Record>,
    /// Lines with the record prefix that did not parse.
    pub malformed: Vec<MalformedRecord>,
    /// Lines that claimed to be records but were not signed by the guest's
    /// init (see [`crate::wire::channel`]): the first few, and how many.
    pub foreign: Vec<String>,
    pub foreign_count: usize,
}

impl Guest {
    /// Starts QEMU in its own process group, to die with this process, with
    /// the result port's pipe on [`RESULT_FD`] and a saved machine to
    /// restore (if any) on [`INCOMING_FD`]. Must run inside a runtime.
    pub fn spawn(
        qemu: &Path,
        args: &[OsString],
        incoming: Option<&File>,
    ) -> Result<Guest, VmError> {
        let io = |context: String| move |source| VmError::Io { context, source };
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(std::io::Error::from)
            .map_err(io("cannot create the result port's pipe".into()))?;
        // Above the fds the child is given, so placing one cannot close another.
        let write = high_fd(&write).map_err(io("cannot place the result pipe".into()))?;
        let incoming = incoming
            .map(high_fd)
            .transpose()
            .map_err(io("cannot place the saved machine".into()))?;
        let fds = (write.as_raw_fd(), incoming.as_ref().map(AsRawFd::as_raw_fd));
        let mark = crate::process_group::Mark::new();
        let mut cmd = tokio::process::Command::new(qemu);
        cmd.args(args)
            .env(crate::process_group::Mark::VAR, mark.value())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl and dup2 are async-signal-safe. The parent-death
        // signal makes the kernel kill QEMU if this process dies without
        // running any destructor; dup2 leaves the new fds open across exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
                if nix::libc::dup2(fds.0, RESULT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = fds.1
                    && nix::libc::dup2(fd, INCOMING_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(io(format!("cannot start {}", qemu.display())))?;
        // Only QEMU holds the write end now: the pipe ends when its group does.
        drop(write);
        let group = child.id().and_then(|p| i32::try_from(p).ok());
        let (tx, events) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .map_err(io("cannot read the result port".into()))?;
        Ok(Guest {
            child,
            group,
            mark,
            events,
            console: tokio::spawn(drain_console(stdout, tx.clone())),
            stderr: tokio::spawn(drain(stderr)),
            results: tokio::spawn(drain_results(receiver, tx)),
            started: Instant::now(),
        })
    }

    /// QEMU's process (to wait for its exit) and the events of its
    /// streams, borrowed together to wait on both.
    pub(crate) fn channels(&mut self) -> (Exited<'_>, &mut mpsc::UnboundedReceiver<Seen>) {
        (Exited(&mut self.child), &mut self.events)
    }

    /// Kills QEMU's group, reaps it, and collects what its streams carried.
    pub async fn finish(mut self) -> Ended {
        self.kill_group();
        let _ = self.child.wait().await;
        // One deadline for the three streams: a process outside QEMU's group
        // holding all of them costs DRAIN_LIMIT once, not three times.
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        let (console, panic) = joined(&mut self.console, deadline)
            .await
            .unwrap_or_default();
        let stderr = joined(&mut self.stderr, deadline).await.unwrap_or_default();
        let results = joined(&mut self.results, deadline)
            .await
            .unwrap_or_default();
        Ended {
            console: String::from_utf8_lossy(&console).into_owned(),
            panic,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            results,
        }
    }

    /// SIGKILL to QEMU's process group (a wrapper's children too) and to
    /// whatever left it carrying its mark. Harmless when all is gone; once
    /// done, not done again (the drop after [`Guest::finish`]).
    fn kill_group(&mut self) {
        let Some(pid) = self.group.take() else {
            return;
        };
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let strays = self.mark.kill_strays();
        if strays > 0 {
            tracing::debug!("ended {strays} processes that left QEMU's process group");
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill_group();
        self.console.abort();
        self.stderr.abort();
        self.results.abort();
    }
}

/// QEMU's process, to wait for its exit.
pub(super) struct Exited<'a>(&'a mut tokio::process::Child);

impl Exited<'_> {
    /// Waits for QEMU to exit (cancel-safe).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.0.wait().await
    }
}

/// A task's result, unless it outlives `deadline` (a stream held open by a
/// process outside QEMU's group).
async fn joined<T>(task: &mut JoinHandle<T>, deadline: tokio::time::Instant) -> Option<T> {
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(v)) => Some(v),
        _ => None,
    }
}

/// A close-on-exec copy of `fd` numbered above the fds a child is given.
fn high_fd(fd: impl AsFd) -> std::io::Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(std::io::Error::from)?;
    // SAFETY: `raw` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Reads a stream to its end.
async fn drain(mut from: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = from.read_to_end(&mut all).await;
    all
}

/// Reads the console, reporting the first line that says the kernel
/// panicked (a marker need not start a line: the BIOS leaves text without
/// a newline).
async fn drain_console(
    from: impl AsyncRead + Unpin,
    tx: mpsc::UnboundedSender<Seen>,
) -> (Vec<u8>, Option<String>) {
    let mut panic = None;
    let all = each_line(from, |line| {
        if panic.is_none() {
            let text = String::from_utf8_lossy(line);
            if PANIC_MARKERS.iter().any(|m| text.contains(m)) {
                let text = text.trim().to_string();
                let _ = tx.send(Seen::Panic(text.clone()));
                panic = Some(text);
            }
        }
    })
    .await;
    (all, panic)
}

/// Reads the result port, reporting each of the guest init's records as it
/// arrives (one verifier sees every line, so the key of the boot's hello is
/// known however much else the port carried).
async fn drain_results(
    from: tokio::net::unix::pipe::Receiver,
    tx: mpsc::UnboundedSender<Seen>,
) -> Results {
    let mut verifier = Verifier::default();
    let mut out = Results::default();
    each_line(from, |line| {
        match verifier.accept(&String::from_utf8_lossy(line)) {
            Line::Record(r) => {
                let _ = tx.send(Seen::Record(Box::new(r.clone())));
                out.records.push(r);
            }
            // Bounded: a guest cannot grow the host's memory with them.
            Line::Malformed(m) if out.malformed.len() < 20 => out.malformed.push(m),
            Line::Malformed(_) => {}
            Line::Other => {}
        }
    })
    .await;
    out.foreign = verifier.foreign;
    out.foreign_count = verifier.foreign_count;
    out
}

/// Most bytes of one stream kept as evidence: a guest that floods its
/// console cannot exhaust the host; the end, which says how it ended, stays.
const KEPT_BYTES: usize = 32 << 20;

/// The longest line handed on whole: a stream that never writes a newline
/// is cut into pieces of this size (no record is longer: they are a few
/// KiB; the wire's own limit is far below).
const MAX_LINE: u64 = 8 << 20;

/// Hands each line of a stream to `seen` as it arrives (a line past
/// [`MAX_LINE`] in pieces); returns the stream's text (its last
/// [`KEPT_BYTES`] when longer).
async fn each_line(from: impl AsyncRead + Unpin, mut seen: impl FnMut(&[u8])) -> Vec<u8> {
    let mut reader = BufReader::new(from);
    let mut all = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        seen(&line);
        all.extend_from_slice(&line);
        if all.len() > KEPT_BYTES {
            all.drain(..all.len() - KEPT_BYTES / 2);
        }
    }
    all
}

/// Runs `work` on a runtime of its own, on this thread.
pub(super) fn block_on<T>(work: impl Future<Output = T>) -> Result<T, VmError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| VmError::Io {
            context: "cannot start the guest's supervisor".into(),
            source,
        })?;
    Ok(rt.block_on(work))
}

/// Resolves when `cancel` is set, with its signal (checked every 20 ms: the
/// flag is set by signal handlers, which cannot wake a task).
pub(super) async fn cancelled(cancel: &crate::cancel::Cancel) -> usize {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if let Some(s) = cancel.signal() {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_without_newlines_is_read_in_bounded_pieces() {
        let flood = vec![b'x'; 20 << 20];
        let mut longest = 0;
        let all = block_on(each_line(&flood[..], |l| longest = longest.max(l.len()))).unwrap();
        assert_eq!(longest as u64, MAX_LINE);
        assert_eq!(all.len(), 20 << 20);
    }
}
