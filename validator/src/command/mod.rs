//! Command mode in the guest: run the user's own loader as root, in
//! namespaces of its own ([`bpfcompat_engine::guest::isolate`]).
//!
//! A loader that exits by itself is judged by its exit code. One that runs
//! until stopped (most eBPF tools) is judged by readiness: once a line of
//! its output matches, or it is still running after a while, it counts as
//! working; then the workload runs, SIGINT asks it to stop, and it must
//! exit cleanly within a grace period. Its output is one stream, kept
//! bounded ([`output`]).

mod btf_names;
mod output;
mod traced;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use bpfcompat_engine::guest::isolate;
use bpfcompat_engine::guest::trace::{self, Traced};
use bpfcompat_engine::wire::{CommandReport, CommandRuns, JobCommand, Ready, ReadyAt, Stop};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use output::Output;

/// How often the agent looks at a running command.
const TICK: Duration = Duration::from_millis(10);

/// How long the output may stay open after the command ended (a process
/// outside its namespace holding the pipe): then the report goes without.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs one command and reports what it did.
pub fn run_command(cmd: &JobCommand, kernel: &str) -> CommandReport {
    let mut vars = cmd.env.clone();
    vars.insert("BPFCOMPAT_KERNEL".into(), kernel.to_string());
    let argv: Vec<String> = cmd.argv.iter().map(|w| expand(w, &vars)).collect();
    let mut report = CommandReport {
        name: cmd.name.clone(),
        readiness: cmd.ready.clone(),
        ..CommandReport::default()
    };
    let ready_line = match &cmd.ready {
        Some(Ready::Line(p)) => match regex::bytes::Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                report.spawn_error = Some(format!("the ready line `{p}` is no pattern: {e}"));
                return report;
            }
        },
        _ => None,
    };
    let env = environment(&vars);
    let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            report.spawn_error = Some(format!("cannot make the output pipe: {e}"));
            return report;
        }
    };
    // Fire mode: statistics on before it loads anything, and what was
    // loaded before it, so its own programs are told apart.
    let stats = cmd.count_runs.then(crate::fire::StatsOn::enable);
    let before: std::collections::BTreeSet<u32> = match cmd.count_runs {
        true => crate::fire::loaded_programs()
            .into_iter()
            .map(|p| p.0)
            .collect(),
        false => Default::default(),
    };
    let started = Instant::now();
    let spawned = Traced::start(
        &isolate::Spawn {
            argv: &argv,
            env: &env,
            output: &write,
        },
        trace::Options {
            trace: cmd.trace,
            loaded: Some(Box::new(traced::loaded_facts)),
        },
    );
    drop(write);
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            report.spawn_error = Some(format!("{}: {e}", argv.first().map_or("", |a| a)));
            return report;
        }
    };
    report.not_isolated = spawned.not_isolated.clone();
    let (lines, reader) = read_output(read, ready_line);
    let mut run = Running {
        pid: spawned.pid,
        process: spawned,
        started,
        report,
    };
    let status = run.until_ready_or_exit(cmd, &lines);
    let status = match status {
        Some(s) => Some(s),
        None if run.report.ready.is_some() => {
            let counting = stats.as_ref().map(|s| (s, &before));
            run.stop(cmd, &env, counting)
        }
        None => None,
    };
    drop(stats);
    let mut report = run.report;
    if report.not_isolated.is_some() {
        // Without a namespace of its own, what it left runs on: its group
        // is ended with it (a `setsid` child may escape: said in the report).
        let _ = kill(Pid::from_raw(-run.pid.as_raw()), Signal::SIGKILL);
    }
    let mut trace = run.process.finish();
    traced::enrich(&mut trace);
    report.trace = Some(Box::new(trace));
    match status {
        Some(WaitStatus::Exited(_, code)) => report.exit_code = Some(code),
        Some(WaitStatus::Signaled(_, sig, _)) => report.signal = Some(sig as i32),
        _ => {}
    }
    if report.stop == Some(Stop::DefaultAction) {
        report.signal = Some(Signal::SIGINT as i32);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    let out = reader.recv_timeout(DRAIN).unwrap_or_default();
    report.output = out.text();
    report.output_bytes = out.total();
    report
}

/// The command's environment: the agent's (the guest's kernel parameters),
/// the job's variables, and a `PATH` that finds the job's binaries first.
fn environment(vars: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert(
        "PATH".into(),
        "/job/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    env.entry("HOME".into()).or_insert_with(|| "/root".into());
    env.into_iter().collect()
}

/// Reads the output on a thread. The receiver hears the ready line once
/// (its text); the join channel gets the whole [`Output`] at EOF.
fn read_output(
    read: OwnedFd,
    ready_line: Option<regex::bytes::Regex>,
) -> (Receiver<String>, Receiver<Output>) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(read);
        let mut out = Output::default();
        let mut buf = vec![0u8; 64 << 10];
        let mut matched = false;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            out.feed(&buf[..n], |line| {
                if let Some(r) = &ready_line
                    && !matched
                    && r.is_match(line)
                {
                    matched = true;
                    let _ = ready_tx.send(String::from_utf8_lossy(line).into_owned());
                }
            });
        }
        let _ = done_tx.send(out);
    });
    (ready_rx, done_rx)
}

