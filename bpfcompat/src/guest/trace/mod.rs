//! Tracing the user's loader in a guest: every `bpf()` call that creates or
//! attaches something, every probe it opens, and the kernel's answers, so
//! that a failure is explained by the call the kernel refused.
//!
//! How: the loader is started under ptrace (this thread is its tracer) with
//! a seccomp filter ([`filter`]) that stops it only at those calls. At the
//! stop the tracer reads the call's attributes from the loader's memory
//! ([`decode`]); it lets the call run to its exit and reads the answer, and
//! for a refused program the verifier log the loader received. Threads and
//! children are traced too (ptrace follows clone, fork and exec). Nothing
//! here uses `bpf()` itself; the caller may, through [`Options::loaded`].
//!
//! Works from Linux 3.5 (seccomp's trace action); before 4.8 the kernel
//! stops at the call's entry once more after the seccomp stop, which is
//! skipped.

mod decode;
mod memory;
mod netlink;
mod replay;

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event, Options as PtraceOptions};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::seccomp_filter::{self, Filter};
use decode::Memory;

use super::isolate::{self, Gate, Spawn, Spawned};
use crate::wire::trace::{
    Call, CallResult, LOG_TAIL_LINES, LoadedFacts, MAX_CALLS, Trace, TracedCall,
};

/// Reads the kernel's figures for a program the loader loaded, by its ID
/// (or, on kernels whose fdinfo has no ID, its tag): called while the
/// loader is stopped right after the load, so the program exists.
pub type LoadedFn = dyn Fn(Option<u32>, Option<&str>) -> Option<(u32, LoadedFacts)> + Send;

/// How to run.
pub struct Options {
    /// Trace (else only run and wait, as the same API).
    pub trace: bool,
    /// Figures for each loaded program (the agent's; none in a test).
    pub loaded: Option<Box<LoadedFn>>,
}

/// A running process, traced or not.
pub struct Traced {
    /// Its PID as the agent sees it.
    pub pid: Pid,
    /// Why it shares the agent's namespaces, when it does.
    pub not_isolated: Option<String>,
    status: Receiver<WaitStatus>,
    ended: Option<WaitStatus>,
    tracer: JoinHandle<Trace>,
}

