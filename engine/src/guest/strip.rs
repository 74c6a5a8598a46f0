//! Dropping debug sections from executables and libraries before they go into
//! an initramfs. A debug build carries mostly DWARF (an agent of 18 MB is
//! 2 MB without it), and every byte of the initramfs is copied and unpacked by
//! an emulated guest before init runs.

use object::build::elf::Builder;

/// The ELF without its `.debug_*` sections; the input unchanged when it is
/// not an ELF file the rewriter understands (never worse than the input).
pub fn strip_debug(data: Vec<u8>) -> Vec<u8> {
    let Ok(mut builder) = Builder::read(&*data) else {
        return data;
    };
    let mut any = false;
    for s in builder.sections.iter_mut() {
        if s.name.as_slice().starts_with(b".debug_") {
            s.delete = true;
            any = true;
        }
    }
    if !any {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() / 2);
    match builder.write(&mut out) {
        Ok(()) => out,
        Err(_) => data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stripped_test_binary_is_smaller_and_still_runs() {
        let me = std::env::current_exe().unwrap();
        let data = std::fs::read(&me).unwrap();
        let stripped = strip_debug(data.clone());
        assert!(
            stripped.len() < data.len(),
            "{} !< {}",
            stripped.len(),
            data.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("stripped");
        std::fs::write(&copy, &stripped).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&copy)
            .args(["--list", "--format", "terse"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("stripped_test_binary_is_smaller"));
    }

    #[test]
    fn non_elf_passes_through() {
        assert_eq!(strip_debug(b"#!/bin/sh\n".to_vec()), b"#!/bin/sh\n");
    }
}
