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
