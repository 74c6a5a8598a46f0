//! Validating an object the way aya loads it: aya creates every map when it
//! loads the object, then each program is loaded on its own. Used for
//! objects libbpf cannot open (aya's legacy `maps` section) or when the
//! configuration asks for aya. The same records come out as from the libbpf
//! validator, so classification is shared: a refused map is probed for its
//! type, a refused program for its type and helpers.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use aya::maps::MapError;
use aya::programs::{CgroupAttachMode, Program, ProgramError, TcAttachType, XdpMode};
use aya::util::KernelVersion;
use aya::{Btf, BtfError, EbpfError};
use bpfcompat_engine::wire::{
    Count, Fault, Fixups, Hook, MapReport, Mode, ObjectReport, Outcome, ProgramReport, StepFailure,
    tail,
};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::cgroup::CgroupTarget;
use crate::clsact::Clsact;
use crate::fixups::FixupError;
use crate::options::{Options, Source};
use crate::pair::NetDevice;
use crate::sys;

/// aya's loading, as an aya project's loader does it.
pub(crate) struct Aya;

impl crate::options::Loader for Aya {
    fn validate(&self, name: &str, source: Source, opts: &Options) -> ObjectReport {
        match source {
            Source::Bytes(b) => validate(name, b, opts),
            Source::Path(p) => match std::fs::read(p) {
                Ok(b) => validate(name, &b, opts),
                Err(e) => ObjectReport {
                    object: name.to_string(),
                    object_error: Some(StepFailure {
                        error: format!("cannot read {}: {e}", p.display()),
                        ..StepFailure::default()
                    }),
                    ..ObjectReport::default()
                },
            },
        }
    }
}

