//! The verifier's words for a refused program whose loader asked for none:
//! the same load made again by the tracer, with a log. The program's
//! descriptors (its maps, its BTF, what it attaches to) are the loader's:
//! they are lent with `pidfd_getfd` (Linux 5.6), which the tracer may use on
//! its tracee, and the instructions are rewritten to name the lent copies.
//! Loads that hand the kernel descriptors some other way (an `fd_array`,
//! CO-RE relocations done by the kernel) are not replayed: said, not guessed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;
use nix::unistd::Pid;

use super::decode::Memory;

/// The size of the log the replay asks for.
const LOG_BYTES: usize = 4 << 20;

/// Why a refused load could not be replayed, or the log its replay got.
pub(super) enum Replayed {
    /// The kernel's log for the same load.
    Log(Vec<String>),
    /// Not replayed, and why.
    Not(String),
}

/// A refused load ready to be made again: its attributes, instructions,
/// license and BTF records copied, the descriptors it names lent. Made
/// only once it is known the loader will not ask again with a log itself
/// (libbpf and aya retry a refused load with one): preparing is cheap, a
/// verifier pass under emulation is not.
pub(super) struct Prepared {
    attr: Vec<u8>,
    size: usize,
    insns: Vec<u8>,
    license: String,
    records: Vec<(usize, Vec<u8>)>,
    /// Held until the load: the loader may close its own.
    _lender: Lender,
}

/// Prepares the `bpf(BPF_PROG_LOAD)` at `attr` (`size` bytes) of `pid`
/// (its thread group's leader) for a replay; why not, when it cannot be.
pub(super) fn prepare(
    pid: Pid,
    mem: &dyn Memory,
    attr: u64,
    size: u64,
) -> Result<Prepared, NotReplayed> {
    try_prepare(pid, mem, attr, size)
}

/// Why a refused load is not made again.
#[derive(Debug)]
pub(super) enum NotReplayed {
    /// A part of the load could not be read from the loader's memory.
    Unreadable(&'static str),
    /// The load hands the kernel descriptors a replay does not rewrite.
    KernelDescriptors,
    /// An instruction count no program has.
    Instructions(usize),
    /// The kernel cannot lend the loader's descriptors (before 5.6).
    NoLending {
        /// `pidfd_open` or `pidfd_getfd`.
        call: &'static str,
        /// The loader's descriptor asked for (`pidfd_getfd`).
        fd: Option<u32>,
        /// The kernel's answer.
        error: std::io::Error,
    },
}

impl std::fmt::Display for NotReplayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReplayed::Unreadable(what) => write!(f, "{what} could not be read"),
            NotReplayed::KernelDescriptors => f.write_str(
                "the load passes descriptors in an fd_array or CO-RE relocations to the kernel, which a replay does not rewrite",
            ),
            NotReplayed::Instructions(n) => write!(f, "{n} instructions"),
            NotReplayed::NoLending {
                call,
                fd: None,
                error,
            } => write!(
                f,
                "this kernel cannot lend the loader's descriptors ({call}: {error}; Linux 5.6 can)"
            ),
            NotReplayed::NoLending {
                call,
                fd: Some(fd),
                error,
            } => write!(
                f,
                "this kernel cannot lend the loader's descriptor {fd} ({call}: {error}; Linux 5.6 can)"
            ),
        }
    }
}