/// A command being run.
struct Running {
    pid: Pid,
    process: Traced,
    started: Instant,
    report: CommandReport,
}

impl Running {
    /// Waits until the command exits (its status), is ready (`None`, with
    /// `report.ready` set) or runs past its limit (`None`, killed).
    fn until_ready_or_exit(
        &mut self,
        cmd: &JobCommand,
        lines: &Receiver<String>,
    ) -> Option<WaitStatus> {
        let limit = Duration::from_secs(cmd.timeout_secs);
        loop {
            if let Some(s) = self.exited() {
                // A ready line written just before it exited still counts:
                // the reader ends once the output closes.
                if let (Some(Ready::Line(_)), Ok(line)) = (&cmd.ready, lines.recv_timeout(DRAIN)) {
                    self.report.ready = Some(ReadyAt {
                        after_ms: self.started.elapsed().as_millis() as u64,
                        line: Some(line),
                    });
                }
                return Some(s);
            }
            let elapsed = self.started.elapsed();
            let ready = match &cmd.ready {
                Some(Ready::Line(_)) => lines.try_recv().ok().map(Some),
                Some(Ready::AfterMs(ms)) => (elapsed >= Duration::from_millis(*ms)).then_some(None),
                None => None,
            };
            if let Some(line) = ready {
                self.report.ready = Some(ReadyAt {
                    after_ms: elapsed.as_millis() as u64,
                    line,
                });
                return None;
            }
            if elapsed > limit {
                self.report.timed_out = true;
                return self.kill();
            }
            std::thread::sleep(TICK);
        }
    }

    /// Once ready: the workload (and in fire mode, the runs of the
    /// programs it loaded, those not in `counting`'s set), then SIGINT and
    /// the grace period.
    fn stop(
        &mut self,
        cmd: &JobCommand,
        env: &[(String, String)],
        counting: Option<(&crate::fire::StatsOn, &std::collections::BTreeSet<u32>)>,
    ) -> Option<WaitStatus> {
        match &cmd.trigger {
            Some(trigger) => {
                let limit = Duration::from_secs(cmd.timeout_secs);
                self.report.trigger = Some(run_trigger(trigger, env, limit));
            }
            None if counting.is_some() => {
                crate::fire::builtin_workload(crate::Site::Guest);
                self.report.trigger = Some("the built-in workload".into());
            }
            None => {}
        }
        if let Some((stats, before)) = counting {
            self.report.runs = Some(match stats.counting() {
                false => CommandRuns::Unmeasured {
                    reason: "this kernel keeps no BPF run statistics (kernel.bpf_stats_enabled, Linux 5.1)".into(),
                },
                true => CommandRuns::Counted {
                    programs: crate::fire::loaded_programs()
                        .into_iter()
                        .filter(|p| !before.contains(&p.0))
                        .map(|(_, name, kind, runs)| (name, kind, runs))
                        .collect(),
                },
            });
        }
        // It may have ended meanwhile: then its status is the verdict.
        if let Some(s) = self.exited() {
            return Some(s);
        }
        let _ = kill(Pid::from_raw(-self.pid.as_raw()), Signal::SIGINT);
        let _ = kill(self.pid, Signal::SIGINT);
        let grace = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                self.report.stop = Some(Stop::Clean);
                return Some(s);
            }
            if ends_on_sigint(self.pid) {
                // PID 1 of its namespace: the kernel drops a signal it has no
                // handler for. Outside, SIGINT's default action ends it.
                self.report.stop = Some(Stop::DefaultAction);
                return self.kill();
            }
            if grace.elapsed() > Duration::from_millis(cmd.grace_ms) {
                self.report.stop = Some(Stop::GraceExpired);
                return self.kill();
            }
            std::thread::sleep(TICK);
        }
    }

    fn exited(&mut self) -> Option<WaitStatus> {
        self.process.ended()
    }

    /// Kills it (and, as PID 1 of its namespace, everything it left).
    fn kill(&mut self) -> Option<WaitStatus> {
        self.process.kill();
        None
    }
}

/// Whether SIGINT's default action applies to `pid`: it neither handles
/// nor ignores the signal (`SigCgt`, `SigIgn` in its status).
fn ends_on_sigint(pid: Pid) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    let bit = 1u64 << (Signal::SIGINT as u64 - 1);
    match (mask("SigCgt:"), mask("SigIgn:")) {
        (Some(caught), Some(ignored)) => (caught | ignored) & bit == 0,
        _ => false,
    }
}

/// Runs the workload in namespaces of its own, its output on the console
/// (evidence); how it ended, in words.
fn run_trigger(argv: &[String], env: &[(String, String)], limit: Duration) -> String {
    let console = match nix::unistd::dup(std::io::stderr()) {
        Ok(fd) => fd,
        Err(e) => return format!("could not start: {e}"),
    };
    let spawned = isolate::spawn(&isolate::Spawn {
        argv,
        env,
        output: &console,
    });
    let pid = match spawned {
        Ok(s) => s.pid,
        Err(e) => return format!("could not start: {e}"),
    };
    let started = Instant::now();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return format!("exited with {code}"),
            Ok(WaitStatus::Signaled(_, sig, _)) => return format!("killed by {sig}"),
            Ok(_) if started.elapsed() > limit => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return format!("still running after {} s: killed", limit.as_secs());
            }
            Ok(_) => std::thread::sleep(TICK),
            Err(e) => return format!("lost: {e}"),
        }
    }
}

