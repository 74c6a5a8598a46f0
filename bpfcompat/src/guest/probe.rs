//! The kernel's own answer to whether it has a map type, a program type,
//! or a helper for a program type: each asked with the minimal valid
//! request libbpf's probes make (libbpf_probes.c), with raw `bpf()` calls,
//! for a guest without libbpf (a `#[kernel_test]` binary; the agent asks
//! libbpf itself). `None` where a minimal request is not enough (types
//! that need BTF or an attach target): no answer then, never a guess.
//!
//! Asked after the traced run, in the guest's init: never while the
//! user's loader runs, so its trace holds none of these.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::libc;

const MAP_CREATE: u32 = 0;
const PROG_LOAD: u32 = 5;
/// `ENOTSUPP`: what a struct_ops map with an invalid type says where the
/// kernel has struct_ops.
const ENOTSUPP: i32 = 524;

#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }

    fn u32(&mut self, at: usize, v: u32) -> &mut Attr {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(&mut self, at: usize, v: u64) -> &mut Attr {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
}

/// `bpf(cmd, attr)`: a descriptor, or the errno.
fn bpf(cmd: u32, attr: &Attr) -> Result<OwnedFd, i32> {
    // SAFETY: a valid attribute buffer of the size given.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_ptr(), attr.0.len()) };
    match ret {
        // SAFETY: a new descriptor the kernel gave this process.
        fd if fd >= 0 => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        _ => Err(nix::errno::Errno::last_raw()),
    }
}

fn map(map_type: u32, key: u32, value: u32, entries: u32, flags: u32) -> Attr {
    let mut a = Attr::new();
    a.u32(0, map_type)
        .u32(4, key)
        .u32(8, value)
        .u32(12, entries)
        .u32(16, flags);
    a
}

/// Whether the running kernel creates maps of type `t`.
pub fn map_type(t: u32) -> Option<bool> {
    const NO_PREALLOC: u32 = 1;
    const MMAPABLE: u32 = 1 << 10;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u32;
    let mut inner = None;
    let attr = match t {
        1..=6 | 8..=10 | 14..=18 | 20 | 25 => map(t, 4, 4, 1, 0),
        7 => map(t, 4, 8, 1, 0),
        11 => map(t, 8, 8, 1, NO_PREALLOC),
        12 | 13 => {
            let fd = bpf(MAP_CREATE, &map(1, 4, 4, 1, 0)).ok()?;
            let mut a = map(t, 4, 4, 1, 0);
            a.u32(20, std::os::fd::AsRawFd::as_raw_fd(&fd) as u32);
            inner = Some(fd);
            a
        }
        19 | 21 => map(t, 12, 4, 0, 0),
        22 | 23 | 30 => map(t, 0, 4, 1, 0),
        26 => {
            // An invalid struct type: ENOTSUPP where struct_ops exists.
            let mut a = map(t, 4, 4, 1, 0);
            a.u32(60, 1);
            a
        }
        27 | 31 => map(t, 0, 0, page, 0),
        33 => map(t, 0, 0, 1, MMAPABLE),
        // Local storage needs BTF; later types are not known here.
        _ => return None,
    };
    let answer = match bpf(MAP_CREATE, &attr) {
        Ok(_) => Some(true),
        Err(ENOTSUPP) if t == 26 => Some(true),
        Err(libc::EPERM) => None,
        Err(_) => Some(false),
    };
    drop(inner);
    answer
}

/// `r0 = 0; exit`, or `call id; exit`.
fn program(helper: Option<u32>) -> Vec<u8> {
    let first: [u8; 8] = match helper {
        Some(id) => {
            let mut i = [0x85, 0, 0, 0, 0, 0, 0, 0];
            i[4..].copy_from_slice(&id.to_le_bytes());
            i
        }
        None => [0xb7, 0, 0, 0, 0, 0, 0, 0],
    };
    [first, [0x95, 0, 0, 0, 0, 0, 0, 0]].concat()
}

/// Loads `insns` as a program of type `t` (with what that type needs),
/// its verifier log in `log`; `None` where the type needs more.
fn load(t: u32, insns: &[u8], log: &mut [u8]) -> Option<Result<OwnedFd, i32>> {
    let expected = match t {
        18 => 10, // cgroup_sock_addr: BPF_CGROUP_INET4_CONNECT
        20 => 16, // lirc_mode2: BPF_LIRC_MODE2
        25 => 21, // cgroup_sockopt: BPF_CGROUP_GETSOCKOPT
        30 => 36, // sk_lookup: BPF_SK_LOOKUP
        1 | 3..=17 | 19 | 21..=24 => 0,
        // kprobe: before 5.0 the kernel checks kern_version.
        2 => 0,
        _ => return None,
    };
    let mut a = Attr::new();
    a.u32(0, t)
        .u32(4, (insns.len() / 8) as u32)
        .u64(8, insns.as_ptr() as u64)
        .u64(16, c"GPL".as_ptr() as u64)
        .u32(68, expected);
    if !log.is_empty() {
        a.u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64);
    }
    if t == 2 {
        a.u32(40, kernel_version()?);
    }
    Some(bpf(PROG_LOAD, &a))
}

/// Whether the running kernel loads programs of type `t`.
pub fn prog_type(t: u32) -> Option<bool> {
    match load(t, &program(None), &mut [])? {
        Ok(_) => Some(true),
        Err(libc::EPERM) => None,
        Err(_) => Some(false),
    }
}

/// The helpers among `ids` the kernel says programs of type `t` cannot
/// call: its verifier does not know them for that type.
pub fn unsupported_helpers(t: u32, ids: &[u32]) -> Vec<u32> {
    ids.iter()
        .copied()
        .filter(|&id| {
            let mut log = vec![0u8; 4096];
            let refused = matches!(load(t, &program(Some(id)), &mut log), Some(Err(_)));
            let text = String::from_utf8_lossy(&log);
            refused && (text.contains("invalid func ") || text.contains("unknown func "))
        })
        .collect()
}

/// `LINUX_VERSION_CODE` of the running kernel, as a kprobe program must
/// state it before Linux 5.0 (Ubuntu's upstream version is in
/// `/proc/version_signature`).
fn kernel_version() -> Option<u32> {
    let signature = std::fs::read_to_string("/proc/version_signature").ok();
    let release = match signature
        .as_deref()
        .and_then(|s| s.split_whitespace().last())
    {
        Some(v) => v.to_string(),
        None => nix::sys::utsname::uname()
            .ok()?
            .release()
            .to_string_lossy()
            .into_owned(),
    };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next().unwrap_or(0));
    Some((a << 16) + (b << 8) + c.min(255))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// This machine's kernel is recent: what it has, the probes find; what
    /// no kernel has, they refuse.
    #[test]
    fn the_running_kernel_answers_for_its_types_and_helpers() {
        if !root() {
            eprintln!("skipped: probes need root");
            return;
        }
        for t in [1, 2, 22, 27, 30] {
            assert_eq!(map_type(t), Some(true), "map type {t}");
        }
        assert_eq!(map_type(1000), None);
        assert_eq!(prog_type(1), Some(true));
        assert_eq!(prog_type(5), Some(true));
        // bpf_loop (181) exists for tracepoints; helper 100000 nowhere.
        assert_eq!(unsupported_helpers(5, &[181, 100_000]), vec![100_000]);
    }

    #[test]
    fn kprobe_version_codes_follow_the_release() {
        assert!(kernel_version().is_some_and(|v| v > 4 << 16));
    }
}