impl Prepared {
    /// Loads it with a log; `keep`: how many of the log's last lines.
    pub(super) fn load(mut self, keep: usize) -> Replayed {
        let mut log = vec![0u8; LOG_BYTES];
        let a = &mut self.attr;
        for (ptr, bytes) in &self.records {
            put_u64(a, *ptr, bytes.as_ptr() as u64);
        }
        put_u64(a, 8, self.insns.as_ptr() as u64);
        put_u64(a, 16, self.license.as_ptr() as u64);
        put_u32(a, 24, 1);
        put_u32(a, 28, log.len() as u32);
        put_u64(a, 32, log.as_mut_ptr() as u64);
        // SAFETY: every pointer in the attribute points at a buffer of this
        // value or this function that outlives the call; the size given is
        // the loader's, within the buffer.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, a.as_ptr(), self.size) };
        if fd >= 0 {
            // SAFETY: the program the replay loaded: closed at once.
            drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            return Replayed::Not("the same load with a log was accepted (the refusal depended on something of the loader's at that moment)".into());
        }
        let lines = super::decode::log_lines(&log, keep);
        match lines.is_empty() {
            true => Replayed::Not("the kernel wrote no log for it".into()),
            false => Replayed::Log(lines),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |v| u32::from_le_bytes(v.try_into().unwrap_or([0; 4])))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The loader's descriptors, lent to the tracer.
struct Lender {
    pidfd: OwnedFd,
    lent: Vec<(u32, OwnedFd)>,
}

impl Lender {
    fn new(pid: Pid) -> Result<Lender, NotReplayed> {
        // SAFETY: pidfd_open on a process this thread traces.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        if fd < 0 {
            return Err(NotReplayed::NoLending {
                call: "pidfd_open",
                fd: None,
                error: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: a new descriptor the kernel gave this process.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Lender {
            pidfd,
            lent: Vec::new(),
        })
    }

    /// This process's copy of the loader's descriptor `theirs`.
    fn lend(&mut self, theirs: u32) -> Result<u32, NotReplayed> {
        if let Some((_, ours)) = self.lent.iter().find(|(t, _)| *t == theirs) {
            return Ok(ours.as_raw_fd() as u32);
        }
        // SAFETY: pidfd_getfd with a pidfd this value owns.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_pidfd_getfd,
                self.pidfd.as_raw_fd(),
                theirs as i32,
                0,
            )
        };
        if fd < 0 {
            return Err(NotReplayed::NoLending {
                call: "pidfd_getfd",
                fd: Some(theirs),
                error: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: a new descriptor the kernel gave this process.
        let ours = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let raw = ours.as_raw_fd() as u32;
        self.lent.push((theirs, ours));
        Ok(raw)
    }
}

fn try_prepare(pid: Pid, mem: &dyn Memory, attr: u64, size: u64) -> Result<Prepared, NotReplayed> {
    let size = (size as usize).min(256);
    let mut a = mem
        .read(attr, size)
        .ok_or(NotReplayed::Unreadable("its attributes"))?;
    a.resize(256, 0);
    if u64_at(&a, 120) != 0 || u64_at(&a, 128) != 0 {
        return Err(NotReplayed::KernelDescriptors);
    }
    let insn_cnt = u32_at(&a, 4) as usize;
    if insn_cnt == 0 || insn_cnt > 1 << 20 {
        return Err(NotReplayed::Instructions(insn_cnt));
    }
    let mut insns = mem
        .read(u64_at(&a, 8), insn_cnt * 8)
        .filter(|i| i.len() == insn_cnt * 8)
        .ok_or(NotReplayed::Unreadable("its instructions"))?;
    let license = mem.read_str(u64_at(&a, 16), 128).unwrap_or_default() + "\0";
    let mut lender = Lender::new(pid)?;
    // Map references: 64-bit loads of a map's descriptor or value.
    let mut i = 0;
    while i < insn_cnt {
        let (code, src) = (insns[i * 8], insns[i * 8 + 1] >> 4);
        if code == 0x18 && (src == 1 || src == 2) {
            let theirs =
                u32::from_le_bytes(insns[i * 8 + 4..i * 8 + 8].try_into().unwrap_or([0; 4]));
            let ours = lender.lend(theirs)?;
            insns[i * 8 + 4..i * 8 + 8].copy_from_slice(&ours.to_le_bytes());
            i += 2;
        } else {
            i += 1;
        }
    }
    // Its BTF, and the program or BTF object it attaches to.
    for at in [72, 112] {
        let theirs = u32_at(&a, at);
        if theirs != 0 {
            let ours = lender.lend(theirs)?;
            put_u32(&mut a, at, ours);
        }
    }
    // Its BTF's function and line records.
    let mut records = Vec::new();
    for (ptr, rec, cnt) in [(80, 76, 88), (96, 92, 104)] {
        let (addr, n) = (
            u64_at(&a, ptr),
            u32_at(&a, rec) as usize * u32_at(&a, cnt) as usize,
        );
        if addr != 0 && n > 0 {
            let bytes = mem
                .read(addr, n.min(64 << 20))
                .filter(|b| b.len() == n)
                .ok_or(NotReplayed::Unreadable("its BTF records"))?;
            records.push((ptr, bytes));
        }
    }
    Ok(Prepared {
        attr: a,
        size,
        insns,
        license,
        records,
        _lender: lender,
    })
}