/// `$NAME` and `${NAME}` from `env`; anything else is left as written.
fn expand(word: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = word.to_string();
    for (k, v) in env {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    // Longest names first, so `$BPFCOMPAT_BIN` never eats `$BPFCOMPAT_BINARY`.
    let mut keys: Vec<&String> = env.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in keys {
        out = out.replace(&format!("${k}"), &env[k]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_both_spellings() {
        let env = BTreeMap::from([("BPFCOMPAT_BIN".to_string(), "/job/bin/0/loader".to_string())]);
        assert_eq!(expand("$BPFCOMPAT_BIN", &env), "/job/bin/0/loader");
        assert_eq!(
            expand("--x=${BPFCOMPAT_BIN}", &env),
            "--x=/job/bin/0/loader"
        );
        assert_eq!(expand("$HOME", &env), "$HOME");
    }

    fn sh(script: &str) -> JobCommand {
        JobCommand {
            name: "t".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: BTreeMap::new(),
            expect_exit: 0,
            timeout_secs: 20,
            ready: None,
            grace_ms: 2000,
            trigger: None,
            count_runs: false,
            trace: true,
        }
    }

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// These run on the host as the agent would in a guest: as root they
    /// get namespaces of their own.
    #[test]
    fn a_loader_is_pid_1_of_its_own_namespace_and_sees_no_other_process() {
        if !root() {
            eprintln!("skipped: namespaces need root");
            return;
        }
        let r = run_command(&sh("echo pid=$$; echo /proc/[0-9]*"), "k");
        assert_eq!(r.not_isolated, None);
        assert_eq!(r.exit_code, Some(0), "{r:?}");
        // The shell alone: nothing of the agent's.
        assert_eq!(r.output, "pid=1\n/proc/1\n");
    }

    #[test]
    fn output_is_one_stream_in_the_order_written() {
        if !root() {
            return;
        }
        let r = run_command(&sh("echo a; echo b >&2; echo c; exit 3"), "k");
        assert_eq!(r.output, "a\nb\nc\n");
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.output_bytes, 6);
    }

    #[test]
    fn a_ready_loader_is_stopped_by_sigint_and_one_that_ignores_it_is_killed() {
        if !root() {
            return;
        }
        let mut c = sh(
            "trap 'echo bye; exit 0' INT; echo starting; echo ready; while :; do sleep 0.05; done",
        );
        c.ready = Some(Ready::Line("^ready$".into()));
        let r = run_command(&c, "k");
        assert_eq!(
            r.ready.as_ref().and_then(|a| a.line.as_deref()),
            Some("ready"),
            "{r:?}"
        );
        assert_eq!((r.stop, r.exit_code), (Some(Stop::Clean), Some(0)), "{r:?}");
        assert!(r.output.ends_with("bye\n"), "{}", r.output);

        // No handler: SIGINT's default action, as outside a namespace.
        let mut c = sh("echo ready; exec sleep 600");
        c.ready = Some(Ready::AfterMs(300));
        let r = run_command(&c, "k");
        assert_eq!(r.stop, Some(Stop::DefaultAction), "{r:?}");
        assert_eq!(r.signal, Some(Signal::SIGINT as i32));

        let mut c = sh("trap '' INT; echo ready; while :; do sleep 0.05; done");
        c.ready = Some(Ready::Line("ready".into()));
        c.grace_ms = 300;
        let r = run_command(&c, "k");
        assert_eq!(r.stop, Some(Stop::GraceExpired), "{r:?}");
    }

    #[test]
    fn never_ready_times_out_and_dying_first_keeps_its_exit() {
        if !root() {
            return;
        }
        let mut c = sh("echo loading; exit 4");
        c.ready = Some(Ready::Line("^ready$".into()));
        let r = run_command(&c, "k");
        assert_eq!((r.ready.is_none(), r.exit_code), (true, Some(4)), "{r:?}");
        // Ready, then gone at once: ready it was, and the exit decides.
        let mut c = sh("echo ready; exit 4");
        c.ready = Some(Ready::Line("^ready$".into()));
        let r = run_command(&c, "k");
        assert_eq!((r.ready.is_some(), r.exit_code), (true, Some(4)), "{r:?}");
        let mut c = sh("sleep 600");
        c.ready = Some(Ready::Line("^ready$".into()));
        c.timeout_secs = 1;
        let started = Instant::now();
        let r = run_command(&c, "k");
        assert!(r.timed_out && r.ready.is_none(), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_setsid_child_holding_the_output_ends_with_the_loader() {
        if !root() {
            return;
        }
        let started = Instant::now();
        let r = run_command(&sh("setsid sleep 600 & echo done"), "k");
        assert_eq!(r.exit_code, Some(0), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
