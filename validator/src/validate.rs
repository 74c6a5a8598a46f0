//! Validating one object: open, load (isolating each failing program), attach.
//!
//! libbpf loads an object all or nothing and stops at the first program or
//! map the kernel rejects. To report every program, a failing program is
//! switched off (`autoload = false`), a failing map is left out
//! (`autocreate = false`), and the object is opened and loaded again, until
//! it loads or the failure is the object's as a whole (an extern, BTF). A
//! program that needs a map the kernel refused is not judged on its own: it
//! is reported as blocked by that map.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;

use bpfcompat_engine::wire::{
    BPF_F_MMAPABLE, Fault, Hook, MapReport, Mode, ObjectReport, Outcome, ProgramReport, StepFailure,
};
use libbpf_rs::{ObjectBuilder, OpenObject};

use crate::attach::{Attached, attach_all};
use crate::capture::{self, Line};
use crate::complexity;
use crate::evidence::{Culprit, culprit, failure, unresolved_target, unsupported_helpers};
use crate::fire;
use crate::fixups;
use crate::options::{Options, Source};
use crate::sizing;
use crate::sys;

/// libbpf's loading, as a libbpf-rs or libbpf-cargo project's loader does
/// it.
pub(crate) struct Libbpf;

impl crate::options::Loader for Libbpf {
    fn validate(&self, name: &str, source: Source, opts: &Options) -> ObjectReport {
        with_libbpf(name, source, opts)
    }
}

/// libbpf's loading of the object, program by program: a program the
/// kernel refuses is switched off and the rest loaded again.
fn with_libbpf(name: &str, source: Source, opts: &Options) -> ObjectReport {
    capture::install();
    let mut v = Isolation {
        report: ObjectReport {
            object: name.to_string(),
            ..ObjectReport::default()
        },
        rejected: BTreeMap::new(),
        stand_ins: BTreeMap::new(),
        blocked: BTreeMap::new(),
        refused_maps: BTreeSet::new(),
        types: BTreeMap::new(),
        map_types: BTreeMap::new(),
        full_log: BTreeSet::new(),
        struct_ops: match source {
            Source::Bytes(b) => crate::struct_ops::owners(b),
            Source::Path(p) => std::fs::read(p)
                .map(|b| crate::struct_ops::owners(&b))
                .unwrap_or_default(),
        },
    };
    // Each round loads the object with every program rejected so far
    // switched off, until it loads or something else than one program fails.
    loop {
        capture::take();
        let Some((mut open, _inner_maps)) = v.open(source, opts) else {
            break;
        };
        v.describe_once(&open);
        v.leave_out(&mut open);
        let logs = complexity::StatsLogs::ask(&mut open, |name| v.full_log.contains(name));
        match open.load() {
            Ok(mut obj) => {
                let mut figures = logs.read(&obj);
                v.loaded(&mut obj, opts);
                for p in &mut v.report.programs {
                    if p.load == Outcome::Ok {
                        p.complexity = figures.remove(&p.name);
                    }
                }
                break;
            }
            Err(e) => {
                if !v.load_failed(&e, &logs) {
                    break;
                }
            }
        }
    }
    v.try_without_link(source, opts);
    v.report
}

/// The state of one object's validation across load rounds.
struct Isolation {
    report: ObjectReport,
    /// Programs the kernel rejected, with the evidence, by name.
    rejected: BTreeMap<String, StepFailure>,
    /// Placeholder programs loaded against a stand-in: program → stand-in.
    stand_ins: BTreeMap<String, String>,
    /// Programs that need a map the kernel refused: program → map.
    blocked: BTreeMap<String, String>,
    /// Maps the kernel refused (their failure is in the report).
    refused_maps: BTreeSet<String>,
    /// libbpf's raw program and map types, by name (for the kernel's probes).
    types: BTreeMap<String, u32>,
    map_types: BTreeMap<String, u32>,
    /// Programs refused at the statistics level, loaded again at libbpf's
    /// default so that the failure carries the verifier's full log.
    full_log: BTreeSet<String>,
    /// Which struct_ops map registers which program.
    struct_ops: crate::struct_ops::Owners,
}

