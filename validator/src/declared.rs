//! What an object declares, as libbpf opens it (nothing is loaded): its
//! programs and maps, against which a loader's contract is read.

use std::path::{Path, PathBuf};

use bpfcompat_engine::contract::Declared;
use libbpf_rs::ObjectBuilder;

/// The programs (name, section) and maps (name, type, sizes) of `path`.
pub fn declared(path: &Path) -> Result<Declared, OpenError> {
    let open = ObjectBuilder::default()
        .open_file(path)
        .map_err(|source| OpenError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Declared {
        programs: open
            .progs()
            .map(|p| {
                (
                    p.name().to_string_lossy().into_owned(),
                    p.section().to_string_lossy().into_owned(),
                )
            })
            .collect(),
        maps: open
            .maps()
            .map(|m| {
                (
                    m.name().to_string_lossy().into_owned(),
                    crate::sys::map_type_name(crate::sys::map_type(&m)),
                    [m.max_entries(), m.key_size(), m.value_size()],
                )
            })
            .collect(),
    })
}

/// libbpf could not open an object.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct OpenError {
    /// The object.
    pub path: PathBuf,
    /// libbpf's answer.
    pub source: libbpf_rs::Error,
}