/// Validates the object's bytes with aya on the running kernel.
fn validate(name: &str, bytes: &[u8], opts: &Options) -> ObjectReport {
    let mut report = ObjectReport {
        object: name.to_string(),
        ..ObjectReport::default()
    };
    let parsed = match aya_obj::Object::parse(bytes) {
        Ok(o) => o,
        Err(e) => {
            report.object_error = Some(plain_failure(&format!("aya cannot parse the object: {e}")));
            return report;
        }
    };
    let sections = program_sections(bytes);
    let mut map_types = BTreeMap::new();
    for (map_name, m) in &parsed.maps {
        map_types.insert(map_name.clone(), m.map_type());
        report.maps.push(MapReport {
            name: map_name.clone(),
            map_type: sys::map_type_name(m.map_type()),
            type_supported: None,
            declared: [m.max_entries(), m.key_size(), m.value_size()],
            flags: m.map_flags(),
            loads_without_link: None,
            mmapable: None,
            create: Outcome::Ok,
        });
    }
    for prog_name in parsed.programs.keys() {
        report.programs.push(ProgramReport {
            name: prog_name.clone(),
            section: sections.get(prog_name).cloned().unwrap_or_default(),
            prog_type: String::new(),
            type_supported: None,
            helpers: helpers_of(&parsed, prog_name),
            load: skipped("not attempted"),
            attach: skipped("not attempted"),
            fire: None,
            optional: false,
            complexity: None,
            insn_count: None,
            stand_in: None,
        });
    }
    report.maps.sort_by(|a, b| a.name.cmp(&b.name));
    report.programs.sort_by(|a, b| a.name.cmp(&b.name));
    let pin_dir = pin_dir(&parsed, &mut report);
    // Declared before the programs, so dropped after their links.
    let mut targets = Targets {
        clsact: None,
        device: None,
        cgroup: None,
        site: opts.site,
    };
    let kernel_btf = OnceCell::new();
    let mut loader = aya::EbpfLoader::new();
    if let Some(dir) = &pin_dir {
        loader.default_map_pin_directory(dir.path());
    }
    // The project's options, as its aya loader would apply them.
    let custom_btf = match &opts.btf_custom_path {
        None => None,
        Some(path) => match Btf::parse_file(path, aya::Endianness::default()) {
            Ok(btf) => Some(btf),
            Err(e) => {
                report.object_error = Some(plain_failure(&format!(
                    "aya cannot read the BTF file {}: {e}",
                    path.display()
                )));
                return report;
            }
        },
    };
    if let Some(btf) = &custom_btf {
        loader.btf(Some(btf));
    }
    let globals = match globals(bytes, &opts.fixups) {
        Ok(g) => g,
        Err(e) => {
            report.fault = Some(Fault::Configuration {
                message: e.to_string(),
            });
            return report;
        }
    };
    for (name, value) in &globals {
        loader.override_global(name, value.as_slice(), true);
    }
    let cpus = sys::possible_cpus();
    for (name, m) in &opts.fixups.maps {
        if let Some(n) = m.max_entries {
            loader.map_max_entries(
                name,
                match n {
                    Count::Fixed(n) => n,
                    Count::Cpus => cpus,
                },
            );
        }
    }
    report.assumptions.extend(not_replayed(opts));
    let mut ebpf = match loader.load(bytes) {
        Ok(e) => e,
        Err(EbpfError::MapError(MapError::CreateError { name, io_error })) => {
            let supported = map_types.get(&name).and_then(|t| sys::probe_map_type(*t));
            let btf_defined = matches!(parsed.maps.get(&name), Some(aya_obj::Map::Btf(_)));
            map_refused(&mut report, &name, &io_error, supported, btf_defined);
            return report;
        }
        Err(e) => {
            report.object_error = Some(plain_failure(&format!("aya: {}", with_causes(&e))));
            return report;
        }
    };
    if let Some(btf) = custom_btf {
        let _ = kernel_btf.set(Ok(btf));
    }
    let mut report_notes = Vec::new();
    for p in &mut report.programs {
        let Some(program) = ebpf.program_mut(&p.name) else {
            continue;
        };
        p.prog_type = libbpf_type_name(program).to_string();
        let fixup = opts.fixups.programs.get(&p.name);
        if fixup.and_then(|f| f.autoload) == Some(false) {
            p.load = skipped("autoload is off in the configuration");
            p.attach = skipped("not loaded");
            continue;
        }
        // Configured targets stand where the section would name one, in the
        // loader's order: a BTF target is resolved at load, others at attach.
        let configured = fixup.and_then(|f| f.attach_target.as_ref());
        let placeholder = configured.is_none() && fixup.and_then(|f| f.placeholder) == Some(true);
        let kind = Hook::new(&p.section).kind().to_string();
        let sections: Vec<String> = match configured {
            Some(t) => t.all().iter().map(|t| format!("{kind}/{t}")).collect(),
            // The loader's placeholder: a stand-in of its kind where the
            // load needs a target.
            None if placeholder && needs_btf_target(program) => {
                bpfcompat_engine::wire::FENTRY_STAND_INS
                    .iter()
                    .map(|t| format!("{kind}/{t}"))
                    .collect()
            }
            None => vec![p.section.clone()],
        };
        let mut chosen = 0;
        for (i, section) in sections.iter().enumerate() {
            chosen = i;
            p.load = load(program, section, &kernel_btf);
            if p.load == Outcome::Ok || !needs_btf_target(program) {
                break;
            }
        }
        // As on the libbpf path: what the kernel's probes say about a refused
        // program's type and helpers decides the specific code.
        if let (Outcome::Failed(f), Some(t)) = (&mut p.load, sys::prog_type_by_name(&p.prog_type)) {
            f.unsupported_helpers = crate::evidence::unsupported_helpers(t, &p.helpers);
            p.type_supported = sys::probe_prog_type(t);
        }
        if placeholder && needs_btf_target(program) {
            p.stand_in = Hook::new(&sections[chosen]).target().map(str::to_string);
        }
        p.attach = match (&p.load, opts.mode) {
            (Outcome::Ok, Mode::Load) => skipped("attach not requested"),
            (Outcome::Ok, _) if placeholder => Outcome::Skipped {
                reason: bpfcompat_engine::wire::placeholder_attach(&p.section),
            },
            (Outcome::Ok, _) if needs_btf_target(program) => {
                attach(program, &sections[chosen], &mut targets)
            }
            (Outcome::Ok, _) => {
                let mut outcome = skipped("not attached");
                for (i, section) in sections.iter().enumerate() {
                    chosen = i;
                    outcome = attach(program, section, &mut targets);
                    if outcome == Outcome::Ok {
                        break;
                    }
                }
                outcome
            }
            _ => skipped("not loaded"),
        };
        let got = p.attach == Outcome::Ok || (p.load == Outcome::Ok && needs_btf_target(program));
        if let (Some(t), true) = (configured, chosen > 0 && got) {
            report_notes.push(crate::fixups::next_choice(&p.name, t.all(), chosen));
        }
    }
    report.assumptions.extend(report_notes);
    if opts.mode == Mode::Fire {
        fire(&ebpf, &mut report, opts);
    }
    report.assumptions.extend(crate::attach::placement_notes(
        targets.device.as_ref().and_then(|d| d.as_ref().ok()),
        targets
            .cgroup
            .as_ref()
            .and_then(|c| c.as_ref())
            .and_then(|c| c.as_ref().ok()),
    ));
    report
}

