//! The runtime of a guest agent running as `/init` (PID 1): mount what BPF
//! needs, send records on the result port, power off.
//!
//! Nothing here may panic the guest silently: a failure to mount is a warning
//! the agent reports; the host decides what it means.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use nix::mount::{MsFlags, mount};

use crate::wire::Record;

/// The serial port that carries result records (the console is `ttyS0`).
pub const RESULT_PORT: &str = "/dev/ttyS1";

/// Filesystems a BPF loader expects, in mount order.
const MOUNTS: &[(&str, &str, &str)] = &[
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
    ("tmpfs", "/tmp", "tmpfs"),
    ("tmpfs", "/run", "tmpfs"),
    ("bpf", "/sys/fs/bpf", "bpf"),
    ("tracefs", "/sys/kernel/tracing", "tracefs"),
    ("debugfs", "/sys/kernel/debug", "debugfs"),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
    ("securityfs", "/sys/kernel/security", "securityfs"),
];

/// The active Linux security modules, in order (`lsm=` or CONFIG_LSM), as
/// securityfs lists them: `None` where securityfs is missing.
pub fn active_lsms() -> Option<String> {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Mounts every filesystem of [`MOUNTS`]; returns one warning per failure.
pub fn mount_all() -> Vec<String> {
    let mut warnings = Vec::new();
    for (source, target, fstype) in MOUNTS {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(
            Some(*source),
            *target,
            Some(*fstype),
            MsFlags::empty(),
            None::<&str>,
        ) {
            warnings.push(format!("mount {fstype} on {target}: {e}"));
        }
    }
    warnings
}

/// Loads the kernel modules shipped for this kernel (see
/// [`super::MODULES_DIR`]), in order, as a host's boot or the kernel's
/// on-demand loading would have; returns one warning per failure.
pub fn load_modules() -> Vec<String> {
    let dir = std::path::Path::new(super::MODULES_DIR);
    let Ok(order) = std::fs::read_to_string(dir.join("order")) else {
        return Vec::new();
    };
    let load = |name: &str| {
        File::open(dir.join(name))
            .map_err(|e| e.to_string())
            .and_then(|f| {
                nix::kmod::finit_module(&f, c"", nix::kmod::ModuleInitFlags::empty())
                    .or_else(|e| match e {
                        nix::errno::Errno::EEXIST => Ok(()),
                        e => Err(e),
                    })
                    .map_err(|e| e.to_string())
            })
    };
    // A module whose dependency is not loaded yet fails with ENOENT (unknown
    // symbols); dependencies differ between releases (virtio needs
    // virtio_ring on 6.1, not on 5.10), so the failures are tried again
    // while a pass loads something.
    let mut pending: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    loop {
        let before = pending.len();
        let mut failed = Vec::new();
        for name in pending {
            if let Err(e) = load(name) {
                failed.push((name, e));
            }
        }
        if failed.is_empty() || failed.len() == before {
            return failed
                .into_iter()
                .map(|(name, e)| format!("load module {name}: {e}"))
                .collect();
        }
        pending = failed.into_iter().map(|(name, _)| name).collect();
    }
}

/// The guest's network: `lo` up, as every host's boot does (a fresh guest
/// has it down, so a loader binding a socket, or XDP and tc programs on
/// `lo`, would fail for the guest's sake; the kernel gives it 127.0.0.1/8
/// and ::1 when it comes up), and the test interface [`TEST_INTERFACE`] up
/// where the `dummy` module created it.
pub fn network_up() -> Vec<String> {
    let mut warnings: Vec<String> = interface_up("lo")
        .err()
        .map(|e| e.to_string())
        .into_iter()
        .collect();
    if std::path::Path::new("/sys/class/net")
        .join(TEST_INTERFACE)
        .exists()
    {
        warnings.extend(interface_up(TEST_INTERFACE).err().map(|e| e.to_string()));
    }
    warnings
}

/// A second interface for programs and loaders that want one besides `lo`:
/// the `dummy` module creates it when it loads (`numdummies` defaults to 1).
pub const TEST_INTERFACE: &str = "dummy0";

/// Sets IFF_UP on the interface `name` (shorter than IFNAMSIZ).
fn interface_up(name: &str) -> Result<(), SetupError> {
    assert!(name.len() < nix::libc::IFNAMSIZ);
    // SAFETY: a plain socket used only for the two interface ioctls below
    // and closed after; `ifreq` is plain data and the name fits (asserted).
    unsafe {
        let sock = nix::libc::socket(nix::libc::AF_INET, nix::libc::SOCK_DGRAM, 0);
        if sock < 0 {
            return Err(SetupError::interface(name, "socket"));
        }
        let mut req: nix::libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().enumerate() {
            req.ifr_name[i] = b as nix::libc::c_char;
        }
        let mut result = Ok(());
        if nix::libc::ioctl(sock, nix::libc::SIOCGIFFLAGS, &mut req) != 0 {
            result = Err(SetupError::interface(name, "SIOCGIFFLAGS"));
        } else {
            req.ifr_ifru.ifru_flags |= nix::libc::IFF_UP as nix::libc::c_short;
            if nix::libc::ioctl(sock, nix::libc::SIOCSIFFLAGS, &req) != 0 {
                result = Err(SetupError::interface(name, "SIOCSIFFLAGS"));
            }
        }
        nix::libc::close(sock);
        result
    }
}

/// The result port, opened raw so the bytes arrive as written.
pub struct ResultPort {
    file: File,
    signer: crate::wire::channel::Signer,
}

impl ResultPort {
    /// Opens [`RESULT_PORT`].
    pub fn open() -> std::io::Result<ResultPort> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(RESULT_PORT)?;
        if let Ok(mut t) = nix::sys::termios::tcgetattr(&file) {
            nix::sys::termios::cfmakeraw(&mut t);
            let _ = nix::sys::termios::tcsetattr(&file, nix::sys::termios::SetArg::TCSANOW, &t);
        }
        Ok(ResultPort {
            file,
            signer: Default::default(),
        })
    }

    /// Sends one record and waits until it left the guest.
    pub fn send(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = self.signer.line(record);
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        let _ = nix::sys::termios::tcdrain(&self.file);
        Ok(())
    }
}

