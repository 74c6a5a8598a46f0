//! A loader's contract: what it did on each kernel where it worked
//! (programs it left out, maps it sized or retyped, where it attached),
//! read from its traced calls and written as `bpfcompat.toml` fix-ups, so
//! that object mode on new builds judges what this loader will load.
//!
//! Only kernels where the loader passed speak: a failed run stopped early,
//! and what it did not reach says nothing of its choices.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::classify::{Cell, Status};
use crate::wire::trace::{Call, CallResult, Trace, map_type_name};
use crate::wire::{Count, MapFixup, ProgramFixup};

/// What an object declares (as libbpf opens it, nothing loaded).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// Programs: name and ELF section.
    pub programs: Vec<(String, String)>,
    /// Maps: name, libbpf's type name, and max_entries, key and value size.
    pub maps: Vec<(String, String, [u32; 3])>,
}

/// The fix-ups of one object, with why each was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectContract {
    /// Map fix-ups, by map name.
    pub maps: BTreeMap<String, MapFixup>,
    /// Program fix-ups, by program name.
    pub programs: BTreeMap<String, ProgramFixup>,
    /// Per map or program name, what the loader did that gave the fix-up.
    pub why: BTreeMap<String, String>,
    /// Kernels where the loader worked without this object at all (no
    /// fix-up says "not on this kernel": object mode's verdict there is on
    /// an object this loader does not load).
    pub unused_on: Vec<String>,
}

/// A loader's contract, per object it used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contract {
    /// By object name, those the loader used.
    pub objects: BTreeMap<String, ObjectContract>,
    /// The kernels it was read from (where the loader passed).
    pub kernels: Vec<String>,
    /// Kernels that did not speak, and why.
    pub silent: Vec<String>,
}

