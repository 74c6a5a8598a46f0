//! Placeholder hooks: a kprobe or fentry section that names a function its
//! loader replaces at run time (`fentry/dummy_file_open`, `kprobe/foo`).
//! Judged as a real hook it fails everywhere, a wrong verdict on a working
//! tool. A target is taken for a placeholder only when no kernel of the
//! whole catalogue (`--matrix all`) has a function of that name, which needs
//! every catalogue kernel's function index (made at fetch, see
//! [`crate::kernel::FunctionIndex`]): with one missing, nothing is decided.
//!
//! A typo'd target exists on no kernel either, and is then judged as the
//! loader's: every decision is said in the report with the name, so it can
//! be seen, and `attach_target` overrides it.

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::kernel::{Cache, FunctionIndex};
use crate::objects::ObjectInput;
use crate::wire::Hook;

/// What was decided before any guest.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// One sentence per placeholder, for the report's notes.
    pub notes: Vec<String>,
    /// Catalogue kernels without a function index, when some program's
    /// target could have been a placeholder: nothing was decided.
    pub unindexed: Vec<String>,
}

/// Marks the programs of `objects` whose section names a function no
/// catalogue kernel has as placeholders (see
/// [`ProgramFixup::placeholder`](crate::wire::ProgramFixup::placeholder)).
pub fn decide(objects: &mut [ObjectInput], cache: &Cache) -> Decision {
    let lock = crate::matrix::catalogue();
    let mut indexes = Vec::new();
    let mut unindexed = Vec::new();
    let mut loaded = false;
    let mut decision = Decision::default();
    for o in objects.iter_mut() {
        let candidates = candidates(o);
        if candidates.is_empty() {
            continue;
        }
        if !loaded {
            loaded = true;
            for pin in &lock.kernels {
                match cache.function_index(&pin.entry_key()) {
                    Some(index) => indexes.push(index),
                    None => unindexed.push(pin.name.clone()),
                }
            }
        }
        if !unindexed.is_empty() || indexes.is_empty() {
            decision.unindexed = unindexed;
            return decision;
        }
        decision.notes.extend(mark(o, &candidates, &indexes));
    }
    decision
}

/// Marks the candidates of `o` that no index has; says so for each.
fn mark(o: &mut ObjectInput, candidates: &[Candidate], indexes: &[FunctionIndex]) -> Vec<String> {
    let mut notes = Vec::new();
    for c in candidates {
        if indexes.iter().any(|i| i.has(&c.target)) {
            continue;
        }
        let fixup = o.fixups.programs.entry(c.program.clone()).or_default();
        fixup.placeholder = Some(true);
        let how = if !Hook::finds_function_in_btf(&c.kind) {
            "loaded as it is".to_string()
        } else {
            format!(
                "loaded against `{}`, a stand-in of its kind",
                crate::wire::FENTRY_STAND_INS[0]
            )
        };
        notes.push(format!(
            "{}: program `{}` (section `{}`) names `{}`, a function none of the {} catalogue kernels has: taken for a placeholder its loader replaces at run time, {how}, its attach left to the loader. If `{}` is the loader's real target (a typo?), it attaches nowhere; name the target with `attach_target = [\"...\"]` under [objects.\"{}\".programs.\"{}\"]",
            o.name,
            c.program,
            c.section,
            c.target,
            indexes.len(),
            c.target,
            crate::config::table_stem(&o.name),
            c.program
        ));
    }
    notes
}

/// The functions the programs of `objects` name (in their section or as a
/// configured target) that this kernel has in a module only, with the
/// module.
pub(crate) fn in_modules(
    index: &FunctionIndex,
    objects: &[ObjectInput],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for o in objects {
        let Ok(bytes) = crate::objects::read_regular(&o.path) else {
            continue;
        };
        let configured = o
            .fixups
            .programs
            .values()
            .chain(o.fixups.on.iter().flat_map(|k| k.programs.values()))
            .filter_map(|f| f.attach_target.as_ref())
            .flat_map(|t| t.all().iter().cloned());
        let named = programs(&bytes)
            .into_iter()
            .filter_map(|(_, section)| Hook::new(&section).function().map(|(_, t)| t.to_string()))
            .chain(configured);
        for f in named {
            if !index.in_image(&f)
                && let Some(m) = index.module_of(&f)
            {
                out.insert(f, m.to_string());
            }
        }
    }
    out
}

/// A program whose section names a function.
#[derive(Debug, PartialEq)]
struct Candidate {
    program: String,
    section: String,
    kind: String,
    target: String,
}

/// The programs of `o` that name a function in their section and whose
/// configuration does not name one instead (nor say `placeholder`).
fn candidates(o: &ObjectInput) -> Vec<Candidate> {
    let Ok(bytes) = crate::objects::read_regular(&o.path) else {
        return Vec::new();
    };
    let configured = |program: &str| {
        let own = o.fixups.programs.get(program);
        own.is_some_and(|f| {
            f.attach_target.is_some() || f.placeholder.is_some() || f.autoload == Some(false)
        }) || o.fixups.on.iter().any(|k| {
            k.programs
                .get(program)
                .is_some_and(|f| f.attach_target.is_some() || f.placeholder.is_some())
        })
    };
    programs(&bytes)
        .into_iter()
        .filter_map(|(program, section)| {
            let (kind, target) = Hook::new(&section).function()?;
            (!configured(&program)).then(|| Candidate {
                kind: kind.to_string(),
                target: target.to_string(),
                program: program.clone(),
                section: section.clone(),
            })
        })
        .collect()
}