/// The prologue every guest `/init` runs (the agent and a `#[kernel_test]`
/// binary alike): mount what BPF needs, load the guest modules, bring the
/// network up, lift the memlock
/// limit old kernels charge BPF memory to, open the result port and say hello. Without a
/// result port nothing can be reported, so the guest powers off. `who`
/// prefixes the console lines (mount warnings) this writes.
pub fn start(who: &str) -> ResultPort {
    let mut port = prologue(who);
    hello(&mut port);
    port
}

/// [`start`] without the hello: what a guest does before it waits for its
/// job on the job disk (the hello follows the job, so that a guest restored
/// from a snapshot says it too).
pub fn prologue(who: &str) -> ResultPort {
    let mut warnings = mount_all();
    warnings.extend(load_modules());
    warnings.extend(network_up());
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    );
    let port = match ResultPort::open() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{who}: cannot open the result port: {e}");
            power_off();
        }
    };
    for w in &warnings {
        eprintln!("{who}: {w}");
    }
    port
}

/// How every guest `/init` begins: [`start`] when the job is in the
/// initramfs; for a guest restored from a saved machine, [`prologue`] (run
/// before the machine was saved), the job from the job disk, then the
/// hello. A job that cannot be received is reported and the guest powers off.
pub fn begin(who: &str) -> ResultPort {
    let mut port = prepare(who);
    hello(&mut port);
    port
}

/// [`begin`] without the hello: the guest is set up and has its job. The
/// hello draws the key the rest of the boot's records are signed with, so
/// only the process that sends them may say it.
pub fn prepare(who: &str) -> ResultPort {
    let mut port = prologue(who);
    if job_on_disk()
        && let Err(e) = receive_job(&mut port)
    {
        let _ = port.send(&match e {
            SetupError::NoJobDisk(device) => Record::NoJobDisk {
                device: device.display().to_string(),
            },
            e => Record::AgentError {
                message: e.to_string(),
            },
        });
        power_off();
    }
    port
}

