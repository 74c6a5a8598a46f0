//! Starting the user's code in a guest apart from the agent: a PID
//! namespace and a mount namespace of its own, with `/proc` mounted afresh.
//!
//! Why: the agent holds the key its records are signed with
//! ([`crate::wire::channel`]); in its own PID namespace the user's process
//! cannot see the agent (no `/proc/1/mem`, no `/proc/1/fd`), so nothing it
//! writes on a serial port can pass for the agent's. And it is PID 1 of
//! that namespace: when it ends, the kernel ends every process it left
//! behind (a `setsid` child included), so none of them outlives the run.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

/// A started process.
#[derive(Debug)]
pub struct Spawned {
    /// Its PID as the agent sees it.
    pub pid: Pid,
    /// Why it shares the agent's namespaces, when it does (a kernel
    /// without PID namespaces): its leftovers are then only killed by group.
    pub not_isolated: Option<String>,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spawn<'a> {
    /// argv; the program is looked up on `PATH` from `env` when it has no `/`.
    pub argv: &'a [String],
    /// The whole environment.
    pub env: &'a [(String, String)],
    /// Its standard output and error (one descriptor keeps their order).
    pub output: &'a OwnedFd,
}

/// Starts `s` in namespaces of its own (see the module doc), its stdin
/// `/dev/null`, in a process group of its own; falls back to a plain child
/// where the kernel refuses the namespaces. An error when it cannot be
/// started at all (no such program, exec refused).
pub fn spawn(s: &Spawn) -> std::io::Result<Spawned> {
    start(s, None)
}

/// A process to be traced: before it execs, the child waits for `gate`
/// (called with its PID, once the tracer may attach); when that says so,
/// it installs `filter` and execs under it.
pub(crate) struct Gate<'a> {
    pub filter: &'a super::seccomp_filter::Filter,
    pub open: &'a mut dyn FnMut(Pid) -> bool,
}

/// [`spawn`], with the child held at the gate until it is traced.
pub(crate) fn spawn_gated(s: &Spawn, gate: Gate) -> std::io::Result<Spawned> {
    start(s, Some(gate))
}

fn start(s: &Spawn, gate: Option<Gate>) -> std::io::Result<Spawned> {
    let program = resolve(s)?;
    // Everything the child needs is made before the clone: after it, the
    // child may only make system calls (the agent has threads).
    let path = CString::new(program.as_os_str().as_bytes())?;
    let argv = cstrings(s.argv.iter().map(String::as_str))?;
    let env = cstrings(s.env.iter().map(|(k, v)| format!("{k}={v}")))?;
    let argv_ptrs = pointers(&argv);
    let env_ptrs = pointers(&env);
    let null = std::fs::File::open("/dev/null")?;
    // The child writes its exec error here; the write end closes on exec.
    let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The gate: one byte, `T` to be traced, anything else not.
    let gate_pipe = match &gate {
        Some(_) => Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?),
        None => None,
    };
    let child = Child {
        path: &path,
        argv: &argv_ptrs,
        env: &env_ptrs,
        stdin: null.as_raw_fd(),
        output: s.output.as_raw_fd(),
        errors: err_write.as_raw_fd(),
        gate: gate_pipe.as_ref().map(|(r, _)| r.as_raw_fd()),
        filter: gate.as_ref().map(|g| g.filter),
    };
    let flags = nix::libc::CLONE_NEWPID | nix::libc::CLONE_NEWNS;
    let (pid, not_isolated) = match clone(flags, &child) {
        Ok(pid) => (pid, None),
        Err(e) => (
            clone(0, &child)?,
            Some(format!("the kernel refused a PID namespace ({e})")),
        ),
    };
    drop(err_write);
    if let (Some(gate), Some((_, open))) = (gate, gate_pipe) {
        let word: &[u8] = if (gate.open)(pid) { b"T" } else { b"N" };
        let _ = nix::unistd::write(&open, word);
    }
    let mut errno = [0u8; 4];
    let got = nix::unistd::read(&err_read, &mut errno).unwrap_or(0);
    if got == 4 {
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(Spawned { pid, not_isolated })
}

/// The program's path: as given when it has a `/`, else the first
/// executable file of that name on the environment's `PATH`.
fn resolve(s: &Spawn) -> std::io::Result<PathBuf> {
    let name = s
        .argv
        .first()
        .ok_or_else(|| std::io::Error::other("the command is empty"))?;
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = s
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/sbin:/usr/bin:/sbin:/bin", |(_, v)| v.as_str());
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name}: not found on PATH {path}"),
            )
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn cstrings<S: AsRef<str>>(words: impl Iterator<Item = S>) -> std::io::Result<Vec<CString>> {
    words
        .map(|w| CString::new(w.as_ref()).map_err(std::io::Error::from))
        .collect()
}

fn pointers(v: &[CString]) -> Vec<*const nix::libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// What the child does between the clone and its exec, prepared.
struct Child<'a> {
    path: &'a CString,
    argv: &'a [*const nix::libc::c_char],
    env: &'a [*const nix::libc::c_char],
    stdin: i32,
    output: i32,
    errors: i32,
    /// Where the child waits to learn whether it is traced.
    gate: Option<i32>,
    filter: Option<&'a super::seccomp_filter::Filter>,
}

/// A fork (`clone` without a new stack) into `flags`' namespaces; the child
/// sets itself up and execs, or reports its errno and exits 127.
fn clone(flags: i32, c: &Child) -> std::io::Result<Pid> {
    // SAFETY: a clone without CLONE_VM is a fork: the child gets a copy of
    // this process's memory and runs on from here. It only calls
    // async-signal-safe functions on data prepared before (`c`), then execs
    // or exits.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_clone,
            (flags | nix::libc::SIGCHLD) as nix::libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(std::io::Error::last_os_error()),
        0 => in_child(flags, c),
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// The child's side of [`clone`]; never returns.
fn in_child(flags: i32, c: &Child) -> ! {
    use nix::libc;
    // SAFETY: system calls on prepared, NUL-terminated data; see `clone`.
    unsafe {
        if flags & libc::CLONE_NEWNS != 0 {
            // Its mounts are its own; a /proc of its PID namespace, so
            // the agent's processes are not there to read.
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
            {
                fail(c.errors);
            }
        }
        libc::dup2(c.stdin, 0);
        libc::dup2(c.output, 1);
        libc::dup2(c.output, 2);
        libc::setpgid(0, 0);
        // Rust ignores SIGPIPE, and an ignored signal stays ignored
        // across exec: the user's program gets the default back.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if let (Some(gate), Some(filter)) = (c.gate, c.filter) {
            let mut word = 0u8;
            while libc::read(gate, (&mut word as *mut u8).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            // Without the filter its calls would fail (a seccomp trace
            // with no tracer is ENOSYS): not traced then, but run.
            if word == b'T' && !filter.install() {
                fail(c.errors);
            }
        }
        libc::execve(c.path.as_ptr(), c.argv.as_ptr(), c.env.as_ptr());
        fail(c.errors)
    }
}

/// Reports errno on the error pipe and exits.
fn fail(errors: i32) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        let errno = *nix::libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        nix::libc::write(errors, bytes.as_ptr().cast(), 4);
        nix::libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_an_error_before_any_process() {
        let (_r, w) = nix::unistd::pipe().unwrap();
        let argv = ["no-such-program-here".to_string()];
        let env = [("PATH".to_string(), "/nonexistent".to_string())];
        let err = spawn(&Spawn {
            argv: &argv,
            env: &env,
            output: &w,
        })
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    }
}
