//! Installing what a job's executables need at their own paths (see
//! [`crate::wire::JOB_ROOT`]): each file below it becomes a link at the
//! path it names, unless the guest already has that path (the agent's own
//! libraries, from the same host, stay as they are).

use std::path::{Path, PathBuf};

/// Links every file below `root` into `/`-relative place under `target`
/// (`/` in a guest); returns one warning per file that could not be placed.
pub fn install(root: &Path, target: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => {
                    if let Err(err) = place(root, target, &path) {
                        warnings.push(format!("install {}: {err}", path.display()));
                    }
                }
                _ => {}
            }
        }
    }
    warnings
}

fn place(root: &Path, target: &Path, file: &Path) -> std::io::Result<()> {
    let rel = file.strip_prefix(root).map_err(std::io::Error::other)?;
    let at: PathBuf = target.join(rel);
    if at.symlink_metadata().is_ok() {
        return Ok(());
    }
    if let Some(parent) = at.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::os::unix::fs::symlink(file, &at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_below_the_root_are_linked_where_missing_and_kept_where_present() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("job/root");
        let target = dir.path().join("guest");
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/libelf.so.1"), b"elf").unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/libc.so.6"), b"theirs").unwrap();
        std::fs::create_dir_all(target.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(target.join("lib/x86_64-linux-gnu/libc.so.6"), b"ours").unwrap();
        assert!(install(&root, &target).is_empty());
        let lib = target.join("lib/x86_64-linux-gnu");
        assert_eq!(std::fs::read(lib.join("libelf.so.1")).unwrap(), b"elf");
        assert_eq!(std::fs::read(lib.join("libc.so.6")).unwrap(), b"ours");
    }
}