/// Says hello: the agent runs, and what kernel this is.
pub fn hello(port: &mut ResultPort) {
    let _ = port.send(&Record::Hello {
        kernel_release: kernel_release(),
        kernel_btf: std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        lsm: active_lsms(),
        uptime_ms: uptime_ms(),
        modules_not_loaded: modules_not_loaded(),
    });
}

/// The modules shipped for this kernel that the kernel does not have
/// loaded (`/sys/module/NAME`): read at the hello, so a restored guest or
/// a build that took over says it as well as the one that loaded them.
fn modules_not_loaded() -> Vec<String> {
    let dir = std::path::Path::new(super::MODULES_DIR);
    let Ok(order) = std::fs::read_to_string(dir.join("order")) else {
        return Vec::new();
    };
    order
        .lines()
        .filter_map(|file| file.strip_suffix(".ko"))
        .map(|name| name.replace('-', "_"))
        .filter(|name| !std::path::Path::new("/sys/module").join(name).exists())
        .collect()
}

/// Whether this guest takes its job from the job disk (a snapshot guest)
/// rather than from its initramfs: the host says so on the command line.
pub fn job_on_disk() -> bool {
    std::env::var("BPFCOMPAT_JOB").as_deref() == Ok("disk")
}

/// Waits for the job on the job disk and unpacks it to `/job`, telling the
/// host first that the guest is ready to be saved.
pub fn receive_job(port: &mut ResultPort) -> Result<(), SetupError> {
    // The device shows up once the virtio drivers probed it; a kernel
    // without them can never read a job disk, so it is not saved.
    let device = std::path::Path::new(super::job_disk::DEVICE);
    let started = std::time::Instant::now();
    while !device.exists() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            return Err(SetupError::NoJobDisk(device.to_path_buf()));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = port.send(&Record::AwaitingJob {
        uptime_ms: uptime_ms(),
    });
    // A snapshot guest waits as long as the snapshot is kept; the host's
    // own limit ends a guest that never gets its job.
    let archive = super::job_disk::receive(
        super::job_disk::DEVICE,
        std::time::Duration::from_secs(24 * 3600),
    )
    .map_err(SetupError::ReadJob)?;
    super::job_disk::unpack(&archive, std::path::Path::new("/")).map_err(SetupError::UnpackJob)
}

/// A step of a guest's setup that failed.
#[derive(Debug)]
pub enum SetupError {
    /// The job disk never appeared: no virtio block driver in this kernel.
    NoJobDisk(std::path::PathBuf),
    /// The job disk could not be read.
    ReadJob(std::io::Error),
    /// The job on it could not be unpacked.
    UnpackJob(std::io::Error),
    /// An interface could not be brought up: which, and the call that failed.
    Interface {
        /// The interface.
        name: String,
        /// The call that failed (`socket`, `SIOCSIFFLAGS`).
        call: &'static str,
        /// The kernel's answer.
        error: std::io::Error,
    },
}

impl SetupError {
    /// The last OS error of `call` on interface `name`.
    fn interface(name: &str, call: &'static str) -> SetupError {
        SetupError::Interface {
            name: name.to_string(),
            call,
            error: std::io::Error::last_os_error(),
        }
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::NoJobDisk(device) => {
                f.write_str(&no_job_disk_text(&device.display().to_string()))
            }
            SetupError::ReadJob(e) => write!(f, "cannot read the job disk: {e}"),
            SetupError::UnpackJob(e) => write!(f, "cannot unpack the job: {e}"),
            SetupError::Interface { name, call, error } => {
                write!(f, "bring {name} up: {call}: {error}")
            }
        }
    }
}

impl std::error::Error for SetupError {}

/// What is said of a guest that can never read a job disk.
pub fn no_job_disk_text(device: &str) -> String {
    format!("no job disk: {device} never appeared (no virtio block driver in this kernel)")
}

/// Milliseconds since the kernel booted.
pub fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|s| (s * 1000.0) as u64)
        .unwrap_or(0)
}

/// `uname -r`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Syncs and powers the guest off; QEMU then exits.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Only reached if the reboot call failed: exiting PID 1 panics the kernel,
    // which `panic=-1` and `-no-reboot` turn into QEMU exiting.
    std::process::exit(1)
}