/// Fire mode: the trigger runs with the attached programs, which are
/// judged by their run counts as on the libbpf path. On a host, cgroup
/// programs sit on a cgroup of their own the trigger does not run in: no
/// verdict on them there.
fn fire(ebpf: &aya::Ebpf, report: &mut ObjectReport, opts: &Options) {
    use std::os::fd::{AsFd, AsRawFd};
    let attach: BTreeMap<String, Outcome> = report
        .programs
        .iter()
        .map(|p| (p.name.clone(), p.attach.clone()))
        .collect();
    let counted: Vec<crate::fire::Counted> = report
        .programs
        .iter()
        .filter_map(|p| {
            let fd = ebpf.program(&p.name)?.fd().ok()?;
            Some(crate::fire::Counted {
                name: p.name.clone(),
                section: p.section.clone(),
                fd: fd.as_fd().as_raw_fd(),
            })
        })
        .collect();
    let nothing = || crate::attach::Reach {
        reached: Vec::new(),
        missed: Vec::new(),
    };
    let stimulus = crate::fire::Stimulus {
        site: opts.site,
        cgroup_reached: opts.site == crate::Site::Guest,
        extra: &nothing,
    };
    match crate::fire::measure_programs(
        &counted,
        &attach,
        stimulus,
        opts.trigger.as_deref(),
        &opts.cancel,
    ) {
        Ok(mut fired) => {
            for p in &mut report.programs {
                p.fire = fired.remove(&p.name);
            }
        }
        Err(e) => {
            report.fault = Some(Fault::Configuration {
                message: e.to_string(),
            })
        }
    }
}

/// The private directory aya pins by-name maps in (removed afterwards),
/// with a note per such map; `None` when the object pins none.
fn pin_dir(parsed: &aya_obj::Object, report: &mut ObjectReport) -> Option<crate::pinning::PinDir> {
    let pinned: Vec<&String> = parsed
        .maps
        .iter()
        .filter(|(_, m)| m.pinning() == aya_obj::maps::PinningType::ByName)
        .map(|(name, _)| name)
        .collect();
    let dir = (!pinned.is_empty())
        .then(crate::pinning::PinDir::new)
        .flatten();
    if dir.is_some() {
        report
            .assumptions
            .extend(pinned.iter().map(|m| crate::pinning::note(m)));
    }
    dir
}

