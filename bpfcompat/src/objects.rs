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
