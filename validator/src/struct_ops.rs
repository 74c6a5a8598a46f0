//! Which struct_ops map registers which programs, read from the object's
//! ELF: a struct_ops map is a variable in a `.struct_ops` (or
//! `.struct_ops.link`) section, and each of its function pointers is a
//! relocation, inside that variable, to a program's symbol. A refused
//! registration is then blamed on that map's programs only.

use std::collections::BTreeMap;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolIndex, SymbolKind};

/// Program name → the struct_ops maps that register it.
pub type Owners = BTreeMap<String, Vec<String>>;

/// The owners of every program a struct_ops map points to (empty when the
/// object cannot be read or has no struct_ops maps).
pub fn owners(bytes: &[u8]) -> Owners {
    let mut out = Owners::new();
    let Ok(file) = object::File::parse(bytes) else {
        return out;
    };
    for section in file.sections() {
        let Ok(name) = section.name() else { continue };
        if !(name == ".struct_ops" || name.starts_with(".struct_ops.")) {
            continue;
        }
        // The maps: the section's variables, by address range.
        let maps: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| s.section_index() == Some(section.index()) && s.size() > 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(index) = reloc.target() else {
                continue;
            };
            let Some(program) = program_at(&file, index) else {
                continue;
            };
            if let Some((_, _, map)) = maps
                .iter()
                .find(|(start, size, _)| (*start..start + size).contains(&offset))
            {
                let owners = out.entry(program).or_default();
                if !owners.contains(map) {
                    owners.push(map.clone());
                }
            }
        }
    }
    out
}

/// The program a relocation's symbol stands for: a function symbol names it;
/// a section symbol points to the function at its address.
fn program_at(file: &object::File, index: SymbolIndex) -> Option<String> {
    let symbol = file.symbol_by_index(index).ok()?;
    if symbol.kind() == SymbolKind::Text {
        return symbol.name().ok().map(str::to_string);
    }
    file.symbols()
        .find(|s| {
            s.kind() == SymbolKind::Text
                && s.section_index() == symbol.section_index()
                && s.address() == symbol.address()
        })
        .and_then(|s| s.name().ok().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture compiled as the e2e tests compile it (clang is part of
    /// the set-up).
    #[test]
    fn each_struct_ops_map_owns_the_programs_it_points_to() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.bpf.o");
        let status = std::process::Command::new("clang")
            .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg(fixtures.join("struct_ops_unused.bpf.c"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("clang runs");
        assert!(status.success());
        let owners = owners(&std::fs::read(&out).unwrap());
        assert_eq!(owners["cc_ssthresh"], ["cc_used"]);
        assert_eq!(owners["cc_undo_cwnd"], ["cc_used"]);
        assert_eq!(owners["half_ssthresh"], ["cc_incomplete"]);
        assert!(super::owners(b"not an object").is_empty());
    }
}