/// Records that aya stopped at map `name`, which the kernel refused: the
/// maps after it were not tried and no program could load.
fn map_refused(
    report: &mut ObjectReport,
    name: &str,
    io_error: &std::io::Error,
    supported: Option<bool>,
    btf_defined: bool,
) {
    for m in &mut report.maps {
        m.create = if m.name == name {
            m.type_supported = supported;
            let mut f = io_failure(&format!("map `{name}`: failed to create"), io_error);
            // What aya asked for: a BTF-defined map goes with its BTF type
            // IDs (aya's bpf_create_map), fields older kernels do not know.
            if btf_defined {
                f.libbpf_log.push(format!(
                    "aya: map `{name}` is BTF-defined (.maps): created with its BTF key and value type IDs"
                ));
            }
            Outcome::Failed(f)
        } else {
            skipped("aya creates maps in order and stopped at another")
        };
    }
    for p in &mut report.programs {
        p.load = skipped(&format!(
            "needs the object's maps; map `{name}` was refused"
        ));
        p.attach = skipped("not loaded");
    }
}

/// libbpf's name of the program's type, which the probes and the
/// classification speak.
fn libbpf_type_name(program: &Program) -> &'static str {
    match program {
        Program::KProbe(_) | Program::UProbe(_) => "kprobe",
        Program::TracePoint(_) => "tracepoint",
        Program::SocketFilter(_) => "socket_filter",
        Program::Xdp(_) => "xdp",
        Program::SchedClassifier(_) => "sched_cls",
        Program::RawTracePoint(_) => "raw_tracepoint",
        Program::PerfEvent(_) => "perf_event",
        Program::BtfTracePoint(_) | Program::FEntry(_) | Program::FExit(_) | Program::Iter(_) => {
            "tracing"
        }
        Program::Lsm(_) | Program::LsmCgroup(_) => "lsm",
        Program::CgroupSkb(_) => "cgroup_skb",
        Program::CgroupSock(_) => "cgroup_sock",
        Program::CgroupSockAddr(_) => "cgroup_sock_addr",
        Program::CgroupSockopt(_) => "cgroup_sockopt",
        Program::CgroupSysctl(_) => "cgroup_sysctl",
        Program::CgroupDevice(_) => "cgroup_device",
        Program::SockOps(_) => "sock_ops",
        Program::SkMsg(_) => "sk_msg",
        Program::SkSkb(_) => "sk_skb",
        Program::SkLookup(_) => "sk_lookup",
        Program::ReusePortSocketFilter(_) => "sk_reuseport",
        Program::FlowDissector(_) => "flow_dissector",
        Program::LircMode2(_) => "lirc_mode2",
        _ => "",
    }
}