impl Isolation {
    /// Opens the object with the fix-ups applied; the inner-map descriptors
    /// must stay open until it is loaded. `None` when that failed (recorded).
    fn open(&mut self, source: Source, opts: &Options) -> Option<(OpenObject, Vec<OwnedFd>)> {
        let mut builder = ObjectBuilder::default();
        if let Some(btf) = &opts.btf_custom_path
            && let Err(e) = builder.btf_custom_path(btf)
        {
            self.report.object_error = Some(failure(&e, &capture::take(), None));
            return None;
        }
        let opened = match source {
            Source::Path(p) => builder.open_file(p),
            Source::Bytes(b) => builder.open_memory(b),
        };
        let mut open = match opened {
            Ok(o) => o,
            Err(e) => {
                self.report.object_error = Some(failure(&e, &capture::take(), None));
                return None;
            }
        };
        let applied = fixups::apply(&mut open, &opts.fixups).and_then(|applied| {
            fixups::apply_fallbacks(&mut open, &opts.fixups).map(|taken| (applied, taken))
        });
        match applied {
            Ok((applied, mut notes)) => {
                // libbpf's lines about unresolved targets; none taken (so
                // that the load's failure keeps them all) where there is none.
                let lines = match applied.unresolved.is_empty() {
                    true => Vec::new(),
                    false => capture::take(),
                };
                for (name, target, e) in applied.unresolved {
                    let f = unresolved_target(&name, &target, &e, &lines);
                    self.rejected.entry(name).or_insert(f);
                }
                notes.extend(applied.notes);
                self.stand_ins = applied.stand_ins;
                let fds = applied.keep;
                if !opts.strict_maps {
                    notes.extend(sizing::size_unsized(&mut open, &opts.fixups));
                }
                notes.extend(crate::pinning::unpin(&mut open));
                if self.report.assumptions.is_empty() {
                    self.report.assumptions = notes;
                }
                Some((open, fds))
            }
            Err(e) => {
                self.report.fault = Some(Fault::Configuration {
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// Switches off what failed in earlier rounds.
    fn leave_out(&self, open: &mut OpenObject) {
        for mut p in open.progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            if self.rejected.contains_key(&name) || self.blocked.contains_key(&name) {
                p.set_autoload(false);
            }
        }
        for mut m in open.maps_mut() {
            if self.refused_maps.contains(&*m.name().to_string_lossy()) {
                let _ = m.set_autocreate(false);
            }
        }
    }

    /// A `.struct_ops.link` map failed: loads the object again with the
    /// map's `BPF_F_LINK` cleared, so the kernel itself tells whether it has
    /// struct_ops but not struct_ops links. Nothing it loads is kept.
    fn try_without_link(&mut self, source: Source, opts: &Options) {
        let Some(i) = self
            .report
            .maps
            .iter()
            .position(|m| m.is_struct_ops_link() && matches!(m.create, Outcome::Failed(_)))
        else {
            return;
        };
        let Some((mut open, _inner_maps)) = self.open(source, opts) else {
            return;
        };
        let name = self.report.maps[i].name.clone();
        self.leave_out(&mut open);
        for mut m in open.maps_mut() {
            if m.name().to_string_lossy() == name {
                let _ = m.set_autocreate(true);
            }
        }
        let cleared = open
            .maps_mut()
            .find(|m| m.name().to_string_lossy() == name)
            .map(|mut m| m.set_map_flags(m.map_flags() & !libbpf_sys::BPF_F_LINK));
        let loads = match cleared {
            Some(Ok(())) => Some(open.load().is_ok()),
            _ => None,
        };
        capture::take();
        self.report.maps[i].loads_without_link = loads;
    }

    /// On the first round: every program and map, and their raw types.
    fn describe_once(&mut self, open: &OpenObject) {
        if !self.report.programs.is_empty() || !self.report.maps.is_empty() {
            return;
        }
        describe(open, &mut self.report);
        for p in &mut self.report.programs {
            p.stand_in = self.stand_ins.get(&p.name).cloned();
        }
        self.types = open
            .progs()
            .map(|p| (p.name().to_string_lossy().into_owned(), sys::prog_type(&p)))
            .collect();
        self.map_types = open
            .maps()
            .map(|m| (m.name().to_string_lossy().into_owned(), sys::map_type(&m)))
            .collect();
    }

    /// The object loaded (without the rejected programs): maps, programs,
    /// attach and fire outcomes.
    fn loaded(&mut self, obj: &mut libbpf_rs::Object, opts: &Options) {
        if opts.fixups.skeleton != Some(false) {
            record_mmapable(obj, &mut self.report.maps);
        }
        let loaded_progs = sys::loaded_programs(obj);
        for m in self
            .report
            .maps
            .iter_mut()
            .filter(|m| !self.refused_maps.contains(&m.name))
        {
            let off = opts.fixups.maps.get(&m.name).and_then(|f| f.autocreate) == Some(false);
            m.create = if off {
                skipped("autocreate disabled by configuration")
            } else {
                Outcome::Ok
            };
        }
        let (links, attached) = if opts.mode.attaches() {
            attach_all(obj, &opts.fixups, opts.site, &self.struct_ops)
        } else {
            (BTreeMap::new(), Attached::none())
        };
        self.report
            .assumptions
            .extend(attached.notes.iter().cloned());
        let fired = if opts.mode == Mode::Fire {
            match fire::measure(
                obj,
                &links,
                &attached,
                opts.trigger.as_deref(),
                &opts.cancel,
            ) {
                Ok(f) => f,
                Err(e) => {
                    self.report.fault = Some(Fault::Configuration {
                        message: e.to_string(),
                    });
                    return;
                }
            }
        } else {
            BTreeMap::new()
        };
        drop(attached);
        for p in &mut self.report.programs {
            let off = opts.fixups.programs.get(&p.name).and_then(|f| f.autoload) == Some(false);
            if off {
                p.load = skipped("autoload disabled by configuration");
                p.attach = skipped("not loaded");
                continue;
            }
            if let Some(map) = self.blocked.get(&p.name) {
                p.load = blocked_by(map);
                p.attach = skipped("not loaded");
                continue;
            }
            match self.rejected.get(&p.name) {
                Some(f) => {
                    p.load = Outcome::Failed(f.clone());
                    p.attach = skipped("not loaded");
                }
                // libbpf itself left it out (a struct_ops program whose map
                // was not created: turned off, or refused).
                None if !loaded_progs.contains(&p.name) => {
                    let maps = self.struct_ops.get(&p.name).cloned().unwrap_or_default();
                    let off = |m: &String| {
                        opts.fixups.maps.get(m).and_then(|f| f.autocreate) == Some(false)
                    };
                    p.load = if !maps.is_empty() && maps.iter().all(off) {
                        skipped(&format!(
                            "not loaded: its struct_ops map `{}` is not created (autocreate = false)",
                            maps.join("`, `")
                        ))
                    } else {
                        skipped("not loaded: it belongs to a map that failed")
                    };
                    p.attach = skipped("not loaded");
                }
                None => {
                    p.load = Outcome::Ok;
                    p.attach = links.get(&p.name).cloned().unwrap_or_else(|| {
                        skipped(if opts.mode.attaches() {
                            "not attached"
                        } else {
                            "attach not requested"
                        })
                    });
                    p.fire = fired.get(&p.name).cloned();
                }
            }
        }
    }

    /// A load failed: a program to switch off next round (`true`), or a map
    /// or the object as a whole to blame (`false`: done).
    fn load_failed(&mut self, e: &libbpf_rs::Error, logs: &complexity::StatsLogs) -> bool {
        let lines = capture::take();
        match culprit(&lines) {
            Culprit::Program(prog)
                if !self.rejected.contains_key(&prog)
                    && self.report.programs.iter().any(|p| p.name == prog) =>
            {
                if let Some(map) = referenced_missing_map(&lines) {
                    self.blocked.insert(prog, map);
                    return true;
                }
                // Refused with only the statistics logged: once more with
                // libbpf's default, which retries with the full log. A log
                // left empty (refused before verification) has no more to say.
                if logs.wrote(&prog) && self.full_log.insert(prog.clone()) {
                    return true;
                }
                let mut f = failure(e, &lines, Some(&prog));
                let called = self
                    .report
                    .programs
                    .iter()
                    .find(|p| p.name == prog)
                    .map(|p| p.helpers.clone());
                if let (Some(t), Some(called)) = (self.types.get(&prog), called) {
                    f.unsupported_helpers = unsupported_helpers(*t, &called);
                    if let Some(p) = self.report.programs.iter_mut().find(|p| p.name == prog) {
                        p.type_supported = sys::probe_prog_type(*t);
                    }
                }
                self.rejected.insert(prog, f);
                true
            }
            Culprit::Map(map)
                if self.report.maps.iter().any(|m| m.name == map)
                    && !self.refused_maps.contains(&map) =>
            {
                // libbpf's struct_ops probe passes a field (value_type_btf_obj_fd)
                // that kernels before 6.9 refuse, so it says no where struct_ops
                // exist (libbpf_probes.c, probe_map_create): not asked.
                if let Some(t) = self
                    .map_types
                    .get(&map)
                    .filter(|t| **t != libbpf_sys::BPF_MAP_TYPE_STRUCT_OPS)
                {
                    let supported = sys::probe_map_type(*t);
                    self.report
                        .maps
                        .iter_mut()
                        .filter(|m| m.name == map)
                        .for_each(|m| m.type_supported = supported);
                }
                let f = failure(e, &lines, None);
                for m in self.report.maps.iter_mut().filter(|m| m.name == map) {
                    m.create = Outcome::Failed(f.clone());
                }
                self.refused_maps.insert(map);
                true
            }
            // No kernel BTF, which the object's BTF-typed programs (fentry,
            // tp_btf, lsm, ...) need before anything loads: a loader turns
            // those off there and loads the rest (their alternatives).
            Culprit::Unknown if no_kernel_btf(&lines) && self.btf_typed_left() => {
                let f = failure(e, &lines, None);
                for p in &self.report.programs {
                    if Hook::new(&p.section).needs_kernel_btf()
                        && !self.rejected.contains_key(&p.name)
                    {
                        self.rejected.insert(p.name.clone(), f.clone());
                    }
                }
                true
            }
            _ => {
                self.report.object_error = Some(failure(e, &lines, None));
                for m in self
                    .report
                    .maps
                    .iter_mut()
                    .filter(|m| !self.refused_maps.contains(&m.name))
                {
                    m.create = skipped("object failed to load");
                }
                finish_unloaded(
                    &mut self.report,
                    &self.rejected,
                    &self.blocked,
                    "object failed to load",
                );
                false
            }
        }
    }
}

impl Isolation {
    /// Whether a program on a BTF target is still to be loaded.
    fn btf_typed_left(&self) -> bool {
        self.report.programs.iter().any(|p| {
            Hook::new(&p.section).needs_kernel_btf() && !self.rejected.contains_key(&p.name)
        })
    }
}

/// libbpf could not load the kernel's BTF.
fn no_kernel_btf(lines: &[Line]) -> bool {
    lines.iter().any(|l| {
        l.text.contains("Error loading vmlinux BTF")
            || l.text.contains("failed to find valid kernel BTF")
    })
}

/// Per group of alternatives, the first program that loaded (and attached,
/// where attaching was asked) is chosen; the others are not counted, as the
/// real loader would have switched them off. A group where none works keeps
/// every member's failure.
fn skipped(reason: &str) -> Outcome {
    Outcome::Skipped {
        reason: reason.to_string(),
    }
}

/// Programs already rejected keep their failure, blocked ones say by what;
/// the rest were never tried.
fn finish_unloaded(
    report: &mut ObjectReport,
    rejected: &BTreeMap<String, StepFailure>,
    blocked: &BTreeMap<String, String>,
    why: &str,
) {
    for p in &mut report.programs {
        p.load = match (rejected.get(&p.name), blocked.get(&p.name)) {
            (Some(f), _) => Outcome::Failed(f.clone()),
            (None, Some(map)) => blocked_by(map),
            (None, None) => skipped(why),
        };
        p.attach = skipped("not loaded");
    }
}

/// A program not judged on its own: it needs a map the kernel refused.
fn blocked_by(map: &str) -> Outcome {
    skipped(&format!("needs map `{map}`, which the kernel refused"))
}

/// The map libbpf left out that a program still references: libbpf poisons
/// the reference and rewrites the verifier's complaint to "BPF map '<name>'
/// is referenced but wasn't created".
fn referenced_missing_map(lines: &[Line]) -> Option<String> {
    lines.iter().find_map(|l| {
        let text = l.text.trim();
        let rest = text.strip_prefix("BPF map '")?;
        let (name, tail) = rest.split_once('\'')?;
        tail.contains("referenced but wasn't created")
            .then(|| name.to_string())
    })
}

/// For each map the object asked to be mmap-able (global data for a
/// skeleton), whether the loaded map is.
fn record_mmapable(obj: &libbpf_rs::Object, maps: &mut [MapReport]) {
    use libbpf_rs::MapCore;
    for loaded in obj.maps() {
        let flags = sys::loaded_map_flags(&loaded);
        let name = loaded.name().to_string_lossy();
        if let Some(m) = maps
            .iter_mut()
            .find(|m| m.name == name && m.flags & BPF_F_MMAPABLE != 0)
        {
            m.mmapable = Some(flags & BPF_F_MMAPABLE != 0);
        }
    }
}

/// Names, sections and types of every program and map. The kernel's feature
/// probes cost a program load each, so they run only for what failed.
fn describe(open: &OpenObject, report: &mut ObjectReport) {
    for m in open.maps() {
        report.maps.push(MapReport {
            name: m.name().to_string_lossy().into_owned(),
            map_type: sys::map_type_name(sys::map_type(&m)),
            type_supported: None,
            declared: [m.max_entries(), m.key_size(), m.value_size()],
            flags: m.map_flags(),
            loads_without_link: None,
            mmapable: None,
            create: skipped("not attempted"),
        });
    }
    for p in open.progs() {
        let helpers = sys::called_helpers(p.insns().iter().map(|i| (i.code, i.src_reg(), i.imm)));
        report.programs.push(ProgramReport {
            name: p.name().to_string_lossy().into_owned(),
            section: p.section().to_string_lossy().into_owned(),
            prog_type: sys::prog_type_name(sys::prog_type(&p)),
            type_supported: None,
            helpers,
            load: skipped("not attempted"),
            attach: skipped("not attempted"),
            fire: None,
            optional: false,
            complexity: None,
            insn_count: Some(u32::try_from(p.insns().len()).unwrap_or(u32::MAX)),
            stand_in: None,
        });
    }
}
