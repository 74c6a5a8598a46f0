//! The verifier's statistics for every program it accepts.
//!
//! Each program is loaded at the statistics log level into a small buffer
//! of its own, which costs the verifier a few lines of text. A program the
//! verifier refuses is loaded again at libbpf's default level so its
//! failure keeps the full log (see `validate`).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use bpfcompat_engine::wire::{Complexity, LOG_LEVEL_STATS};
use libbpf_rs::AsRawLibbpf;

/// Whether this kernel's verifier writes its statistics alone at
/// [`LOG_LEVEL_STATS`] (5.2 and later). Older verifiers take any non-zero
/// level as "everything", a log as long as the program's walk: asking for
/// it there would cost more than the figures are worth. Probed once.
pub fn stats_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(probe)
}

/// Loads `r0 = 0; exit` at the statistics level and reads what came back.
fn probe() -> bool {
    let mut insns = [libbpf_sys::bpf_insn::default(); 2];
    insns[0].code = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K: r0 = 0
    insns[1].code = 0x95; // BPF_JMP | BPF_EXIT
    let mut log = vec![0u8; 4096];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        log_level: LOG_LEVEL_STATS,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr().cast(),
        ..Default::default()
    };
    // SAFETY: the instructions, licence and log buffer outlive the call;
    // `opts.sz` is its own size.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_SOCKET_FILTER,
            std::ptr::null(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a new descriptor nothing else owns.
    drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let traced = text.lines().any(|l| l.starts_with("0: "));
    !traced && Complexity::from_verifier_log(text.lines()).is_some()
}

/// Bytes of log each program gets: the statistics are three lines.
const LOG_BYTES: usize = 16 * 1024;

/// The buffers the verifier writes each program's statistics to, which
/// must outlive the load. Buffers of our own also spare libbpf allocating
/// its 16 MiB default log per program.
pub struct StatsLogs(BTreeMap<String, Vec<u8>>);

impl StatsLogs {
    /// Asks for the statistics of every program that loads, except those
    /// `skip` names; nothing on a verifier without the statistics level.
    pub fn ask(open: &mut libbpf_rs::OpenObject, skip: impl Fn(&str) -> bool) -> StatsLogs {
        let mut logs = BTreeMap::new();
        if !stats_supported() {
            return StatsLogs(logs);
        }
        for mut p in open.progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            if !p.autoload() || skip(&name) {
                continue;
            }
            let mut buf = vec![0u8; LOG_BYTES];
            p.set_log_level(LOG_LEVEL_STATS);
            // SAFETY: the program is live; the buffer's heap allocation
            // stays put and alive in `logs` until the load is over.
            unsafe {
                libbpf_sys::bpf_program__set_log_buf(
                    p.as_libbpf_object().as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len() as u64,
                );
            }
            logs.insert(name, buf);
        }
        StatsLogs(logs)
    }

    /// Whether the verifier wrote anything for `program` (a refusal before
    /// verification, e.g. EPERM, leaves the log empty at every level).
    pub fn wrote(&self, program: &str) -> bool {
        self.0
            .get(program)
            .is_some_and(|b| b.first().is_some_and(|c| *c != 0))
    }

    /// Each loaded program's statistics, with its size: its instructions as
    /// submitted and, where the kernel reports it, its JIT image.
    pub fn read(&self, obj: &libbpf_rs::Object) -> BTreeMap<String, Complexity> {
        let mut found = BTreeMap::new();
        for p in obj.progs() {
            let name = p.name().to_string_lossy().into_owned();
            let Some(buf) = self.0.get(&name) else {
                continue;
            };
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            let text = String::from_utf8_lossy(&buf[..end]);
            let Some(mut c) = Complexity::from_verifier_log(text.lines()) else {
                continue;
            };
            c.insns = Some(p.insn_cnt() as u64);
            c.jited_bytes = jited_bytes(p.as_fd().as_raw_fd());
            found.insert(name, c);
        }
        found
    }
}

/// The JIT image's size from `bpf_prog_info`, when the kernel JITs.
fn jited_bytes(fd: i32) -> Option<u64> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is zeroed (no arrays asked for) and `len` is its size.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    (rc == 0 && info.jited_prog_len > 0).then_some(u64::from(info.jited_prog_len))
}