impl Traced {
    /// Starts `s` (see [`isolate::spawn`]), traced where `options` asks and
    /// the kernel allows; where it does not, the trace says why.
    pub fn start(s: &Spawn, options: Options) -> std::io::Result<Traced> {
        let argv = s.argv.to_vec();
        let env = s.env.to_vec();
        let output = s.output.try_clone()?;
        let (started_tx, started_rx) = mpsc::channel();
        let (status_tx, status) = mpsc::channel();
        // The tracer is the thread that started the process: ptrace
        // requests must come from it.
        let tracer = std::thread::spawn(move || {
            let s = Spawn {
                argv: &argv,
                env: &env,
                output: &output,
            };
            let began = Instant::now();
            let (spawned, mut not_traced) = match options.trace {
                true => start_traced(&s),
                false => (
                    isolate::spawn(&s),
                    Some("tracing is off (--no-trace)".into()),
                ),
            };
            let spawned = match spawned {
                Ok(sp) => sp,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return Trace::default();
                }
            };
            let root = spawned.pid;
            let _ = started_tx.send(Ok(spawned));
            let mut tracer = Tracer::new(root, began, options.loaded);
            tracer.run(&status_tx);
            if tracer.lost > 0 {
                not_traced.get_or_insert_with(|| {
                    format!("{} calls could not be followed to their end", tracer.lost)
                });
            }
            Trace {
                calls: tracer.calls,
                dropped: tracer.dropped,
                not_traced,
            }
        });
        match started_rx.recv() {
            Ok(Ok(sp)) => Ok(Traced {
                pid: sp.pid,
                not_isolated: sp.not_isolated,
                status,
                ended: None,
                tracer,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the tracer thread ended")),
        }
    }

    /// How it ended, once it has (never blocks).
    pub fn ended(&mut self) -> Option<WaitStatus> {
        if self.ended.is_none() {
            self.ended = self.status.try_recv().ok();
        }
        self.ended
    }

    /// Waits up to `limit` for it to end.
    pub fn wait(&mut self, limit: Duration) -> Option<WaitStatus> {
        if self.ended.is_none() {
            self.ended = self.status.recv_timeout(limit).ok();
        }
        self.ended
    }

    /// Kills it (and, as PID 1 of its namespace, everything it left) and
    /// waits for its end.
    pub fn kill(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        self.wait(Duration::from_secs(10));
    }

    /// What it called, once it and every process it traced have ended.
    pub fn finish(mut self) -> Trace {
        if self.ended().is_none() {
            self.kill();
        }
        self.tracer.join().unwrap_or_else(|_| Trace {
            not_traced: Some("the tracer failed".into()),
            ..Trace::default()
        })
    }
}

/// Spawns `s` held at its gate, attaches, and lets it run under the filter.
/// Falls back to an untraced run (saying why) where the kernel refuses.
fn start_traced(s: &Spawn) -> (std::io::Result<Spawned>, Option<String>) {
    if !cfg!(target_arch = "x86_64") {
        return (
            isolate::spawn(s),
            Some("tracing needs an x86_64 guest".into()),
        );
    }
    let filter = Filter::new();
    let mut refused = None;
    let mut open = |pid: Pid| {
        let opts = PtraceOptions::PTRACE_O_TRACESECCOMP
            | PtraceOptions::PTRACE_O_TRACESYSGOOD
            | PtraceOptions::PTRACE_O_TRACECLONE
            | PtraceOptions::PTRACE_O_TRACEFORK
            | PtraceOptions::PTRACE_O_TRACEVFORK
            | PtraceOptions::PTRACE_O_TRACEEXEC
            | PtraceOptions::PTRACE_O_EXITKILL;
        match ptrace::seize(pid, opts) {
            Ok(()) => true,
            Err(e) => {
                refused = Some(format!("the kernel refused to trace it: {e}"));
                false
            }
        }
    };
    let spawned = isolate::spawn_gated(
        s,
        Gate {
            filter: &filter,
            open: &mut open,
        },
    );
    match spawned {
        Ok(sp) => (Ok(sp), refused),
        // The filter could not be installed (a kernel without seccomp
        // filters): run it untraced.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => (
            isolate::spawn(s),
            Some(format!("the kernel has no seccomp filters: {e}")),
        ),
        Err(e) => (Err(e), refused),
    }
}

/// A call stopped at, waiting for its exit.
struct InFlight {
    what: Waiting,
    /// Before Linux 4.8 an entry stop follows the seccomp stop: skipped.
    entry_stop_due: bool,
}

/// What a call in flight is.
enum Waiting {
    /// A recorded call.
    Call(decode::Entry),
    /// A netlink request that attaches a program: its answer comes later,
    /// on a receive.
    Request(crate::wire::trace::AttachCall, u32),
    /// A receive while requests await their answer: its buffer.
    Receive(Receive),
}

/// Where a receive puts what it got.
enum Receive {
    /// `recvfrom`'s buffer and length.
    Buffer(u64, u64),
    /// `recvmsg`'s message header (its first iovec is read at the exit).
    Message(u64),
}

struct Tracer {
    root: Pid,
    began: Instant,
    loaded: Option<Box<LoadedFn>>,
    pmus: decode::Pmus,
    /// Before Linux 4.8 (see the module doc).
    old_order: bool,
    in_flight: HashMap<Pid, InFlight>,
    /// Thread → process (threads share descriptors).
    tgid: HashMap<Pid, Pid>,
    /// Every traced thread not yet ended.
    alive: std::collections::HashSet<Pid>,
    /// Whether the kernel took a name yet ([`Trace::names_taken`]).
    names_taken: bool,
    /// A refused load just prepared for a replay (moved to `pending`).
    prepared: Option<replay::Prepared>,
    /// Per process, its last refused load that asked for no log: the call's
    /// index, its name, and its replay, made unless the loader asks again
    /// with a log.
    pending: HashMap<Pid, (usize, String, replay::Prepared)>,
    /// (process, descriptor) → program name, from traced loads.
    programs: HashMap<(Pid, u32), String>,
    /// (process, descriptor) → `kind target` of a probe's perf event.
    probes: HashMap<(Pid, u32), String>,
    calls: Vec<TracedCall>,
    dropped: u64,
    /// Calls whose end was not seen (the thread died in them).
    lost: u64,
    /// Netlink requests awaiting their answer: (process, seq) → the index
    /// of their call.
    requests: HashMap<(Pid, u32), usize>,
}

