//! The shared-library closure of a dynamically linked executable: its ELF
//! interpreter and every `DT_NEEDED` library, recursively, found in the
//! directories the dynamic loader searches by default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

use crate::errors::InitramfsError;

/// Where libraries are looked up, in the loader's order.
const SEARCH: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Returns `(path in the guest, file on the host)` for the interpreter and
/// every library `binary` needs. A static binary has none.
pub fn library_closure(binary: &Path) -> Result<Vec<(String, PathBuf)>, InitramfsError> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut todo = vec![binary.to_path_buf()];
    let mut seen_names = std::collections::BTreeSet::new();
    while let Some(file) = todo.pop() {
        let info = read_dynamic(&file)?;
        if let Some(interp) = info.interp {
            out.entry(interp.clone())
                .or_insert_with(|| PathBuf::from(&interp));
        }
        for name in info.needed {
            if !seen_names.insert(name.clone()) {
                continue;
            }
            let (dir, host) = SEARCH
                .iter()
                .map(|d| (d, Path::new(d).join(&name)))
                .find(|(_, p)| p.exists())
                .ok_or_else(|| InitramfsError::MissingLibrary {
                    binary: file.clone(),
                    library: name.clone(),
                    searched: SEARCH.join(", "),
                })?;
            out.insert(format!("{dir}/{name}"), host.clone());
            todo.push(host);
        }
    }
    Ok(out.into_iter().collect())
}

struct Dynamic {
    interp: Option<String>,
    needed: Vec<String>,
}

fn read_dynamic(path: &Path) -> Result<Dynamic, InitramfsError> {
    let data = std::fs::read(path).map_err(|source| InitramfsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |e: object::read::Error| InitramfsError::BadElf {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let header = elf::FileHeader64::<object::Endianness>::parse(&*data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let mut interp = None;
    for ph in header.program_headers(endian, &*data).map_err(bad)? {
        if ph.p_type(endian) == elf::PT_INTERP {
            let bytes = ph
                .data(endian, &*data)
                .map_err(|()| InitramfsError::BadElf {
                    path: path.to_path_buf(),
                    message: "unreadable PT_INTERP".into(),
                })?;
            interp = Some(
                String::from_utf8_lossy(bytes)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    let mut needed = Vec::new();
    let sections = header.sections(endian, &*data).map_err(bad)?;
    if let Some((dyns, link)) = sections.dynamic(endian, &*data).map_err(bad)? {
        let strings = sections.strings(endian, &*data, link).map_err(bad)?;
        for d in dyns {
            if d.tag32(endian) == Some(elf::DT_NEEDED as i32) {
                let name = d.string(endian, strings).map_err(bad)?;
                needed.push(String::from_utf8_lossy(name).to_string());
            }
        }
    }
    Ok(Dynamic { interp, needed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_of_this_test_binary_has_libc_and_interpreter() {
        let me = std::env::current_exe().unwrap();
        let closure = library_closure(&me).unwrap();
        let guest: Vec<&str> = closure.iter().map(|(g, _)| g.as_str()).collect();
        assert!(guest.iter().any(|g| g.ends_with("/libc.so.6")), "{guest:?}");
        assert!(guest.iter().any(|g| g.contains("ld-linux")), "{guest:?}");
        for (_, host) in &closure {
            assert!(host.exists(), "{}", host.display());
        }
    }

    #[test]
    fn non_elf_is_a_clear_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"#!/bin/sh\n").unwrap();
        let err = library_closure(f.path()).unwrap_err().to_string();
        assert!(err.contains("not a loadable ELF"), "{err}");
    }
}
