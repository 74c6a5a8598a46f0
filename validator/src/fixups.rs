//! Replaying a loader's changes on an opened object before load: map sizes
//! and types, inner-map prototypes, autocreate and autoload, program types
//! and attach targets, initial values of global variables.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

use bpfcompat_engine::wire::{Count, Fixups, Hook};
use libbpf_rs::btf::Btf;
use libbpf_rs::btf::types::DataSec;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use crate::sys;

/// A fix-up that names something the object does not have, or a value that
/// does not fit: the configuration is wrong, not the kernel.
#[derive(Debug, thiserror::Error)]
pub enum FixupError {
    /// A map the object does not have.
    #[error("no map `{name}` in the object (maps: {})", maps.join(", "))]
    NoMap { name: String, maps: Vec<String> },
    /// A program the object does not have.
    #[error("no program `{name}` in the object (programs: {})", programs.join(", "))]
    NoProgram { name: String, programs: Vec<String> },
    /// A map type (`what`: map, inner map or fallback type) libbpf does not know.
    #[error("map `{map}`: unknown {what} `{given}`")]
    UnknownMapType {
        map: String,
        what: &'static str,
        given: String,
    },
    /// libbpf refused to change a map.
    #[error("map `{map}`: cannot set {what}: {reason}")]
    MapRefused {
        map: String,
        what: &'static str,
        reason: String,
    },
    /// libbpf refused to retype a map to its fallback.
    #[error("map `{map}`: cannot fall back to {fallback}: {reason}")]
    FallbackRefused {
        map: String,
        fallback: String,
        reason: String,
    },
    /// A variable the object does not have.
    #[error("no global variable `{0}` in .rodata, .data or .bss")]
    NoVariable(String),
    /// A value wider than its variable.
    #[error("variable `{var}`: {value} does not fit in {size} bytes")]
    TooWide {
        var: String,
        value: serde_json::Value,
        size: usize,
    },
    /// A variable in a section without initial values.
    #[error("variable `{var}`: section {section} has no initial value to set")]
    NoInitialValue { var: String, section: String },
    /// The object does not parse (aya's reading of its symbols).
    #[error("cannot read the object: {0}")]
    Unreadable(String),
    /// A program type libbpf does not know.
    #[error("program `{program}`: unknown program type `{given}`")]
    UnknownProgType { program: String, given: String },
    /// libbpf refused to retype a program.
    #[error("program `{program}`: cannot set type: {reason}")]
    ProgTypeRefused { program: String, reason: String },
}

/// What applying the fix-ups left to the load.
pub struct Applied {
    /// The inner-map descriptors, which must stay open until the object is
    /// loaded.
    pub keep: Vec<OwnedFd>,
    /// Programs whose attach target the kernel could not resolve (no BTF,
    /// or no such function in it): the kernel's answer about that program,
    /// never a configuration error, as the target may exist elsewhere.
    /// (program, target, libbpf's error).
    pub unresolved: Vec<(String, String, libbpf_rs::Error)>,
    /// Which target of a configured list each program got, where not the
    /// first.
    pub notes: Vec<String>,
    /// Placeholder programs loaded against a stand-in: program → stand-in.
    pub stand_ins: BTreeMap<String, String>,
}

/// Applies `fx`.
pub fn apply(open: &mut OpenObject, fx: &Fixups) -> Result<Applied, FixupError> {
    check_names(open, fx)?;
    let keep = apply_maps(open, fx)?;
    apply_variables(open, fx)?;
    let mut notes = Vec::new();
    let mut stand_ins = BTreeMap::new();
    let unresolved = apply_programs(open, fx, &mut notes, &mut stand_ins)?;
    Ok(Applied {
        keep,
        unresolved,
        notes,
        stand_ins,
    })
}

/// Every map and program a fix-up names exists in the object.
fn check_names(open: &OpenObject, fx: &Fixups) -> Result<(), FixupError> {
    let map_names: Vec<String> = open
        .maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect();
    if let Some(name) = fx.maps.keys().find(|n| !map_names.contains(n)) {
        return Err(FixupError::NoMap {
            name: name.clone(),
            maps: map_names,
        });
    }
    let prog_names: Vec<String> = open
        .progs()
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect();
    if let Some(name) = fx
        .programs
        .keys()
        .chain(fx.variants.iter().flatten())
        .find(|n| !prog_names.contains(n))
    {
        return Err(FixupError::NoProgram {
            name: name.clone(),
            programs: prog_names,
        });
    }
    Ok(())
}