impl Tracer {
    fn new(root: Pid, began: Instant, loaded: Option<Box<LoadedFn>>) -> Tracer {
        Tracer {
            root,
            began,
            loaded,
            pmus: decode::Pmus::read(),
            old_order: release_before(4, 8),
            in_flight: HashMap::new(),
            tgid: HashMap::new(),
            alive: std::collections::HashSet::new(),
            names_taken: false,
            prepared: None,
            pending: HashMap::new(),
            programs: HashMap::new(),
            probes: HashMap::new(),
            calls: Vec::new(),
            dropped: 0,
            lost: 0,
            requests: HashMap::new(),
        }
    }

    /// Serves every stop until no traced process is left; the root's end
    /// is sent on `status` as soon as it is seen.
    fn run(&mut self, status: &mpsc::Sender<WaitStatus>) {
        let flags = WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD;
        loop {
            let s = match waitpid(None, Some(flags)) {
                Ok(s) => s,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    // Every traced process has ended: what it never asked
                    // again is replayed now (its descriptors are lent).
                    for (_, (index, _, prepared)) in std::mem::take(&mut self.pending) {
                        self.replay(index, prepared);
                    }
                    return;
                }
            };
            if let Some(pid) = s.pid() {
                self.alive.insert(pid);
            }
            match s {
                WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _) => {
                    if self.in_flight.remove(&pid).is_some() {
                        self.lost += 1;
                    }
                    self.tgid.remove(&pid);
                    self.alive.remove(&pid);
                    if pid == self.root {
                        let _ = status.send(s);
                        // In a PID namespace of its own the kernel ends what
                        // it left; without one (or a `setsid` child), the
                        // tracer would wait on it for ever: ended here.
                        for left in &self.alive {
                            let _ = nix::sys::signal::kill(*left, Signal::SIGKILL);
                        }
                    }
                }
                WaitStatus::PtraceEvent(pid, _, e) if e == Event::PTRACE_EVENT_SECCOMP as i32 => {
                    let _ = match self.entry(pid) {
                        Resume::ToExit => ptrace::syscall(pid, None),
                        Resume::Run => ptrace::cont(pid, None),
                    };
                }
                WaitStatus::PtraceEvent(pid, sig, e) if e == Event::PTRACE_EVENT_STOP as i32 => {
                    match sig {
                        // A group stop (SIGSTOP and its kin): stays stopped
                        // until continued, as without a tracer.
                        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => {
                            // SAFETY: PTRACE_LISTEN on our tracee, no pointers.
                            unsafe {
                                nix::libc::ptrace(nix::libc::PTRACE_LISTEN, pid.as_raw(), 0, 0);
                            }
                        }
                        _ => {
                            let _ = ptrace::cont(pid, None);
                        }
                    }
                }
                WaitStatus::PtraceEvent(pid, _, _) => {
                    let _ = ptrace::cont(pid, None);
                }
                WaitStatus::PtraceSyscall(pid) => {
                    let resume = self.exit(pid);
                    let _ = match resume {
                        Resume::ToExit => ptrace::syscall(pid, None),
                        Resume::Run => ptrace::cont(pid, None),
                    };
                }
                // A signal for it: delivered as it would be untraced.
                WaitStatus::Stopped(pid, sig) => {
                    let _ = ptrace::cont(pid, Some(sig));
                }
                _ => {}
            }
        }
    }

    /// At a seccomp stop: what is being called, and whether its end is
    /// worth a stop.
    fn entry(&mut self, tid: Pid) -> Resume {
        let Ok(regs) = ptrace::getregs(tid) else {
            return Resume::Run;
        };
        let mem = memory::Process(tid);
        let process = self.process_of(tid);
        let (programs, probes) = (&self.programs, &self.probes);
        let program = |fd: u32| programs.get(&(process, fd)).cloned();
        let probe = |fd: u32| probes.get(&(process, fd)).cloned();
        let fds = decode::Descriptors {
            program: &program,
            probe: &probe,
        };
        let (nr, a0, a1, a2) = (regs.orig_rax, regs.rdi, regs.rsi, regs.rdx);
        let awaited = self.requests.keys().any(|(p, _)| *p == process);
        let what = match nr as i64 {
            nix::libc::SYS_bpf => decode::bpf(a0, a1, a2, &mem, &fds).map(Waiting::Call),
            nix::libc::SYS_perf_event_open => {
                decode::perf_event(a0, &mem, self.pmus).map(Waiting::Call)
            }
            nix::libc::SYS_ioctl if a1 as u32 == seccomp_filter::PERF_EVENT_IOC_SET_BPF => {
                Some(Waiting::Call(decode::set_bpf(a0, a2, &fds)))
            }
            nix::libc::SYS_sendto => mem
                .read(a1, (a2 as usize).min(NETLINK_MAX))
                .and_then(|b| netlink::request(&b, &program))
                .map(|(a, seq)| Waiting::Request(a, seq)),
            nix::libc::SYS_sendmsg => first_iovec(&mem, a1)
                .and_then(|(base, len)| mem.read(base, (len as usize).min(NETLINK_MAX)))
                .and_then(|b| netlink::request(&b, &program))
                .map(|(a, seq)| Waiting::Request(a, seq)),
            nix::libc::SYS_recvfrom if awaited => Some(Waiting::Receive(Receive::Buffer(a1, a2))),
            nix::libc::SYS_recvmsg if awaited => Some(Waiting::Receive(Receive::Message(a1))),
            _ => None,
        };
        if let Some((_, name, _)) = self.pending.get(&process) {
            let retried = matches!(&what, Some(Waiting::Call(e))
                if matches!(&e.call, Call::ProgLoad(p) if &p.name == name && p.log_asked));
            let (index, _, prepared) = self.pending.remove(&process).expect("pending");
            match retried {
                // The loader's own log answers: no replay needed.
                true => drop(prepared),
                false => self.replay(index, prepared),
            }
        }
        match what {
            Some(what) => {
                self.in_flight.insert(
                    tid,
                    InFlight {
                        what,
                        entry_stop_due: self.old_order,
                    },
                );
                Resume::ToExit
            }
            None => Resume::Run,
        }
    }

    /// At a syscall stop: the answer to the call in flight.
    fn exit(&mut self, tid: Pid) -> Resume {
        let Some(mut flight) = self.in_flight.remove(&tid) else {
            return Resume::Run;
        };
        if flight.entry_stop_due {
            flight.entry_stop_due = false;
            self.in_flight.insert(tid, flight);
            return Resume::ToExit;
        }
        let Ok(regs) = ptrace::getregs(tid) else {
            self.lost += 1;
            return Resume::Run;
        };
        let ret = regs.rax as i64;
        let result = match ret {
            -4095..=-1 => CallResult::Err(-ret as i32),
            n => CallResult::Ok(n),
        };
        let mem = memory::Process(tid);
        let process = self.process_of(tid);
        let call = match flight.what {
            Waiting::Call(entry) => self.answered(entry, result, &mem, process),
            Waiting::Request(attach, seq) => {
                // Sent: the answer comes on a receive. Not sent: refused.
                let result = match result {
                    CallResult::Err(e) => CallResult::Err(e),
                    _ => CallResult::NoAnswer,
                };
                if result == CallResult::NoAnswer && self.calls.len() < MAX_CALLS {
                    self.requests.insert((process, seq), self.calls.len());
                }
                (Call::Attach(attach), result)
            }
            Waiting::Receive(at) => {
                let got = match result {
                    CallResult::Ok(n) if n > 0 => n as u64,
                    _ => return Resume::Run,
                };
                let buffer = match at {
                    Receive::Buffer(base, len) => Some((base, len)),
                    Receive::Message(msg) => first_iovec(&mem, msg),
                };
                let Some(bytes) = buffer.and_then(|(base, len)| {
                    mem.read(base, (got.min(len) as usize).min(NETLINK_MAX))
                }) else {
                    return Resume::Run;
                };
                for (seq, errno) in netlink::answers(&bytes) {
                    if let Some(i) = self.requests.remove(&(process, seq)) {
                        self.calls[i].result = match errno {
                            0 => CallResult::Ok(0),
                            e => CallResult::Err(e),
                        };
                    }
                }
                return Resume::Run;
            }
        };
        let (call, result) = call;
        if let Some(prepared) = self.prepared.take()
            && self.calls.len() < MAX_CALLS
        {
            let name = call.name().to_string();
            self.pending
                .insert(process, (self.calls.len(), name, prepared));
        }
        if self.calls.len() < MAX_CALLS {
            self.calls.push(TracedCall {
                tid: tid.as_raw(),
                at_ms: self.began.elapsed().as_millis() as u64,
                call,
                result,
            });
        } else {
            self.dropped += 1;
        }
        Resume::Run
    }

    /// A recorded call, completed with what its answer lets be read.
    fn answered(
        &mut self,
        entry: decode::Entry,
        result: CallResult,
        mem: &memory::Process,
        process: Pid,
    ) -> (Call, CallResult) {
        let mut call = entry.call;
        // A library's probe refused by design is not replayed.
        let probe = call.is_library_probe(self.names_taken);
        if result.errno().is_none() && !call.name().is_empty() {
            self.names_taken = true;
        }
        let log = |(buf, size): (u64, u32)| decode::log_tail(mem, buf, size, LOG_TAIL_LINES);
        match &mut call {
            Call::ProgLoad(p) => {
                if result.errno().is_some() {
                    match (entry.log, entry.attr) {
                        (Some(at), _) => p.log = log(at),
                        // It asked for none: the same load again, with one,
                        // unless the loader asks again with a log itself
                        // (prepared now, made when that is known).
                        (None, Some((attr, size))) if !probe => {
                            match replay::prepare(process, mem, attr, size) {
                                Ok(prepared) => self.prepared = Some(prepared),
                                Err(why) => p.replay = Some(why.to_string()),
                            }
                        }
                        _ => {}
                    }
                } else if let CallResult::Ok(fd) = result {
                    self.programs.insert((process, fd as u32), p.name.clone());
                    if let Some(facts) = &self.loaded {
                        let (id, tag) = fdinfo(process, fd);
                        if let Some((id, f)) = facts(id, tag.as_deref()) {
                            p.prog_id = Some(id);
                            p.loaded = Some(f);
                        }
                    }
                }
            }
            Call::BtfLoad { log: l, .. } if result.errno().is_some() => {
                *l = entry.log.map(log).unwrap_or_default();
            }
            Call::PerfEvent(p) => {
                if let CallResult::Ok(fd) = result {
                    let probe = format!("{} {}", p.probe, p.target);
                    self.probes.insert((process, fd as u32), probe);
                }
            }
            _ => {}
        }
        (call, result)
    }

    /// Makes a pending replay and puts its log on the call at `index`.
    fn replay(&mut self, index: usize, prepared: replay::Prepared) {
        let outcome = prepared.load(LOG_TAIL_LINES);
        if let Some(TracedCall {
            call: Call::ProgLoad(p),
            ..
        }) = self.calls.get_mut(index)
        {
            match outcome {
                replay::Replayed::Log(l) => {
                    p.log = l;
                    p.replay = Some("replayed".into());
                }
                replay::Replayed::Not(why) => p.replay = Some(why),
            }
        }
    }

    /// The process a thread belongs to (its thread group).
    fn process_of(&mut self, tid: Pid) -> Pid {
        *self.tgid.entry(tid).or_insert_with(|| {
            std::fs::read_to_string(format!("/proc/{tid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Tgid:"))
                        .and_then(|v| v.trim().parse().ok())
                })
                .map_or(tid, Pid::from_raw)
        })
    }
}