/// Loads one program with aya: ok, the kernel's refusal with its verifier
/// log, or skipped where aya needs arguments only the loader has. Programs
/// that attach to a BTF type (fentry, fexit, LSM, BTF tracepoints,
/// iterators) are resolved, as aya's loaders do, against the running
/// kernel's BTF by the target their section names (aya-ebpf's macros write
/// it there).
fn load(
    program: &mut Program,
    section: &str,
    kernel_btf: &OnceCell<Result<Btf, BtfError>>,
) -> Outcome {
    if needs_btf_target(program) {
        let Some(target) = Hook::new(section).target() else {
            return skipped(&format!(
                "set by the loader: section `{section}` names no BTF target"
            ));
        };
        let btf = match kernel_btf.get_or_init(Btf::from_sys_fs) {
            Ok(btf) => btf,
            Err(e) => return Outcome::Failed(btf_unreadable(target, e)),
        };
        return match load_on_btf(program, target, btf) {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::Failed(program_failure(&e)),
        };
    }
    let result = match program {
        Program::KProbe(p) => p.load(),
        Program::TracePoint(p) => p.load(),
        Program::SocketFilter(p) => p.load(),
        Program::Xdp(p) => p.load(),
        Program::SchedClassifier(p) => p.load(),
        Program::RawTracePoint(p) => p.load(),
        Program::PerfEvent(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::CgroupSkb(p) => p.load(),
        Program::CgroupSock(p) => p.load(),
        Program::CgroupSockAddr(p) => p.load(),
        Program::CgroupSockopt(p) => p.load(),
        Program::CgroupSysctl(p) => p.load(),
        Program::CgroupDevice(p) => p.load(),
        Program::SockOps(p) => p.load(),
        Program::SkMsg(p) => p.load(),
        Program::SkSkb(p) => p.load(),
        Program::SkLookup(p) => p.load(),
        Program::ReusePortSocketFilter(p) => p.load(),
        Program::FlowDissector(p) => p.load(),
        Program::LircMode2(p) => p.load(),
        other => {
            return skipped(&format!(
                "aya loads {:?} programs with arguments only their loader knows (a BTF target): judge it in command mode",
                other.prog_type()
            ));
        }
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(program_failure(&e)),
    }
}

fn needs_btf_target(program: &Program) -> bool {
    matches!(
        program,
        Program::FEntry(_)
            | Program::FExit(_)
            | Program::Lsm(_)
            | Program::LsmCgroup(_)
            | Program::BtfTracePoint(_)
            | Program::Iter(_)
    )
}

fn load_on_btf(program: &mut Program, target: &str, btf: &Btf) -> Result<(), ProgramError> {
    match program {
        Program::FEntry(p) => p.load(target, btf),
        Program::FExit(p) => p.load(target, btf),
        Program::Lsm(p) => p.load(target, btf),
        Program::LsmCgroup(p) => p.load(target, btf),
        Program::BtfTracePoint(p) => p.load(target, btf),
        Program::Iter(p) => p.load(target, btf),
        _ => unreachable!("needs_btf_target holds"),
    }
}

/// The kernel's BTF could not be read: aya cannot resolve `target`, as the
/// project's loader could not on this kernel.
fn btf_unreadable(target: &str, e: &BtfError) -> StepFailure {
    let cause = std::error::Error::source(e).map_or(String::new(), |s| format!(": {s}"));
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let message = format!(
        "aya: resolving `{target}` in the kernel's BTF (/sys/kernel/btf/vmlinux): {e}{cause}"
    );
    match io {
        Some(io) => StepFailure {
            errno: io.raw_os_error(),
            ..plain_failure(&message)
        },
        None => plain_failure(&message),
    }
}

/// Attaches a loaded program through aya's own calls, which choose a BPF
/// link or the older way (netlink, BPF_PROG_ATTACH) by the kernel's release,
/// as the project's loader would: tracepoints, raw tracepoints and kprobes
/// where the section names them, programs on a BTF target where they were
/// loaded for it, XDP and tc programs and cgroup programs (LSM cgroup ones
/// too) where the libbpf path puts them.
fn attach(program: &mut Program, section: &str, targets: &mut Targets) -> Outcome {
    let hook = Hook::new(section);
    let result = match (program, hook.target()) {
        (Program::TracePoint(p), Some(_)) => match hook.tracepoint() {
            Some((category, name)) => p.attach(category, name).map(drop),
            None => return skipped("set by the loader: the section names no tracepoint"),
        },
        (Program::KProbe(p), Some(function)) => p.attach(function, 0).map(drop),
        (Program::RawTracePoint(p), Some(name)) => p.attach(name).map(drop),
        (Program::FEntry(p), _) => p.attach().map(drop),
        (Program::FExit(p), _) => p.attach().map(drop),
        (Program::Lsm(p), _) => p.attach().map(drop),
        (Program::BtfTracePoint(p), _) => p.attach().map(drop),
        (Program::Iter(p), _) => p.attach().map(drop),
        (program @ (Program::Xdp(_) | Program::SchedClassifier(_)), _) => {
            let site = targets.site;
            let device = match targets.device.get_or_insert_with(|| NetDevice::new(site)) {
                Ok(device) => device,
                Err(e) => {
                    let why = format!("no device of its own to attach to: {e}");
                    return Outcome::Failed(StepFailure::unprepared(why));
                }
            };
            match program {
                Program::Xdp(p) => p.attach(device.name(), XdpMode::default()).map(drop),
                Program::SchedClassifier(p) => {
                    // Before 6.6 aya attaches through netlink, to the clsact
                    // qdisc its loader adds first; from 6.6 through a tcx link.
                    let tcx =
                        KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
                    if !tcx && targets.clsact.is_none() {
                        match Clsact::add(device.ifindex()) {
                            Ok(q) => targets.clsact = Some(q),
                            Err(e) => {
                                return Outcome::Failed(io_failure("adding a clsact qdisc", &e));
                            }
                        }
                    }
                    p.attach(device.name(), TcAttachType::Ingress).map(drop)
                }
                _ => unreachable!("matched above"),
            }
        }
        (program, _) if is_cgroup(program) => {
            let site = targets.site;
            let cgroup = match targets
                .cgroup
                .get_or_insert_with(|| CgroupTarget::new(site))
            {
                None => return skipped("no cgroup v2 hierarchy is mounted here to attach to"),
                Some(Err(e)) => {
                    let why = format!("no cgroup of its own to attach to: {e}");
                    return Outcome::Failed(StepFailure::unprepared(why));
                }
                Some(Ok(target)) => target.dir(),
            };
            match attach_cgroup(program, cgroup) {
                Some(result) => result,
                None => {
                    return skipped(&format!(
                        "set by the loader: section `{section}` names no direction"
                    ));
                }
            }
        }
        (_, None) => {
            return skipped(&format!(
                "set by the loader: section `{section}` names no target"
            ));
        }
        _ => return skipped("aya attaches this type with its loader's arguments"),
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(program_failure(&e)),
    }
}

/// What the object's programs were attached to, kept until they are
/// detached: the device of [`NetDevice`] and the clsact qdisc tc filters
/// need on it before tcx, the cgroup of [`CgroupTarget`] (each made for the
/// first program that needs it).
struct Targets {
    // Dropped in this order: the qdisc before its device.
    clsact: Option<Clsact>,
    device: Option<std::io::Result<NetDevice>>,
    cgroup: Option<Option<std::io::Result<CgroupTarget>>>,
    site: crate::Site,
}

fn is_cgroup(program: &Program) -> bool {
    matches!(
        program,
        Program::CgroupSkb(_)
            | Program::CgroupSock(_)
            | Program::CgroupSockAddr(_)
            | Program::CgroupSockopt(_)
            | Program::CgroupSysctl(_)
            | Program::CgroupDevice(_)
            | Program::SockOps(_)
            | Program::LsmCgroup(_)
    )
}

/// Attaches a cgroup program to `cgroup` in aya's default mode; `None` for
/// a `cgroup/skb` program, whose direction its loader chooses.
fn attach_cgroup(
    program: &mut Program,
    cgroup: &std::fs::File,
) -> Option<Result<(), ProgramError>> {
    let mode = CgroupAttachMode::default();
    Some(match program {
        Program::CgroupSkb(p) => {
            let direction = (*p.expected_attach_type())?;
            p.attach(cgroup, direction, mode).map(drop)
        }
        Program::CgroupSock(p) => p.attach(cgroup, mode).map(drop),
        Program::CgroupSockAddr(p) => p.attach(cgroup, mode).map(drop),
        Program::CgroupSockopt(p) => p.attach(cgroup, mode).map(drop),
        Program::CgroupSysctl(p) => p.attach(cgroup, mode).map(drop),
        Program::CgroupDevice(p) => p.attach(cgroup, mode).map(drop),
        Program::SockOps(p) => p.attach(cgroup, mode).map(drop),
        Program::LsmCgroup(p) => p.attach(cgroup).map(drop),
        _ => return None,
    })
}

/// The configured initial values of global variables, encoded to their
/// symbols' sizes (aya overrides a variable by its symbol, whose size must
/// match).
fn globals(bytes: &[u8], fixups: &Fixups) -> Result<Vec<(String, Vec<u8>)>, FixupError> {
    if fixups.variables.is_empty() {
        return Ok(Vec::new());
    }
    let file = object::File::parse(bytes).map_err(|e| FixupError::Unreadable(e.to_string()))?;
    fixups
        .variables
        .iter()
        .map(|(name, value)| {
            let symbol = file
                .symbols()
                .find(|s| s.kind() == object::SymbolKind::Data && s.name() == Ok(name.as_str()))
                .ok_or_else(|| FixupError::NoVariable(name.clone()))?;
            let size = usize::try_from(symbol.size()).unwrap_or(0);
            let bytes = crate::fixups::encode(value, size).ok_or_else(|| FixupError::TooWide {
                var: name.clone(),
                value: value.clone(),
                size,
            })?;
            Ok((name.clone(), bytes))
        })
        .collect()
}

/// The configured changes aya's loading cannot make (they are libbpf's
/// operations on an opened object), said once per object so that no one
/// takes them for applied.
fn not_replayed(opts: &Options) -> Vec<String> {
    let fx = &opts.fixups;
    let mut keys: Vec<String> = Vec::new();
    for (name, m) in &fx.maps {
        let set = [
            ("key_size", m.key_size.is_some()),
            ("value_size", m.value_size.is_some()),
            ("type", m.map_type.is_some()),
            ("fallback_type", m.fallback_type.is_some()),
            ("autocreate", m.autocreate.is_some()),
            ("inner", m.inner.is_some()),
        ];
        keys.extend(
            set.iter()
                .filter(|(_, on)| *on)
                .map(|(k, _)| format!("maps.{name}.{k}")),
        );
    }
    for (name, p) in &fx.programs {
        let set = [
            ("type", p.prog_type.is_some()),
            ("attach_module", p.attach_module.is_some()),
        ];
        keys.extend(
            set.iter()
                .filter(|(_, on)| *on)
                .map(|(k, _)| format!("programs.{name}.{k}")),
        );
    }
    if fx.skeleton.is_some() {
        keys.push("skeleton".into());
    }
    if opts.strict_maps {
        keys.push("--strict-maps".into());
    }
    if keys.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "validated as aya loads it, which cannot apply {} (libbpf's operations on an opened object): judge them with the project's own loader in command mode",
        keys.join(", ")
    )]
}

