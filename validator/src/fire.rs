//! Fire mode: attached is not enough. With BPF run statistics on, run a
//! trigger while every program is attached, then read how often each ran.
//! A program that attached but never ran is NOT_FIRED (an inlined function,
//! a renamed tracepoint, a hook the workload does not reach).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use bpfcompat_engine::wire::{Fire, Hook, Outcome};
use libbpf_rs::Object;

/// What the built-in trigger does, as reports name it.
pub const BUILTIN: &str = "built-in workload (getpid, file open/read/write/unlink, mkdir/rmdir, fork+exec, sleep, UDP and TCP on lo, in a guest a direct read from its disk)";

/// Runs the trigger (the user's command, else the built-in workload) with
/// every program attached and returns each attached program's verdict.
pub fn measure(
    obj: &Object,
    attach: &BTreeMap<String, Outcome>,
    attached: &crate::attach::Attached,
    trigger: Option<&[String]>,
    cancel: &bpfcompat_engine::cancel::Cancel,
) -> Result<BTreeMap<String, Fire>, TriggerError> {
    let programs: Vec<Counted> = obj
        .progs()
        .filter(|p| p.autoload())
        .map(|p| Counted {
            name: p.name().to_string_lossy().into_owned(),
            section: p.section().to_string_lossy().into_owned(),
            fd: p.as_fd().as_raw_fd(),
        })
        .collect();
    // Cgroup programs on a cgroup of their own run for its processes only:
    // the trigger runs in there. Where this process cannot move in, they
    // cannot be reached, which is not a verdict on them.
    let inside = attached.enter_cgroup();
    let cgroup_reached = !matches!(inside, Some(Err(_)));
    let fired = measure_programs(
        &programs,
        attach,
        Stimulus {
            site: attached.site,
            cgroup_reached,
            extra: &|| attached.stimulate(),
        },
        trigger,
        cancel,
    );
    drop(inside);
    fired
}

/// A loaded program whose runs are counted, by its descriptor (libbpf's or
/// aya's).
pub struct Counted {
    pub name: String,
    pub section: String,
    pub fd: std::os::fd::RawFd,
}

/// What reaches the programs besides the trigger.
pub struct Stimulus<'a> {
    /// Where the validation runs (the built-in workload reads a guest's disk).
    pub site: crate::Site,
    /// Whether the trigger runs where cgroup programs see it.
    pub cgroup_reached: bool,
    /// The validator's own targets, exercised after the trigger.
    pub extra: &'a dyn Fn() -> crate::attach::Reach,
}

/// [`measure`] on any loader's programs.
pub fn measure_programs(
    programs: &[Counted],
    attach: &BTreeMap<String, Outcome>,
    stimulus: Stimulus,
    trigger: Option<&[String]>,
    cancel: &bpfcompat_engine::cancel::Cancel,
) -> Result<BTreeMap<String, Fire>, TriggerError> {
    let stats = StatsOn::enable();
    let before = run_counts(programs);
    let used = match trigger {
        Some(argv) => run_trigger(argv, cancel)?,
        None => {
            for _ in 0..3 {
                builtin_workload(stimulus.site);
            }
            BUILTIN.to_string()
        }
    };
    let reach = (stimulus.extra)();
    let after = run_counts(programs);
    let mut out = BTreeMap::new();
    for p in programs {
        if attach.get(&p.name) != Some(&Outcome::Ok) {
            continue;
        }
        let (name, section) = (p.name.clone(), p.section.clone());
        let runs = after
            .get(&name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(&name).copied().unwrap_or(0));
        if matches!(stats, StatsOn::Off) {
            // No run count moves on such a kernel: zero says nothing.
            let reason = "this kernel keeps no BPF run statistics (kernel.bpf_stats_enabled, \"bpf: enable program stats\", Linux 5.1)".to_string();
            out.insert(name, Fire::Unmeasured { reason });
            continue;
        }
        let hook = Hook::new(&section);
        let unreached = (hook.is_cgroup() && !stimulus.cgroup_reached)
            || reach.missed.iter().any(|m| hook.has_prefix(m));
        let fire = if runs > 0 {
            Fire::Fired { runs }
        } else if !unreached
            && (trigger.is_some()
                || hook.workload_reaches()
                || reach.reached.iter().any(|k| hook.has_prefix(k)))
        {
            Fire::NotFired {
                trigger: used.clone(),
            }
        } else {
            Fire::UnknownTrigger { section }
        };
        out.insert(name, fire);
    }
    Ok(out)
}

/// `run_cnt` of each program, by its descriptor.
fn run_counts(programs: &[Counted]) -> BTreeMap<String, u64> {
    programs
        .iter()
        .filter_map(|p| {
            let mut info = libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
            // SAFETY: info and len describe a valid, writable buffer.
            let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(p.fd, &mut info, &mut len) };
            (ret == 0).then(|| (p.name.clone(), info.run_cnt))
        })
        .collect()
}

