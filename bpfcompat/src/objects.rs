//! Checking user-supplied BPF objects before any guest boots, so a wrong
//! path or file fails in milliseconds with a clear message.

use std::path::{Path, PathBuf};

use object::read::elf::FileHeader;

use crate::errors::ObjectError;

/// `e_machine` of eBPF objects.
pub const EM_BPF: u16 = 247;

/// Checks that `path` is a readable 64-bit ELF file for the BPF machine.
pub fn check_bpf_object(path: &Path) -> Result<(), ObjectError> {
    let data = std::fs::read(path).map_err(|source| ObjectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !data.starts_with(b"\x7fELF") {
        return Err(ObjectError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let not_bpf = |machine: String| ObjectError::NotBpf {
        path: path.to_path_buf(),
        machine,
    };
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data)
        .map_err(|e| not_bpf(format!("unreadable 64-bit ELF header: {e}")))?;
    let endian = header.endian().map_err(|e| not_bpf(e.to_string()))?;
    let machine = header.e_machine(endian).0;
    if machine != EM_BPF {
        return Err(not_bpf(format!("e_machine {machine}")));
    }
    Ok(())
}

/// Report names for object paths: the file name, or more of the path where
/// two files share a name.
pub fn display_names(paths: &[PathBuf]) -> Vec<String> {
    let base = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    paths
        .iter()
        .map(|p| {
            let b = base(p);
            if paths.iter().filter(|q| base(q) == b).count() > 1 {
                p.display().to_string()
            } else {
                b
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_missing_non_elf_and_non_bpf_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bpf.o");
        assert!(matches!(
            check_bpf_object(&missing),
            Err(ObjectError::Read { .. })
        ));
        let text = dir.path().join("text.o");
        std::fs::write(&text, "hello").unwrap();
        assert!(matches!(
            check_bpf_object(&text),
            Err(ObjectError::NotElf { .. })
        ));
        let me = std::env::current_exe().unwrap();
        let err = check_bpf_object(&me).unwrap_err();
        assert!(err.to_string().contains("e_machine 62"), "{err}");
    }

    #[test]
    fn names_are_file_names_unless_ambiguous() {
        let names = display_names(&["a/x.bpf.o".into(), "b/x.bpf.o".into(), "c/y.bpf.o".into()]);
        assert_eq!(names, ["a/x.bpf.o", "b/x.bpf.o", "y.bpf.o"]);
    }
}

/// A BPF object found inside an executable.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// The skeleton's module name, when the executable still has symbols.
    pub name: Option<String>,
    /// The object's bytes.
    pub bytes: Vec<u8>,
}

/// Whether `bytes` start with an ELF header for the BPF machine.
pub fn is_bpf_elf(bytes: &[u8]) -> bool {
    bytes.len() >= 20
        && bytes.starts_with(b"\x7fELF")
        && u16::from_le_bytes([bytes[18], bytes[19]]) == EM_BPF
}

/// The length of the ELF file at the start of `bytes`: the end of its last
/// section or of its section header table, whichever is later.
fn elf_len(bytes: &[u8]) -> Option<usize> {
    use object::read::elf::SectionHeader;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(bytes).ok()?;
    let endian = header.endian().ok()?;
    let shoff = header.e_shoff(endian) as usize;
    let table_end = shoff + header.e_shnum(endian) as usize * header.e_shentsize(endian) as usize;
    let sections = header.section_headers(endian, bytes).ok()?;
    let data_end = sections
        .iter()
        .filter(|s| s.sh_type(endian) != object::elf::SHT_NOBITS)
        .map(|s| (s.sh_offset(endian) + s.sh_size(endian)) as usize)
        .max()
        .unwrap_or(0);
    Some(table_end.max(data_end)).filter(|&n| n <= bytes.len())
}

/// The objects libbpf-cargo (0.26 and later) embeds in every executable that
/// links a skeleton, in its `.bpf.objs` section. Objects are cut by the
/// section's symbols when there are any, else by their own ELF headers (a
/// stripped binary keeps the section but loses the symbols).
pub fn embedded_objects(exe: &[u8]) -> Vec<Embedded> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let Ok(file) = object::read::elf::ElfFile64::<object::Endianness>::parse(exe) else {
        return Vec::new();
    };
    let Some(section) = file.section_by_name(".bpf.objs") else {
        return Vec::new();
    };
    let Ok(data) = section.data() else {
        return Vec::new();
    };
    let mut out: Vec<Embedded> = file
        .symbols()
        .filter(|s| s.section_index() == Some(section.index()) && s.size() > 0)
        .filter_map(|s| {
            let start = usize::try_from(s.address().checked_sub(section.address())?).ok()?;
            let bytes = data.get(start..start + s.size() as usize)?;
            is_bpf_elf(bytes).then(|| Embedded {
                name: s.name().ok().and_then(skeleton_name),
                bytes: bytes.to_vec(),
            })
        })
        .collect();
    if out.is_empty() {
        let mut at = 0;
        while let Some(off) = data[at..].windows(4).position(|w| w == b"\x7fELF") {
            let start = at + off;
            match elf_len(&data[start..]) {
                Some(len) if is_bpf_elf(&data[start..]) => {
                    out.push(Embedded {
                        name: None,
                        bytes: data[start..start + len].to_vec(),
                    });
                    at = start + len;
                }
                _ => at = start + 4,
            }
        }
    }
    out
}

/// `_ZN…<module>3imp4DATA17h…E` (a skeleton's `DATA` static) → `<module>`.
fn skeleton_name(symbol: &str) -> Option<String> {
    let mut rest = symbol.strip_prefix("_ZN")?;
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0) {
        let len: usize = rest[..digits].parse().ok()?;
        let part = rest.get(digits..digits + len)?;
        parts.push(part);
        rest = &rest[digits + len..];
    }
    let data = parts.iter().rposition(|p| *p == "DATA")?;
    (data >= 2 && parts[data - 1] == "imp").then(|| parts[data - 2].to_string())
}

#[cfg(test)]
mod embedded_tests {
    use super::*;

    #[test]
    fn skeleton_names_from_mangled_symbols() {
        assert_eq!(
            skeleton_name("_ZN6loader7ringbuf3imp4DATA17h0123456789abcdefE").as_deref(),
            Some("ringbuf")
        );
        assert_eq!(skeleton_name("_ZN4main4DATA17h0123456789abcdefE"), None);
        assert_eq!(skeleton_name("not_mangled"), None);
    }

    #[test]
    fn non_elf_or_no_section_yields_nothing() {
        assert!(embedded_objects(b"hello").is_empty());
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(embedded_objects(&me).is_empty());
    }
}