/// (program, section) of every program of a BPF object: its global
/// functions in executable sections other than `.text`.
fn programs(bytes: &[u8]) -> Vec<(String, String)> {
    let Ok(file) = object::File::parse(bytes) else {
        return Vec::new();
    };
    file.symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_global() && s.is_definition())
        .filter_map(|s| {
            let section = file.section_by_index(s.section_index()?).ok()?;
            let name = section.name().ok()?;
            (section.kind() == SectionKind::Text && name != ".text")
                .then(|| Some((s.name().ok()?.to_string(), name.to_string())))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::functions::Functions;

    fn index(names: &[&str]) -> (tempfile::TempDir, FunctionIndex) {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Functions::default();
        let map: String = names
            .iter()
            .map(|n| format!("ffffffff81000000 T {n}\n"))
            .collect();
        f.read_system_map(&mut map.as_bytes()).unwrap();
        f.write(dir.path()).unwrap();
        let i = crate::kernel::functions::Index::read(dir.path()).unwrap();
        (dir, i)
    }

    /// A BPF object of the programs (name, section) given, in a file.
    fn object(programs: &[(&str, &str)]) -> tempfile::NamedTempFile {
        use object::write::{Object, Symbol, SymbolSection};
        use object::{Architecture, BinaryFormat, SymbolFlags, SymbolScope};
        let mut o = Object::new(
            BinaryFormat::Elf,
            Architecture::Bpf,
            object::Endianness::Little,
        );
        // r0 = 0; exit
        let code = [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        for (name, section) in programs {
            let s = o.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
            o.append_section_data(s, &code, 8);
            o.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: code.len() as u64,
                kind: SymbolKind::Text,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Section(s),
                flags: SymbolFlags::None,
            });
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), o.write().unwrap()).unwrap();
        f
    }

    const PROGRAMS: &[(&str, &str)] = &[
        ("dummy_fentry", "fentry/dummy_fentry_target"),
        ("dummy_kprobe", "kprobe/dummy_kprobe_target+0x4"),
        ("real", "kprobe/vfs_read"),
        ("tp", "tracepoint/syscalls/sys_enter_getpid"),
    ];

    fn candidate(program: &str, kind: &str, target: &str) -> Candidate {
        Candidate {
            program: program.into(),
            section: format!("{kind}/{target}"),
            kind: kind.into(),
            target: target.into(),
        }
    }

    #[test]
    fn only_a_function_no_catalogue_kernel_has_is_a_placeholder() {
        let (_a, old) = index(&["vfs_read", "do_sys_open"]);
        let (_b, new) = index(&["vfs_read", "do_sys_openat2"]);
        let mut o = ObjectInput::plain("tool", "/nonexistent.bpf.o");
        let candidates = [
            candidate("open_old", "kprobe", "do_sys_open"),
            candidate("open_new", "fentry", "do_sys_openat2"),
            candidate("dummy", "fentry", "dummy_file_open"),
            candidate("foo", "kprobe", "foo"),
        ];
        let notes = mark(&mut o, &candidates, &[old, new]);
        let marked: Vec<&str> = o
            .fixups
            .programs
            .iter()
            .filter(|(_, f)| f.placeholder == Some(true))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(marked, ["dummy", "foo"]);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("`dummy_file_open`"), "{}", notes[0]);
        assert!(notes[0].contains("stand-in"), "{}", notes[0]);
        assert!(notes[1].contains("loaded as it is"), "{}", notes[1]);
        assert!(notes[1].contains("attach_target"), "{}", notes[1]);
    }

    #[test]
    fn nothing_is_decided_while_a_catalogue_kernel_is_not_indexed() {
        // An empty cache: no catalogue kernel is indexed.
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let file = object(PROGRAMS);
        let mut objects = vec![ObjectInput::plain("placeholder", file.path())];
        let d = decide(&mut objects, &cache);
        assert!(d.notes.is_empty());
        assert!(d.unindexed.contains(&"debian-12-6.1".to_string()), "{d:?}");
        assert!(
            objects[0]
                .fixups
                .programs
                .values()
                .all(|f| f.placeholder.is_none())
        );
    }

    #[test]
    fn configured_targets_and_switched_off_programs_are_no_candidates() {
        let file = object(PROGRAMS);
        let mut o = ObjectInput::plain("placeholder", file.path());
        let all: Vec<(String, String)> = candidates(&o)
            .into_iter()
            .map(|c| (c.program, c.target))
            .collect();
        let want = [
            ("dummy_fentry", "dummy_fentry_target"),
            ("dummy_kprobe", "dummy_kprobe_target"),
            ("real", "vfs_read"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(all, want);
        o.fixups.programs.insert(
            "dummy_fentry".into(),
            crate::wire::ProgramFixup {
                attach_target: crate::wire::AttachTargets::new(vec!["vfs_read".into()]),
                ..Default::default()
            },
        );
        o.fixups.programs.insert(
            "dummy_kprobe".into(),
            crate::wire::ProgramFixup {
                autoload: Some(false),
                ..Default::default()
            },
        );
        let left: Vec<String> = candidates(&o).into_iter().map(|c| c.program).collect();
        assert_eq!(left, ["real"]);
    }
}