fn apply_maps(open: &mut OpenObject, fx: &Fixups) -> Result<Vec<OwnedFd>, FixupError> {
    let mut keep = Vec::new();
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        let Some(f) = fx.maps.get(&name) else {
            continue;
        };
        let e = |what: &'static str, reason: String| FixupError::MapRefused {
            map: name.clone(),
            what,
            reason,
        };
        let unknown = |what: &'static str, given: &str| FixupError::UnknownMapType {
            map: name.clone(),
            what,
            given: given.to_string(),
        };
        if let Some(t) = &f.map_type {
            let n = sys::map_type_by_name(t).ok_or_else(|| unknown("map type", t))?;
            sys::set_map_type(&m, n).map_err(|r| e("type", r.to_string()))?;
        }
        if let Some(c) = f.max_entries {
            let n = match c {
                Count::Fixed(n) => n,
                Count::Cpus => sys::possible_cpus(),
            };
            m.set_max_entries(n)
                .map_err(|x| e("max_entries", x.to_string()))?;
        }
        if let Some(k) = f.key_size {
            m.set_key_size(k)
                .map_err(|x| e("key_size", x.to_string()))?;
        }
        if let Some(v) = f.value_size {
            m.set_value_size(v)
                .map_err(|x| e("value_size", x.to_string()))?;
        }
        if let Some(a) = f.autocreate {
            m.set_autocreate(a)
                .map_err(|x| e("autocreate", x.to_string()))?;
        }
        if let Some(inner) = &f.inner {
            let t = sys::map_type_by_name(&inner.map_type)
                .ok_or_else(|| unknown("inner map type", &inner.map_type))?;
            let fd = sys::create_map(t, inner.key_size, inner.value_size, inner.max_entries)
                .map_err(|r| e("the inner map", format!("creating it failed with {r}")))?;
            m.set_inner_map_fd(fd.as_fd())
                .map_err(|x| e("the inner map", x.to_string()))?;
            keep.push(fd);
        }
    }
    Ok(keep)
}

/// Declared fallbacks, applied only where the kernel's probe says the map's
/// own type is unsupported, as a loader does; one line per fallback taken.
pub fn apply_fallbacks(open: &mut OpenObject, fx: &Fixups) -> Result<Vec<String>, FixupError> {
    let mut taken = Vec::new();
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        let Some(fallback) = fx.maps.get(&name).and_then(|f| f.fallback_type.as_ref()) else {
            continue;
        };
        let own = sys::map_type(&m);
        if sys::probe_map_type(own) != Some(false) {
            continue;
        }
        let t = sys::map_type_by_name(fallback).ok_or_else(|| FixupError::UnknownMapType {
            map: name.clone(),
            what: "fallback type",
            given: fallback.clone(),
        })?;
        let e = |reason: String| FixupError::FallbackRefused {
            map: name.clone(),
            fallback: fallback.clone(),
            reason,
        };
        sys::set_map_type(&m, t).map_err(|r| e(r.to_string()))?;
        if fallback == "perf_event_array" {
            // Keys and values are CPU indexes and descriptors; libbpf sizes
            // max_entries 0 to the CPUs.
            m.set_key_size(4).map_err(|x| e(x.to_string()))?;
            m.set_value_size(4).map_err(|x| e(x.to_string()))?;
            m.set_max_entries(0).map_err(|x| e(x.to_string()))?;
        }
        taken.push(format!(
            "map `{name}`: {} maps are not supported, so its declared fallback {fallback} was used",
            sys::map_type_name(own)
        ));
    }
    Ok(taken)
}

/// Initial values of global variables, written into their sections' maps.
fn apply_variables(open: &mut OpenObject, fx: &Fixups) -> Result<(), FixupError> {
    let vars = datasec_vars(open);
    for (var, value) in &fx.variables {
        let (section, offset, size) = vars
            .get(var)
            .cloned()
            .ok_or_else(|| FixupError::NoVariable(var.clone()))?;
        let bytes = encode(value, size).ok_or_else(|| FixupError::TooWide {
            var: var.clone(),
            value: value.clone(),
            size,
        })?;
        let mut written = false;
        for mut m in open.maps_mut() {
            let mname = m.name().to_string_lossy().into_owned();
            if !mname.ends_with(&section) {
                continue;
            }
            if let Some(data) = m.initial_value_mut() {
                data[offset..offset + size].copy_from_slice(&bytes);
                written = true;
            }
        }
        if !written {
            return Err(FixupError::NoInitialValue {
                var: var.clone(),
                section,
            });
        }
    }
    Ok(())
}