/// The most of a netlink message read (a request that attaches a
/// program is a few hundred bytes).
const NETLINK_MAX: usize = 64 << 10;

/// The first iovec of a `struct msghdr` at `msg`: (base, length).
fn first_iovec(mem: &memory::Process, msg: u64) -> Option<(u64, u64)> {
    use decode::Memory;
    let header = mem.read(msg, 32)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let (iov, count) = (word(16), word(24));
    if count == 0 || header.len() < 32 {
        return None;
    }
    let v = mem.read(iov, 16)?;
    let base = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let len = u64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
    Some((base, len))
}

/// How a stopped thread goes on.
enum Resume {
    /// To the end of the call in flight.
    ToExit,
    /// Freely, until the next traced call.
    Run,
}

/// A loaded program's ID and tag, from its descriptor's fdinfo (`prog_id`
/// is there from Linux 4.13 on; `prog_tag` from 4.10).
fn fdinfo(process: Pid, fd: i64) -> (Option<u32>, Option<String>) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{process}/fdinfo/{fd}")) else {
        return (None, None);
    };
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    (
        field("prog_id:").and_then(|v| v.parse().ok()),
        field("prog_tag:"),
    )
}

/// Whether the running kernel is older than `major.minor`.
fn release_before(major: u32, minor: u32) -> bool {
    let Ok(u) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = u.release().to_string_lossy().into_owned();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => (a, b) < (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::trace::{MapCall, ProgCall};

    /// Set when this test binary runs as the traced loader.
    const CHILD: &str = "BPFCOMPAT_TRACE_TEST_CHILD";

    #[repr(C, align(8))]
    struct Attr([u8; 128]);

    fn put(a: &mut Attr, at: usize, bytes: &[u8]) {
        a.0[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn bpf(cmd: u32, a: &Attr) -> i64 {
        // SAFETY: a valid attribute buffer of the size given.
        unsafe { nix::libc::syscall(nix::libc::SYS_bpf, cmd, a.0.as_ptr(), 128usize) }
    }

    fn map(map_type: u32, key: u32, value: u32, entries: u32, name: &str) -> i64 {
        let mut a = Attr([0; 128]);
        put(&mut a, 0, &map_type.to_le_bytes());
        put(&mut a, 4, &key.to_le_bytes());
        put(&mut a, 8, &value.to_le_bytes());
        put(&mut a, 12, &entries.to_le_bytes());
        put(&mut a, 28, name.as_bytes());
        bpf(0, &a)
    }

    /// `r0 = 2; exit` loaded as `prog_type` under `name`: its descriptor.
    fn prog(prog_type: u32, name: &str) -> i64 {
        let insns: [u8; 16] = [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        let mut a = Attr([0; 128]);
        put(&mut a, 0, &prog_type.to_le_bytes());
        put(&mut a, 4, &2u32.to_le_bytes());
        put(&mut a, 8, &(insns.as_ptr() as u64).to_le_bytes());
        put(&mut a, 16, &(c"GPL".as_ptr() as u64).to_le_bytes());
        put(&mut a, 48, name.as_bytes());
        let fd = bpf(5, &a);
        assert!(fd >= 0, "{name}");
        fd
    }

    /// Attaches `fd` as generic XDP on the loopback (ifindex 1) through
    /// netlink, as libbpf's bpf_xdp_attach does: the kernel's answer.
    fn netlink_xdp(fd: i64, seq: u32) -> i32 {
        use nix::libc;
        let attr = |kind: u16, value: &[u8]| {
            let mut a = ((4 + value.len()) as u16).to_le_bytes().to_vec();
            a.extend(kind.to_le_bytes());
            a.extend(value);
            a
        };
        let nested = [
            attr(1, &(fd as i32).to_le_bytes()),
            attr(3, &2u32.to_le_bytes()),
        ]
        .concat();
        let mut ifinfo = vec![0u8; 16];
        ifinfo[4..8].copy_from_slice(&1i32.to_le_bytes());
        let payload = [ifinfo, attr(43 | 0x8000, &nested)].concat();
        let mut msg = ((16 + payload.len()) as u32).to_le_bytes().to_vec();
        msg.extend(16u16.to_le_bytes());
        msg.extend((1u16 | 4).to_le_bytes()); // NLM_F_REQUEST | NLM_F_ACK
        msg.extend(seq.to_le_bytes());
        msg.extend(0u32.to_le_bytes());
        msg.extend(payload);
        // SAFETY: a socket of this process, buffers of the sizes given.
        unsafe {
            let s = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE);
            assert!(s >= 0);
            assert!(libc::send(s, msg.as_ptr().cast(), msg.len(), 0) > 0);
            let mut answer = [0u8; 4096];
            let n = libc::recv(s, answer.as_mut_ptr().cast(), answer.len(), 0);
            libc::close(s);
            assert!(n >= 20);
            i32::from_le_bytes(answer[16..20].try_into().unwrap())
        }
    }

    /// The loader's side: what a loader asks, a refusal of each kind, from
    /// a second thread and from a child too.
    #[test]
    fn traced_child() {
        if std::env::var(CHILD).is_err() {
            return;
        }
        assert!(map(2, 4, 4, 1, "traced_array") >= 0);
        // A ring buffer's size must be a power-of-2 number of pages.
        assert!(map(27, 0, 0, 4097, "bad_ringbuf") < 0);
        // call ktime_get_ns; r0 = r2 (clobbered by the call); exit
        let insns: [u8; 24] = [
            0x85, 0, 0, 0, 5, 0, 0, 0, 0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut log = vec![0u8; 4096];
        let mut a = Attr([0; 128]);
        put(&mut a, 0, &1u32.to_le_bytes());
        put(&mut a, 4, &3u32.to_le_bytes());
        put(&mut a, 8, &(insns.as_ptr() as u64).to_le_bytes());
        put(&mut a, 16, &(c"GPL".as_ptr() as u64).to_le_bytes());
        put(&mut a, 24, &1u32.to_le_bytes());
        put(&mut a, 28, &(log.len() as u32).to_le_bytes());
        put(&mut a, 32, &(log.as_mut_ptr() as u64).to_le_bytes());
        put(&mut a, 48, b"bad_prog");
        assert!(bpf(5, &a) < 0);
        // The same refusal with a map reference, asking for no log: the
        // tracer replays it with one (the map lent from this process).
        let array = map(2, 4, 8, 1, "replay_array") as u32;
        let mut insns = vec![0x18, 0x11, 0, 0];
        insns.extend(array.to_le_bytes());
        insns.extend([0u8; 8]);
        insns.extend([0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
        let mut a = Attr([0; 128]);
        put(&mut a, 0, &1u32.to_le_bytes());
        put(&mut a, 4, &4u32.to_le_bytes());
        put(&mut a, 8, &(insns.as_ptr() as u64).to_le_bytes());
        put(&mut a, 16, &(c"GPL".as_ptr() as u64).to_le_bytes());
        put(&mut a, 48, b"quiet_prog");
        assert!(bpf(5, &a) < 0);
        // Not recorded: a lookup of IDs.
        let _ = bpf(12, &Attr([0; 128]));
        // In a network namespace of its own: an XDP program attached to its
        // loopback through netlink, then a socket filter there (refused).
        // SAFETY: unshare of this process's network namespace only.
        assert_eq!(unsafe { nix::libc::unshare(nix::libc::CLONE_NEWNET) }, 0);
        let xdp = prog(6, "xdp_pass");
        let socket_filter = prog(1, "sock_prog");
        assert_eq!(netlink_xdp(xdp, 1), 0);
        assert_ne!(netlink_xdp(socket_filter, 2), 0);
        std::thread::spawn(|| assert!(map(1, 4, 4, 8, "thread_map") >= 0))
            .join()
            .unwrap();
        // SAFETY: the child makes one system call and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                map(1, 4, 4, 8, "child_map");
                // SAFETY: ends the forked child at once.
                unsafe { nix::libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let _ = waitpid(child, None);
            }
        }
        std::process::exit(7)
    }

    #[test]
    fn a_loaders_calls_and_the_kernels_answers_are_recorded_in_every_thread_and_child() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: tracing a loader's bpf() calls needs root");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let argv: Vec<String> = [
            exe.to_string_lossy().as_ref(),
            "--exact",
            "guest::trace::tests::traced_child",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from)
        .to_vec();
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.push((CHILD.into(), "1".into()));
        let (read, write) = nix::unistd::pipe().unwrap();
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut text);
            text
        });
        let mut t = Traced::start(
            &Spawn {
                argv: &argv,
                env: &env,
                output: &write,
            },
            Options {
                trace: true,
                loaded: Some(Box::new(|id, _| id.map(|id| (id, LoadedFacts::default())))),
            },
        )
        .unwrap();
        drop(write);
        let status = t.wait(Duration::from_secs(60));
        let trace = t.finish();
        let output = output.join().unwrap();
        assert!(
            matches!(status, Some(WaitStatus::Exited(_, 7))),
            "{status:?}: {output}"
        );
        assert_eq!(trace.not_traced, None, "{trace:?}");
        let maps: Vec<(&MapCall, CallResult)> = trace
            .calls
            .iter()
            .filter_map(|c| match &c.call {
                Call::MapCreate(m) => Some((m, c.result)),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = maps.iter().map(|(m, _)| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "traced_array",
                "bad_ringbuf",
                "replay_array",
                "thread_map",
                "child_map"
            ],
            "{trace:#?}"
        );
        assert!(matches!(maps[0].1, CallResult::Ok(fd) if fd > 2));
        assert_eq!(maps[1].1, CallResult::Err(nix::libc::EINVAL));
        assert_eq!((maps[1].0.map_type, maps[1].0.max_entries), (27, 4097));
        let progs: Vec<&ProgCall> = trace
            .calls
            .iter()
            .filter_map(|c| match &c.call {
                Call::ProgLoad(p) => Some(p),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = progs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["bad_prog", "quiet_prog", "xdp_pass", "sock_prog"],
            "{trace:#?}"
        );
        // It asked for no log: the replay's, with its map lent.
        assert!(!progs[1].log_asked);
        assert_eq!(
            progs[1].replay.as_deref(),
            Some("replayed"),
            "{:?}",
            progs[1]
        );
        assert!(
            progs[1].log.iter().any(|l| l.contains("R2 !read_ok")),
            "{:?}",
            progs[1].log
        );
        assert_eq!(progs[0].replay, None);
        assert_eq!(progs[0].helpers, vec![5]);
        assert!(
            progs[0].log.iter().any(|l| l.contains("R2 !read_ok")),
            "{:?}",
            progs[0].log
        );
        // The netlink attaches, with the kernel's answers read from the
        // loader's receives.
        let attaches: Vec<(Option<&str>, CallResult)> = trace
            .calls
            .iter()
            .filter_map(|c| match &c.call {
                Call::Attach(a) if a.how == "netlink_xdp" => Some((a.program.as_deref(), c.result)),
                _ => None,
            })
            .collect();
        assert_eq!(attaches.len(), 2, "{trace:#?}");
        assert_eq!(attaches[0], (Some("xdp_pass"), CallResult::Ok(0)));
        assert_eq!(attaches[1].0, Some("sock_prog"));
        assert!(attaches[1].1.errno().is_some(), "{attaches:?}");
    }
}