/// The kernel's name of a map or program: at most 15 bytes of libbpf's.
fn kernel_name(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What one passing run did, by kernel name of map and program.
#[derive(Default)]
struct Did {
    /// Programs loaded, with where each attached (probe or BTF target).
    loaded: BTreeMap<String, Option<String>>,
    /// Maps created: type number and sizes.
    maps: BTreeMap<String, (u32, [u32; 3])>,
}

fn did(trace: &Trace) -> Did {
    let mut d = Did::default();
    let names_taken = trace.names_taken();
    for c in &trace.calls {
        if c.result.errno().is_some()
            || c.result == CallResult::NoAnswer
            || c.call.is_library_probe(names_taken)
        {
            continue;
        }
        match &c.call {
            Call::ProgLoad(p) => {
                d.loaded.insert(p.name.clone(), p.attach_to.clone());
            }
            Call::MapCreate(m) => {
                d.maps.insert(
                    m.name.clone(),
                    (m.map_type, [m.max_entries, m.key_size, m.value_size]),
                );
            }
            Call::Attach(a) => {
                if let (Some(p), Some(t)) = (&a.program, &a.target)
                    && let Some(slot) = d.loaded.get_mut(p)
                    && slot.is_none()
                {
                    *slot = Some(t.clone());
                }
            }
            _ => {}
        }
    }
    d
}

/// The contract of the loader whose command-mode `cells` these are, for
/// the `objects` it may use (name and what each declares). `cpus`: the
/// guests' CPU count (a map sized to it is sized per CPU).
pub fn derive(objects: &[(String, Declared)], cells: &[Cell], cpus: u32) -> Contract {
    let mut contract = Contract::default();
    let mut runs: Vec<(String, Did)> = Vec::new();
    for c in cells {
        let trace = c.command.as_ref().and_then(|r| r.trace.as_deref());
        match (c.status, trace) {
            (Status::Pass, Some(t)) if t.not_traced.is_none() => {
                runs.push((c.kernel.clone(), did(t)));
                contract.kernels.push(c.kernel.clone());
            }
            (Status::Pass, _) => contract.silent.push(format!("{}: not traced", c.kernel)),
            (status, _) => contract
                .silent
                .push(format!("{}: the loader did not pass ({status:?})", c.kernel).to_lowercase()),
        }
    }
    for (object, declared) in objects {
        let touched: Vec<&(String, Did)> =
            runs.iter()
                .filter(|(_, d)| {
                    declared
                        .programs
                        .iter()
                        .any(|(p, _)| d.loaded.contains_key(kernel_name(p)))
                        || declared.maps.iter().any(|(m, _, _)| {
                            !m.contains('.') && d.maps.contains_key(kernel_name(m))
                        })
                })
                .collect();
        if touched.is_empty() {
            continue;
        }
        let mut oc = ObjectContract {
            unused_on: runs
                .iter()
                .filter(|(k, _)| !touched.iter().any(|(t, _)| t == k))
                .map(|(k, _)| k.clone())
                .collect(),
            ..ObjectContract::default()
        };
        for (name, section) in &declared.programs {
            let on: Vec<&(String, Did)> = touched
                .iter()
                .copied()
                .filter(|(_, d)| d.loaded.contains_key(kernel_name(name)))
                .collect();
            let mut fixup = ProgramFixup::default();
            if on.is_empty() {
                fixup.autoload = Some(false);
                oc.why.insert(name.clone(), "never loaded".into());
            } else if on.len() < touched.len() {
                fixup.optional = Some(true);
                let without: Vec<&str> = touched
                    .iter()
                    .filter(|(_, d)| !d.loaded.contains_key(kernel_name(name)))
                    .map(|(k, _)| k.as_str())
                    .collect();
                oc.why.insert(
                    name.clone(),
                    format!("not loaded on {}", without.join(", ")),
                );
            }
            // Where a bare section leaves the target to the loader: the one
            // it chose, where it chose the same everywhere.
            let targets: BTreeSet<&str> = on
                .iter()
                .filter_map(|(_, d)| d.loaded.get(kernel_name(name))?.as_deref())
                .collect();
            if crate::wire::Hook::new(section).is_bare()
                && targets.len() == 1
                && let Some(t) = targets.first().and_then(|t| attach_target(t))
            {
                fixup.attach_target = crate::wire::AttachTargets::new(vec![t]);
            }
            if fixup != ProgramFixup::default() {
                oc.programs.insert(name.clone(), fixup);
            }
        }
        for (name, map_type, sizes) in &declared.maps {
            if name.contains('.') {
                continue;
            }
            let made: Vec<(&str, (u32, [u32; 3]))> = touched
                .iter()
                .filter_map(|(k, d)| Some((k.as_str(), *d.maps.get(kernel_name(name))?)))
                .collect();
            if made.is_empty() {
                continue;
            }
            let mut fixup = MapFixup::default();
            let mut why = Vec::new();
            let entries: BTreeSet<u32> = made.iter().map(|(_, (_, s))| s[0]).collect();
            if entries.len() == 1 && entries.first() != Some(&sizes[0]) {
                let n = *entries.first().unwrap_or(&0);
                fixup.max_entries = Some(match (n == cpus, map_type.contains("percpu")) {
                    (true, false) if sizes[0] == 0 => Count::Cpus,
                    _ => Count::Fixed(n),
                });
                why.push(format!(
                    "created with max_entries {n} (declared {})",
                    sizes[0]
                ));
            }
            for (i, what) in [(1, "key_size"), (2, "value_size")] {
                let set: BTreeSet<u32> = made.iter().map(|(_, (_, s))| s[i]).collect();
                if set.len() == 1 && set.first() != Some(&sizes[i]) {
                    let v = *set.first().unwrap_or(&0);
                    match i {
                        1 => fixup.key_size = Some(v),
                        _ => fixup.value_size = Some(v),
                    }
                    why.push(format!("created with {what} {v} (declared {})", sizes[i]));
                }
            }
            let other: BTreeSet<String> = made
                .iter()
                .map(|(_, (t, _))| map_type_name(*t))
                .filter(|t| t != map_type)
                .collect();
            if let Some(t) = other.first() {
                let on: Vec<&str> = made
                    .iter()
                    .filter(|(_, (mt, _))| &map_type_name(*mt) == t)
                    .map(|(k, _)| *k)
                    .collect();
                match on.len() == made.len() {
                    true => fixup.map_type = Some(t.clone()),
                    false => fixup.fallback_type = Some(t.clone()),
                }
                why.push(format!("created as {t} on {}", on.join(", ")));
            }
            if fixup != MapFixup::default() {
                oc.why.insert(name.clone(), why.join("; "));
                oc.maps.insert(name.clone(), fixup);
            }
        }
        contract.objects.insert(object.clone(), oc);
    }
    contract
}

/// The attach target a traced attach names, as a fix-up takes it: a
/// kprobe's function, a BTF target's name (tracepoint IDs have none).
fn attach_target(traced: &str) -> Option<String> {
    match traced.split_once(' ') {
        Some(("kprobe" | "kretprobe", f)) => Some(f.to_string()),
        Some(_) => None,
        None => Some(traced.to_string()),
    }
}

impl Contract {
    /// As `bpfcompat.toml` tables, with a comment per fix-up saying why.
    pub fn to_toml(&self, loader: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# What `{loader}` did where it worked ({}), as fix-ups: merge these\n# tables into bpfcompat.toml so that object mode judges what it loads.",
            self.kernels.join(", ")
        );
        for s in &self.silent {
            let _ = writeln!(out, "# not read: {s}");
        }
        if self.objects.is_empty() {
            let _ = writeln!(out, "# It used none of the objects given.");
        }
        let key = |s: &str| match s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            true => s.to_string(),
            false => format!("{s:?}"),
        };
        for (object, oc) in &self.objects {
            if !oc.unused_on.is_empty() {
                let _ = writeln!(
                    out,
                    "\n# `{object}` is not loaded at all on {}: no fix-up says so; object mode's\n# verdicts there are on an object this loader leaves out.",
                    oc.unused_on.join(", ")
                );
            }
            if oc.maps.is_empty() && oc.programs.is_empty() {
                let _ = writeln!(out, "\n# `{object}`: loaded as declared.");
                continue;
            }
            for (name, f) in &oc.programs {
                let _ = writeln!(out, "\n# {}", oc.why.get(name).map_or("", String::as_str));
                let _ = writeln!(out, "[objects.{}.programs.{}]", key(object), key(name));
                let _ = write!(out, "{}", toml::to_string(f).unwrap_or_default());
            }
            for (name, f) in &oc.maps {
                let _ = writeln!(out, "\n# {}", oc.why.get(name).map_or("", String::as_str));
                let _ = writeln!(out, "[objects.{}.maps.{}]", key(object), key(name));
                let _ = write!(out, "{}", toml::to_string(f).unwrap_or_default());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CommandReport;
    use crate::wire::trace::{AttachCall, MapCall, ProgCall, TracedCall};

    fn cell(kernel: &str, status: Status, calls: Vec<(Call, CallResult)>) -> Cell {
        let json = serde_json::json!({
            "object": "loader", "kernel": kernel, "required": true,
            "status": status, "stage": null, "code": null, "program": null,
            "message": null, "remediation": null, "errno": null,
            "verifier_tail": [], "kernel_release": null, "expected": null,
            "findings": [], "programs": [],
        });
        let mut c: Cell = serde_json::from_value(json).unwrap();
        c.command = Some(CommandReport {
            trace: Some(Box::new(Trace {
                calls: calls
                    .into_iter()
                    .map(|(call, result)| TracedCall {
                        tid: 1,
                        at_ms: 0,
                        call,
                        result,
                    })
                    .collect(),
                ..Trace::default()
            })),
            ..CommandReport::default()
        });
        c
    }

    fn load(name: &str) -> (Call, CallResult) {
        (
            Call::ProgLoad(ProgCall {
                name: name.into(),
                insn_cnt: 20,
                ..ProgCall::default()
            }),
            CallResult::Ok(5),
        )
    }

    fn map(name: &str, t: u32, entries: u32) -> (Call, CallResult) {
        (
            Call::MapCreate(MapCall {
                name: name.into(),
                map_type: t,
                max_entries: entries,
                key_size: 4,
                value_size: 8,
                ..MapCall::default()
            }),
            CallResult::Ok(4),
        )
    }

    #[test]
    fn a_loaders_choices_per_kernel_become_fix_ups() {
        let declared = Declared {
            programs: vec![
                ("count_with_loop".into(), "tracepoint/x".into()),
                ("on_exec".into(), "tracepoint/y".into()),
                ("never".into(), "tracepoint/z".into()),
                ("probe_it".into(), "kprobe".into()),
            ],
            maps: vec![
                ("events".into(), "ringbuf".into(), [4096, 0, 0]),
                ("counts".into(), "hash".into(), [0, 4, 8]),
            ],
        };
        let attach = (
            Call::Attach(AttachCall {
                how: "perf_event_set_bpf".into(),
                program: Some("probe_it".into()),
                target: Some("kprobe do_unlinkat".into()),
                ..AttachCall::default()
            }),
            CallResult::Ok(0),
        );
        let new = cell(
            "new",
            Status::Pass,
            vec![
                load("count_with_loop"),
                load("on_exec"),
                load("probe_it"),
                attach.clone(),
                map("events", 27, 4096),
                map("counts", 1, 1024),
            ],
        );
        // Older: no bpf_loop program, a perf buffer for the ring buffer.
        let old = cell(
            "old",
            Status::Pass,
            vec![
                load("on_exec"),
                load("probe_it"),
                attach,
                map("events", 4, 0),
                map("counts", 1, 1024),
            ],
        );
        let failed = cell("oldest", Status::Fail, vec![]);
        let without = cell("other", Status::Pass, vec![load("elsewhere")]);
        let c = derive(
            &[("probes".into(), declared)],
            &[new, old, failed, without],
            1,
        );
        assert_eq!(c.kernels, ["new", "old", "other"]);
        assert_eq!(c.objects["probes"].unused_on, ["other"]);
        assert_eq!(c.silent.len(), 1, "{c:?}");
        let o = &c.objects["probes"];
        assert_eq!(o.programs["count_with_loop"].optional, Some(true));
        assert_eq!(o.programs["never"].autoload, Some(false));
        assert_eq!(
            o.programs["probe_it"]
                .attach_target
                .as_ref()
                .map(|t| t.all().to_vec()),
            Some(vec!["do_unlinkat".to_string()])
        );
        assert!(!o.programs.contains_key("on_exec"));
        assert_eq!(
            o.maps["events"].fallback_type.as_deref(),
            Some("perf_event_array")
        );
        assert_eq!(o.maps["counts"].max_entries, Some(Count::Fixed(1024)));
        let text = c.to_toml("probes-loader");
        assert!(
            text.contains("[objects.probes.programs.count_with_loop]\noptional = true"),
            "{text}"
        );
        assert!(text.contains("# not loaded on old"), "{text}");
        // What it writes is configuration bpfcompat reads.
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["objects"]["probes"]["maps"]["events"]["fallback_type"].as_str(),
            Some("perf_event_array")
        );
    }
}
