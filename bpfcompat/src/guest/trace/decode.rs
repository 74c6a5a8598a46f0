//! A traced call's arguments, read from the loader's memory: `union
//! bpf_attr` for `bpf()`, `struct perf_event_attr` for `perf_event_open`.
//! Offsets are the UAPI's (include/uapi/linux/bpf.h and perf_event.h); an
//! older kernel's shorter attribute reads as zeros past its end, as the
//! kernel itself treats it.

use crate::wire::trace::{AttachCall, Call, MAX_NAME, MapCall, PerfCall, ProgCall};

/// Reads the traced process's memory.
pub(super) trait Memory {
    /// `len` bytes at `addr`, or `None` where they cannot be read.
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;

    /// A NUL-terminated string at `addr`, at most `max` bytes, lossy.
    fn read_str(&self, addr: u64, max: usize) -> Option<String> {
        if addr == 0 {
            return None;
        }
        // Page by page, so a short string near the end of a mapping reads.
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            let room = 4096 - (at % 4096) as usize;
            let chunk = self.read(at, room.min(max - out.len()))?;
            match chunk.iter().position(|b| *b == 0) {
                Some(end) => {
                    out.extend_from_slice(&chunk[..end]);
                    break;
                }
                None => out.extend_from_slice(&chunk),
            }
            at += chunk.len() as u64;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The largest `bpf_attr` read (the kernel's is smaller).
const ATTR_MAX: usize = 256;
/// The most instructions scanned for helper calls (1M, the verifier's own
/// limit): 8 MiB.
const INSNS_MAX: u32 = 1 << 20;

/// What the calling process's descriptors are, as traced calls made them:
/// a program's name, a perf event's probe.
pub(super) struct Descriptors<'a> {
    pub program: &'a dyn Fn(u32) -> Option<String>,
    pub probe: &'a dyn Fn(u32) -> Option<String>,
}

/// `BPF_PERF_EVENT`: a link to a perf event (a probe).
const BPF_PERF_EVENT: u32 = 41;

/// A call seen at its entry, waiting for the kernel's answer.
#[derive(Debug)]
pub(super) struct Entry {
    pub call: Call,
    /// Where the loader's verifier (or BTF) log buffer is, and its size.
    pub log: Option<(u64, u32)>,
    /// A `bpf()` call's attribute: its address and size (for a replay).
    pub attr: Option<(u64, u64)>,
}

/// Little-endian fields of a byte buffer; zero past its end.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        for (i, v) in b.iter_mut().enumerate() {
            *v = self.0.get(at + i).copied().unwrap_or(0);
        }
        u32::from_le_bytes(b)
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from(self.u32(at)) | u64::from(self.u32(at + 4)) << 32
    }

    /// A fixed-size, NUL-padded name (`map_name`, `prog_name`).
    fn name(&self, at: usize, len: usize) -> String {
        let bytes: Vec<u8> = (at..at + len)
            .map(|i| self.0.get(i).copied().unwrap_or(0))
            .take_while(|b| *b != 0)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A `bpf(cmd, attr, size)` call at its entry; `None` for a command not
/// recorded or an attribute that cannot be read. `program` names the
/// program behind a descriptor of the calling process.
pub(super) fn bpf(
    cmd: u64,
    attr: u64,
    size: u64,
    mem: &dyn Memory,
    fds: &Descriptors,
) -> Option<Entry> {
    let program = fds.program;
    let bytes = mem.read(attr, (size as usize).min(ATTR_MAX))?;
    let a = Fields(&bytes);
    let (call, log) = match cmd {
        0 => (
            Call::MapCreate(MapCall {
                map_type: a.u32(0),
                key_size: a.u32(4),
                value_size: a.u32(8),
                max_entries: a.u32(12),
                flags: a.u32(16),
                name: a.name(28, 16),
                type_supported: None,
            }),
            None,
        ),
        5 => {
            let insn_cnt = a.u32(4);
            let helpers = match mem.read(a.u64(8), insn_cnt.min(INSNS_MAX) as usize * 8) {
                Some(insns) => helper_calls(&insns),
                None => Vec::new(),
            };
            let (level, log_size, log_buf) = (a.u32(24), a.u32(28), a.u64(32));
            let log_asked = level != 0 && log_size != 0 && log_buf != 0;
            (
                Call::ProgLoad(ProgCall {
                    prog_type: a.u32(0),
                    insn_cnt,
                    license: mem.read_str(a.u64(16), 64).unwrap_or_default(),
                    name: a.name(48, 16),
                    expected_attach_type: a.u32(68),
                    attach_btf_id: a.u32(108),
                    attach_elsewhere: a.u32(112) != 0,
                    helpers,
                    log_asked,
                    ..ProgCall::default()
                }),
                log_asked.then_some((log_buf, log_size)),
            )
        }
        18 => {
            let (log_buf, log_size, level) = (a.u64(8), a.u32(20), a.u32(24));
            (
                Call::BtfLoad {
                    size: a.u32(16),
                    log: Vec::new(),
                },
                (level != 0 && log_size != 0 && log_buf != 0).then_some((log_buf, log_size)),
            )
        }
        6 | 7 => (
            Call::Pin {
                get: cmd == 7,
                path: mem.read_str(a.u64(0), MAX_NAME).unwrap_or_default(),
            },
            None,
        ),
        8 => (
            Call::Attach(AttachCall {
                how: "prog_attach".into(),
                program: program(a.u32(4)),
                attach_type: Some(a.u32(8)),
                target: None,
            }),
            None,
        ),
        17 => (
            Call::Attach(AttachCall {
                how: "raw_tracepoint_open".into(),
                program: program(a.u32(8)),
                attach_type: None,
                target: mem.read_str(a.u64(0), MAX_NAME),
            }),
            None,
        ),
        28 => (
            Call::Attach(AttachCall {
                how: "link_create".into(),
                program: program(a.u32(0)),
                attach_type: Some(a.u32(8)),
                target: (a.u32(8) == BPF_PERF_EVENT)
                    .then(|| (fds.probe)(a.u32(4)))
                    .flatten(),
            }),
            None,
        ),
        _ => return None,
    };
    Some(Entry {
        call,
        log,
        attr: Some((attr, size)),
    })
}

/// The PMU type numbers of the dynamic kprobe and uprobe PMUs.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pmus {
    pub kprobe: Option<u32>,
    pub uprobe: Option<u32>,
}

