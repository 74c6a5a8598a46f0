//! The seccomp filter that stops a traced loader at the calls worth
//! recording, and only those: every other system call runs untouched, so
//! tracing costs nothing while the loader reads its ring buffer or writes
//! its output. Socket sends and receives stop it too (netlink requests
//! attach XDP and tc programs): one stop each, two where a netlink answer
//! is awaited.
//!
//! It is classic BPF, run by seccomp: it loads no eBPF program, so it
//! neither shows among the programs a loader loaded nor needs `bpf()`, and
//! it exists on every kernel the product boots (Linux 3.5 and later).

use nix::libc;

/// `bpf()` commands recorded: map create, program load, pin, get, program
/// attach, raw tracepoint open, BTF load, link create.
pub(super) const TRACED_BPF_COMMANDS: &[u32] = &[0, 5, 6, 7, 8, 17, 18, 28];

/// `PERF_EVENT_IOC_SET_BPF`: a program attached to a perf event.
pub(super) const PERF_EVENT_IOC_SET_BPF: u32 = 0x4004_2408;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_TRACE: u32 = 0x7ff0_0000;

// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0: u32 = 16;
const ARG1: u32 = 24;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// The filter, built before the loader's process is made (after the fork
/// it may only make system calls).
pub(crate) struct Filter {
    insns: Vec<libc::sock_filter>,
}

impl Filter {
    /// The filter for x86_64 system call numbers.
    pub(crate) fn new() -> Filter {
        let load = |at| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, at);
        let ret = |k| stmt(libc::BPF_RET | libc::BPF_K, k);
        let mut f = vec![
            load(ARCH),
            jeq(AUDIT_ARCH_X86_64, 1, 0),
            ret(RET_ALLOW),
            load(NR),
        ];
        // Each test: on a match, jump to its check; else fall through.
        let bpf_at = f.len();
        f.push(jeq(libc::SYS_bpf as u32, 0, 0));
        let perf_at = f.len();
        f.push(jeq(libc::SYS_perf_event_open as u32, 0, 0));
        let ioctl_at = f.len();
        f.push(jeq(libc::SYS_ioctl as u32, 0, 0));
        // Netlink requests (XDP and tc attach) and their answers: every
        // send and receive on a socket is looked at, netlink or not.
        let mut socket_at = Vec::new();
        for nr in [
            libc::SYS_sendto,
            libc::SYS_sendmsg,
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
        ] {
            socket_at.push(f.len());
            f.push(jeq(nr as u32, 0, 0));
        }
        f.push(ret(RET_ALLOW));
        // bpf(): only the commands that create or attach something.
        let bpf_check = f.len();
        f.push(load(ARG0));
        for (i, cmd) in TRACED_BPF_COMMANDS.iter().enumerate() {
            let left = (TRACED_BPF_COMMANDS.len() - i) as u8;
            // A match jumps over the remaining tests and the allow.
            f.push(jeq(*cmd, left, 0));
        }
        f.push(ret(RET_ALLOW));
        let trace = f.len();
        f.push(ret(RET_TRACE));
        let ioctl_check = f.len();
        f.push(load(ARG1));
        f.push(jeq(PERF_EVENT_IOC_SET_BPF, 0, 1));
        f.push(ret(RET_TRACE));
        f.push(ret(RET_ALLOW));
        let to = |from: usize, to: usize| (to - from - 1) as u8;
        f[bpf_at].jt = to(bpf_at, bpf_check);
        f[perf_at].jt = to(perf_at, trace);
        f[ioctl_at].jt = to(ioctl_at, ioctl_check);
        for at in socket_at {
            f[at].jt = to(at, trace);
        }
        Filter { insns: f }
    }

    /// Installs it on the calling thread (the forked child, before exec).
    /// Async-signal-safe: one `prctl`. The caller is root, so no
    /// `no_new_privs` is needed (setuid programs keep working).
    pub(crate) fn install(&self) -> bool {
        let prog = libc::sock_fprog {
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at instructions that outlive the call.
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_filter() {
        let f = Filter::new();
        for (i, insn) in f.insns.iter().enumerate() {
            if insn.code as u32 & 0x07 == libc::BPF_JMP {
                assert!(i + 1 + (insn.jt as usize) < f.insns.len());
                assert!(i + 1 + (insn.jf as usize) < f.insns.len());
            }
        }
        assert!(f.insns.len() < 64);
    }
}