/// The function symbols of program sections: program name → section name.
fn program_sections(bytes: &[u8]) -> BTreeMap<String, String> {
    let Ok(file) = object::File::parse(bytes) else {
        return BTreeMap::new();
    };
    file.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text)
        .filter_map(|s| {
            let section = file.section_by_index(s.section_index()?).ok()?;
            Some((s.name().ok()?.to_string(), section.name().ok()?.to_string()))
        })
        .collect()
}

/// Helper IDs the program calls (BPF_CALL with src_reg 0), for the probe.
fn helpers_of(parsed: &aya_obj::Object, name: &str) -> Vec<u32> {
    let Some(program) = parsed.programs.get(name) else {
        return Vec::new();
    };
    let Some(function) = parsed.functions.get(&program.function_key()) else {
        return Vec::new();
    };
    crate::sys::called_helpers(
        function
            .instructions
            .iter()
            .map(|i| (i.code, i.src_reg(), i.imm)),
    )
}

fn program_failure(e: &ProgramError) -> StepFailure {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => StepFailure {
            verifier_log: tail(
                verifier_log
                    .to_string()
                    .lines()
                    .map(str::to_string)
                    .collect(),
                60,
            ),
            ..io_failure(&format!("aya: {e}"), io_error)
        },
        other => {
            let io =
                std::error::Error::source(other).and_then(|s| s.downcast_ref::<std::io::Error>());
            match io {
                Some(io) => io_failure(&format!("aya: {other}"), io),
                None => plain_failure(&format!("aya: {}", with_causes(other))),
            }
        }
    }
}

/// An error and its causes, as aya's own words say only the outermost
/// ("error relocating function").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut words = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        words.push_str(&format!(": {c}"));
        cause = c.source();
    }
    words
}

fn io_failure(what: &str, e: &std::io::Error) -> StepFailure {
    StepFailure {
        errno: e.raw_os_error(),
        ..plain_failure(&format!("{what}: {e}"))
    }
}

fn plain_failure(message: &str) -> StepFailure {
    StepFailure {
        error: message.to_string(),
        libbpf_log: vec![message.to_string()],
        ..StepFailure::default()
    }
}

fn skipped(reason: &str) -> Outcome {
    Outcome::Skipped {
        reason: reason.to_string(),
    }
}