impl Pmus {
    /// Read from sysfs (kernels before 4.17 have neither: libbpf then
    /// makes probes through tracefs, and they open as tracepoints).
    pub(super) fn read() -> Pmus {
        let read = |pmu: &str| {
            std::fs::read_to_string(format!("/sys/bus/event_source/devices/{pmu}/type"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Pmus {
            kprobe: read("kprobe"),
            uprobe: read("uprobe"),
        }
    }
}

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;

/// A `perf_event_open(attr, ...)` at its entry; only probes and
/// tracepoints are recorded.
pub(super) fn perf_event(attr: u64, mem: &dyn Memory, pmus: Pmus) -> Option<Entry> {
    let bytes = mem.read(attr, 72)?;
    let a = Fields(&bytes);
    let (pmu, config) = (a.u32(0), a.u64(8));
    let ret = config & 1 != 0;
    let (probe, target) = if Some(pmu) == pmus.kprobe {
        let func = mem.read_str(a.u64(56), MAX_NAME);
        let target = func.unwrap_or_else(|| format!("{:#x}", a.u64(64)));
        (if ret { "kretprobe" } else { "kprobe" }, target)
    } else if Some(pmu) == pmus.uprobe {
        let path = mem.read_str(a.u64(56), MAX_NAME).unwrap_or_default();
        let target = format!("{path}+{:#x}", a.u64(64));
        (if ret { "uretprobe" } else { "uprobe" }, target)
    } else if pmu == PERF_TYPE_TRACEPOINT {
        ("tracepoint", format!("id {config}"))
    } else {
        return None;
    };
    Some(Entry {
        call: Call::PerfEvent(PerfCall {
            probe: probe.into(),
            target,
            pmu,
        }),
        log: None,
        attr: None,
    })
}

/// `ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)` at its entry.
pub(super) fn set_bpf(perf_fd: u64, prog_fd: u64, fds: &Descriptors) -> Entry {
    Entry {
        call: Call::Attach(AttachCall {
            how: "perf_event_set_bpf".into(),
            program: (fds.program)(prog_fd as u32),
            attach_type: None,
            target: (fds.probe)(perf_fd as u32),
        }),
        log: None,
        attr: None,
    }
}

/// The helper IDs a program's instructions call (`BPF_CALL` with source
/// register 0), each once, in order of first call.
pub(super) fn helper_calls(insns: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for insn in insns.chunks_exact(8) {
        let (code, src) = (insn[0], insn[1] >> 4);
        let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        if code == 0x85 && src == 0 && imm > 0 && !out.contains(&(imm as u32)) {
            out.push(imm as u32);
        }
    }
    out
}

/// The end of a log the kernel wrote into the loader's buffer: up to the
/// first NUL, its last `keep` lines, each clipped.
pub(super) fn log_tail(mem: &dyn Memory, buf: u64, size: u32, keep: usize) -> Vec<String> {
    // The kernel caps a log at 16 MiB-ish on old kernels, 4 GiB on new
    // ones; 16 MiB is read at most.
    let len = (size as usize).min(16 << 20);
    match mem.read(buf, len) {
        Some(bytes) => log_lines(&bytes, keep),
        None => Vec::new(),
    }
}

/// A verifier log buffer's text: up to the first NUL, its last `keep`
/// non-empty lines, each clipped to 1024 characters.
pub(super) fn log_lines(bytes: &[u8], keep: usize) -> Vec<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let lines: Vec<String> = String::from_utf8_lossy(&bytes[..end])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(1024).collect())
        .collect();
    crate::wire::tail(lines, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const NONE: Descriptors = Descriptors {
        program: &|_| None,
        probe: &|_| None,
    };

    /// Memory made of a few buffers at fixed addresses.
    struct Fake(BTreeMap<u64, Vec<u8>>);

    impl Memory for Fake {
        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            let (base, bytes) = self.0.range(..=addr).next_back()?;
            let from = (addr - base) as usize;
            (from < bytes.len()).then(|| bytes[from..(from + len).min(bytes.len())].to_vec())
        }
    }

    fn attr(fields: &[(usize, &[u8])]) -> Vec<u8> {
        let mut a = vec![0u8; 128];
        for (at, bytes) in fields {
            a[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        a
    }

    #[test]
    fn a_map_create_reads_type_sizes_and_name() {
        let a = attr(&[
            (0, &27u32.to_le_bytes()),
            (12, &4096u32.to_le_bytes()),
            (28, b"events\0"),
        ]);
        let mem = Fake(BTreeMap::from([(0x1000, a)]));
        let e = bpf(0, 0x1000, 72, &mem, &NONE).unwrap();
        let Call::MapCreate(m) = e.call else {
            panic!("{e:?}")
        };
        assert_eq!(
            (m.map_type, m.max_entries, m.name.as_str()),
            (27, 4096, "events")
        );
        // A short attribute (an old kernel's size) reads zeros past it.
        let e = bpf(0, 0x1000, 20, &mem, &NONE).unwrap();
        let Call::MapCreate(m) = e.call else { panic!() };
        assert_eq!(m.name, "");
    }

    #[test]
    fn a_program_load_reads_its_helpers_license_and_log_buffer() {
        // r1 = 1; call 181 (bpf_loop); call 181; call pseudo-func (src 1); exit
        let insns: Vec<u8> = [
            [0xb7, 0x01, 0, 0, 1, 0, 0, 0],
            [0x85, 0x00, 0, 0, 181, 0, 0, 0],
            [0x85, 0x00, 0, 0, 181, 0, 0, 0],
            [0x85, 0x10, 0, 0, 2, 0, 0, 0],
            [0x95, 0x00, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        let a = attr(&[
            (0, &26u32.to_le_bytes()),
            (4, &5u32.to_le_bytes()),
            (8, &0x2000u64.to_le_bytes()),
            (16, &0x3000u64.to_le_bytes()),
            (24, &1u32.to_le_bytes()),
            (28, &100u32.to_le_bytes()),
            (32, &0x4000u64.to_le_bytes()),
            (48, b"count_loop\0"),
            (68, &24u32.to_le_bytes()),
        ]);
        let mem = Fake(BTreeMap::from([
            (0x1000, a),
            (0x2000, insns),
            (0x3000, b"GPL\0".to_vec()),
            (
                0x4000,
                b"0: R1=ctx\nunknown func bpf_loop#181\n\0garbage".to_vec(),
            ),
        ]));
        let e = bpf(5, 0x1000, 128, &mem, &NONE).unwrap();
        let Call::ProgLoad(p) = &e.call else {
            panic!("{e:?}")
        };
        assert_eq!(p.name, "count_loop");
        assert_eq!(p.helpers, vec![181]);
        assert_eq!(p.license, "GPL");
        assert!(p.log_asked);
        assert_eq!(e.log, Some((0x4000, 100)));
        assert_eq!(
            log_tail(&mem, 0x4000, 100, 1),
            vec!["unknown func bpf_loop#181".to_string()]
        );
    }

    #[test]
    fn an_attach_names_the_program_behind_its_descriptor() {
        let a = attr(&[(0, &7u32.to_le_bytes()), (8, &24u32.to_le_bytes())]);
        let mem = Fake(BTreeMap::from([(0x1000, a)]));
        let names = |fd: u32| (fd == 7).then(|| "handle_exec".to_string());
        let fds = Descriptors {
            program: &names,
            probe: &|_| None,
        };
        let e = bpf(28, 0x1000, 64, &mem, &fds).unwrap();
        let Call::Attach(a) = e.call else { panic!() };
        assert_eq!(a.program.as_deref(), Some("handle_exec"));
        assert_eq!(a.attach_type, Some(24));
        assert!(bpf(1, 0x1000, 64, &mem, &fds).is_none());
    }
}
