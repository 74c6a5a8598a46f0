//! Ending a child together with everything it started.
//!
//! Children that may fork (QEMU behind a wrapper, a user's command, a
//! trigger, the agent's worker) are spawned with `process_group(0)`; a
//! timeout or cancellation then signals the whole group, so no grandchild
//! outlives its limit or keeps a pipe open that a reader waits on.

use std::process::Child;

/// SIGKILL to the process group `child` leads (spawned with
/// `process_group(0)`, so its pid is the group id). Harmless when the group
/// is already gone.
pub fn kill(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
/// Whether a process with this PID exists (`kill(pid, 0)`; one of another
/// user's counts as alive): what the tool left behind names its PID, and
/// only a dead process's leftovers are removed.
pub fn alive(pid: i32) -> bool {
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// The PID in a leftover's name (`<prefix><pid>-…`), where that process is
/// gone: what a dead run or check left, which the next one may remove.
pub fn left_by_the_dead(name: &str, prefixes: &[&str]) -> Option<i32> {
    let pid = prefixes
        .iter()
        .find_map(|p| name.strip_prefix(p))?
        .split('-')
        .next()?
        .parse::<i32>()
        .ok()?;
    (!alive(pid)).then_some(pid)
}

/// A mark carried in a child's environment and inherited by everything it
/// starts: a descendant that left the child's process group (`setsid`) is
/// still found by it, and ended with the group. A descendant that clears its
/// environment as well escapes the mark (said in docs/security.md).
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    value: String,
}

impl Mark {
    /// The environment variable that carries the mark.
    pub(crate) const VAR: &'static str = "BPFCOMPAT_GROUP";

    /// A mark no other child of any process has: this process's PID and a
    /// count.
    pub fn new() -> Mark {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Mark {
            value: format!("{}.{n}", std::process::id()),
        }
    }

    /// The value to set as [`Mark::VAR`] on the child.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// SIGKILL to every process (but this one) whose environment carries
    /// this mark; returns how many. Runs a few passes, as a stray may fork
    /// while it is looked for. Processes it may not read are not its own.
    pub(crate) fn kill_strays(&self) -> usize {
        let entry = format!("{}={}", Mark::VAR, self.value);
        let mut killed = 0;
        for _ in 0..3 {
            let found = marked(entry.as_bytes());
            if found.is_empty() {
                break;
            }
            for pid in found {
                if nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
                {
                    killed += 1;
                }
            }
        }
        killed
    }
}

impl Default for Mark {
    fn default() -> Self {
        Mark::new()
    }
}

/// The live processes (not this one, not zombies) with `entry` among their
/// environment's entries.
fn marked(entry: &[u8]) -> Vec<i32> {
    use std::io::Read;
    // An environment is bounded by the kernel's argument limit; this bounds
    // a read of one that is not.
    const ENVIRON_LIMIT: u64 = 4 << 20;
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut buf = Vec::new();
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if pid == me {
            continue;
        }
        buf.clear();
        let read = std::fs::File::open(format!("/proc/{pid}/environ"))
            .and_then(|f| f.take(ENVIRON_LIMIT).read_to_end(&mut buf));
        if read.is_ok() && buf.split(|b| *b == 0).any(|e| e == entry) {
            found.push(pid);
        }
    }
    found
}

#[cfg(test)]
mod leftover_tests {
    use super::*;

    #[test]
    fn a_leftover_is_the_deads_only() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id() as i32;
        child.wait().unwrap();
        let me = std::process::id();
        let prefixes = [".staging-", ".saving-"];
        assert_eq!(
            left_by_the_dead(&format!(".saving-{dead}-x"), &prefixes),
            Some(dead)
        );
        assert_eq!(
            left_by_the_dead(&format!(".staging-{me}-x"), &prefixes),
            None
        );
        assert_eq!(left_by_the_dead(".saving-notapid-x", &prefixes), None);
        assert_eq!(left_by_the_dead(&format!("other-{dead}"), &prefixes), None);
    }
}