fn apply_programs(
    open: &mut OpenObject,
    fx: &Fixups,
    notes: &mut Vec<String>,
    stand_ins: &mut BTreeMap<String, String>,
) -> Result<Vec<(String, String, libbpf_rs::Error)>, FixupError> {
    let mut unresolved = Vec::new();
    for mut p in open.progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        let Some(f) = fx.programs.get(&name) else {
            continue;
        };
        if let Some(a) = f.autoload {
            p.set_autoload(a);
        }
        if let Some(t) = &f.prog_type {
            let n = sys::prog_type_by_name(t).ok_or_else(|| FixupError::UnknownProgType {
                program: name.clone(),
                given: t.clone(),
            })?;
            sys::set_prog_type(&p, n).map_err(|r| FixupError::ProgTypeRefused {
                program: name.clone(),
                reason: r.to_string(),
            })?;
        }
        let section = p.section().to_string_lossy().into_owned();
        // Kprobes and tracepoints take their target at attach time (see
        // attach.rs); BTF-typed programs (fentry, tp_btf, ...) at load.
        let at_attach = Hook::new(&section).takes_target_at_attach();
        if let Some(targets) = &f.attach_target
            && !at_attach
        {
            // libbpf looks the target up in the kernel's BTF here: its
            // failure is this kernel's answer (no BTF, no such function). In
            // the loader's order, the first this kernel has.
            let mut last = None;
            for (i, target) in targets.all().iter().enumerate() {
                let full = match &f.attach_module {
                    Some(m) => format!("{m}:{target}"),
                    None => target.clone(),
                };
                match p.set_attach_target(0, Some(full)) {
                    Ok(()) => {
                        if i > 0 {
                            notes.push(next_choice(&name, targets.all(), i));
                        }
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                p.set_autoload(false);
                unresolved.push((name, targets.all().join("', '"), e));
            }
        } else if f.placeholder == Some(true) && !at_attach && p.autoload() {
            // The section's target is the loader's placeholder: loaded
            // against a stand-in of its kind. A kernel that has none keeps
            // the placeholder, and libbpf's answer about it.
            if let Some(s) = bpfcompat_engine::wire::FENTRY_STAND_INS
                .iter()
                .find(|s| p.set_attach_target(0, Some(s.to_string())).is_ok())
            {
                stand_ins.insert(name, s.to_string());
            }
        }
    }
    Ok(unresolved)
}

/// Says which of a program's configured targets this kernel got, when it
/// was not the first.
pub(crate) fn next_choice(program: &str, targets: &[String], chosen: usize) -> String {
    format!(
        "program `{program}`: attach target `{}`, the loader's choice {} of {} (this kernel lacks `{}`)",
        targets[chosen],
        chosen + 1,
        targets.len(),
        targets[..chosen].join("`, `")
    )
}

/// Global variables by name: (datasec name, offset, size).
fn datasec_vars(open: &OpenObject) -> BTreeMap<String, (String, usize, usize)> {
    let mut out = BTreeMap::new();
    // SAFETY: the object outlives the BTF view, which is dropped here.
    let Ok(Some(btf)) = Btf::from_bpf_object(unsafe { open.as_libbpf_object().as_ref() }) else {
        return out;
    };
    for section in [".rodata", ".data", ".bss"] {
        let Some(ds) = btf.type_by_name::<DataSec>(section) else {
            continue;
        };
        for v in ds.iter() {
            let name = btf
                .type_by_id::<libbpf_rs::btf::BtfType>(v.ty)
                .and_then(|t| t.name().map(|n| n.to_string_lossy().into_owned()));
            if let Some(name) = name {
                out.insert(name, (section.to_string(), v.offset as usize, v.size));
            }
        }
    }
    out
}

/// Little-endian bytes of an integer or boolean, if it fits in `size` bytes.
pub(crate) fn encode(value: &serde_json::Value, size: usize) -> Option<Vec<u8>> {
    let n: i128 = match value {
        serde_json::Value::Bool(b) => i128::from(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))?,
        _ => return None,
    };
    if size == 0 || size > 8 {
        return None;
    }
    let bits = size * 8;
    let fits = if n < 0 {
        n >= -(1i128 << (bits - 1))
    } else {
        n < (1i128 << bits)
    };
    fits.then(|| n.to_le_bytes()[..size].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_integers_and_booleans_that_fit() {
        assert_eq!(encode(&serde_json::json!(258), 4), Some(vec![2, 1, 0, 0]));
        assert_eq!(encode(&serde_json::json!(true), 1), Some(vec![1]));
        assert_eq!(encode(&serde_json::json!(-1), 2), Some(vec![0xff, 0xff]));
        assert_eq!(encode(&serde_json::json!(256), 1), None);
        assert_eq!(encode(&serde_json::json!("x"), 4), None);
    }
}
