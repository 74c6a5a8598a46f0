//! Command mode in the guest: run the user's own loader as root; its exit
//! code is the verdict, its output the evidence.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bpfcompat::wire::JobCommand;
use bpfcompat::wire::{CommandReport, tail};

/// Lines of output kept per stream.
const OUTPUT_TAIL: usize = 40;

/// Runs one command and reports what it did.
pub fn run_command(cmd: &JobCommand, kernel: &str) -> CommandReport {
    let mut env = cmd.env.clone();
    env.insert("BPFCOMPAT_KERNEL".into(), kernel.to_string());
    let argv: Vec<String> = cmd.argv.iter().map(|w| expand(w, &env)).collect();
    let mut report = CommandReport {
        name: cmd.name.clone(),
        ..CommandReport::default()
    };
    let Some((program, args)) = argv.split_first() else {
        report.spawn_error = Some("the command is empty".into());
        return report;
    };
    let started = Instant::now();
    let mut child = match Command::new(program)
        .args(args)
        .envs(&env)
        .env("PATH", "/job/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            report.spawn_error = Some(format!("{program}: {e}"));
            return report;
        }
    };
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let limit = Duration::from_secs(cmd.timeout_secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() > limit => {
                bpfcompat::process_group::kill(&child);
                let _ = child.wait();
                report.timed_out = true;
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                report.spawn_error = Some(e.to_string());
                break None;
            }
        }
    };
    // What the command left running in its group ends with it: a
    // background child holding its output would block the reads below.
    bpfcompat::process_group::kill(&child);
    if let Some(s) = status {
        report.exit_code = s.code();
        report.signal = s.signal();
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.stdout_tail = out.join().unwrap_or_default();
    report.stderr_tail = err.join().unwrap_or_default();
    report
}

/// Reads a stream to its end on a thread, keeping its last lines.
fn drain(stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
            .collect();
        tail(lines, OUTPUT_TAIL)
    })
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
}