/// Every BPF program loaded in the kernel: its id, name, type and
/// `run_cnt` (the loader's, found by what was not loaded before it ran).
pub(crate) fn loaded_programs() -> Vec<(u32, String, u32, u64)> {
    let mut out = Vec::new();
    let mut id = 0u32;
    // SAFETY: libbpf's wrappers of BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID
    // and BPF_OBJ_GET_INFO_BY_FD on buffers of the sizes given; each fd is
    // owned and closed here.
    unsafe {
        while libbpf_sys::bpf_prog_get_next_id(id, &mut id) == 0 {
            let fd = libbpf_sys::bpf_prog_get_fd_by_id(id);
            if fd < 0 {
                continue;
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut info = libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
            if libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) == 0 {
                let name: Vec<u8> = info
                    .name
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                let name = String::from_utf8_lossy(&name).into_owned();
                out.push((id, name, info.type_, info.run_cnt));
            }
        }
    }
    out
}

/// Whether statistics are on: BPF run counts mean something.
impl StatsOn {
    pub(crate) fn counting(&self) -> bool {
        !matches!(self, StatsOn::Off)
    }
}

/// BPF run statistics on while this lives: the BPF_ENABLE_STATS descriptor
/// (5.8+), else the `kernel.bpf_stats_enabled` sysctl, restored on drop.
pub(crate) enum StatsOn {
    Fd(#[allow(dead_code, reason = "held for its lifetime")] OwnedFd),
    Sysctl(String),
    Off,
}

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl StatsOn {
    pub(crate) fn enable() -> StatsOn {
        // SAFETY: no pointers.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor we own.
            return StatsOn::Fd(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        match std::fs::read_to_string(SYSCTL) {
            Ok(old) if std::fs::write(SYSCTL, "1").is_ok() => {
                StatsOn::Sysctl(old.trim().to_string())
            }
            _ => StatsOn::Off,
        }
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        if let StatsOn::Sysctl(old) = self {
            let _ = std::fs::write(SYSCTL, old.as_bytes());
        }
    }
}

/// The user's trigger command, with a time limit, in namespaces of its own
/// (it cannot read the agent, and what it leaves ends with it); its output
/// goes to the console. A trigger that cannot start is an error of the
/// trigger: programs that did not run then say nothing about the kernel.
fn run_trigger(
    argv: &[String],
    cancel: &bpfcompat_engine::cancel::Cancel,
) -> Result<String, TriggerError> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let shown = format!("command `{}`", argv.join(" "));
    if argv.is_empty() {
        return Err(TriggerError::Empty);
    }
    let cannot = |e: std::io::Error| TriggerError::CannotRun {
        shown: shown.clone(),
        source: e,
    };
    let console = nix::unistd::dup(std::io::stderr()).map_err(|e| cannot(e.into()))?;
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.push((
        "PATH".into(),
        "/job/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ));
    let spawned =
        bpfcompat_engine::guest::isolate::spawn(&bpfcompat_engine::guest::isolate::Spawn {
            argv,
            env: &env,
            output: &console,
        })
        .map_err(cannot)?;
    let started = std::time::Instant::now();
    loop {
        match waitpid(spawned.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive)
                if started.elapsed() > Duration::from_secs(30) || cancel.is_cancelled() =>
            {
                // PID 1 of its namespace: what it started ends with it.
                let _ = nix::sys::signal::kill(spawned.pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(spawned.pid, None);
                break;
            }
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    Ok(shown)
}

/// Why the fire-mode trigger did not run: the trigger's fault, no verdict
/// on the programs.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// An empty command.
    #[error("the fire-mode trigger is empty")]
    Empty,
    /// It could not start.
    #[error(
        "the fire-mode trigger {shown} cannot run: {source} (hint: a guest has only the agent and what --loader or --bin ship; trigger with a shipped binary, or use the built-in workload)"
    )]
    CannotRun {
        /// The command as shown.
        shown: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Ordinary activity that reaches the common hooks; in a guest also one
/// read past the page cache from its disk, for the block layer's hooks (on
/// a host its disks are not touched).
pub(crate) fn builtin_workload(site: crate::Site) {
    if site == crate::Site::Guest {
        direct_read();
    }
    let _ = nix::unistd::getpid();
    let dir = std::env::temp_dir().join(format!("bpfcompat-trigger-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("f");
    let _ = std::fs::write(&file, b"bpfcompat");
    let _ = std::fs::read(&file);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&dir);
    if let Ok(exe) = std::env::current_exe() {
        let _ = Command::new(exe).arg("__bpfcompat-noop").output();
    }
    std::thread::sleep(Duration::from_millis(20));
    if let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") {
        let _ = s.send_to(b"bpfcompat", "127.0.0.1:9");
    }
    let _ = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:9".parse().expect("address"),
        Duration::from_millis(100),
    );
}

/// One 4 KiB read with O_DIRECT from the first disk the machine has (a
/// warm guest's job disk): a request through the block layer, so
/// `block_rq_*` tracepoints and block functions run. Nothing where there is
/// no disk (a cold guest's files live in its initramfs).
fn direct_read() {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return;
    };
    let disks = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["loop", "ram", "zram", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        });
    for disk in disks {
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECT)
            .open(format!("/dev/{disk}"))
        else {
            continue;
        };
        // O_DIRECT wants a buffer aligned to the device's block size.
        let mut v = vec![0u8; 8192];
        let at = v.as_ptr().align_offset(4096);
        if f.read(&mut v[at..at + 4096]).is_ok() {
            return;
        }
    }
}
