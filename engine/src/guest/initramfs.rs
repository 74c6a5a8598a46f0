//! An in-memory initramfs (cpio `newc`), written in one go.
//!
//! Every entry gets mtime 0 and fixed owner, so the same inputs give the same
//! bytes. Parent directories are added on demand.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use crate::errors::InitramfsError;
use crate::guest::{library_closure, strip_debug};

/// An initramfs being assembled.
#[derive(Debug, Default, Clone)]
pub struct Initramfs {
    dirs: BTreeSet<String>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
}

use crate::guest::MODULES_DIR;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

impl Initramfs {
    /// An empty image.
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            self.dirs.insert(acc.clone());
        }
    }

    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: &str) {
        let p = path.trim_matches('/').to_string();
        self.parents(&p);
        self.dirs.insert(p);
    }

    /// Adds a file with the given permission bits.
    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) {
        let p = path.trim_start_matches('/').to_string();
        self.parents(&p);
        self.entries.retain(|e| e.path != p);
        self.entries.push(Entry {
            path: p,
            mode: S_IFREG | (perm & 0o7777),
            data,
        });
    }

    /// Adds a host file.
    pub fn host_file(&mut self, guest: &str, host: &Path, perm: u32) -> Result<(), InitramfsError> {
        // Objects, BTF files, artifacts and modules: regular files no larger
        // than a job disk holds.
        let limit = crate::guest::job_disk::CAPACITY;
        let data = crate::safe::read_input(host, limit).map_err(|source| InitramfsError::Read {
            path: host.to_path_buf(),
            source,
        })?;
        self.file(guest, perm, data);
        Ok(())
    }

    /// Adds a dynamically linked executable at `guest` with its interpreter and
    /// every shared library it needs, where the guest's loader will look; debug
    /// sections are dropped from all of them.
    pub fn executable(&mut self, guest: &str, host: &Path) -> Result<(), InitramfsError> {
        self.executable_with_libraries_under(guest, host, "")
    }

    /// [`Initramfs::executable`] for a job's executable: its libraries go
    /// below `root` (their own paths under it), since a job archive may only
    /// hold `/job`; the guest installs them where the loader looks
    /// ([`crate::guest::job_root`]).
    pub(crate) fn executable_with_libraries_under(
        &mut self,
        guest: &str,
        host: &Path,
        root: &str,
    ) -> Result<(), InitramfsError> {
        let mut files = vec![(guest.to_string(), host.to_path_buf())];
        files.extend(
            library_closure(host)?
                .into_iter()
                .map(|(path, host)| (format!("{root}{path}"), host)),
        );
        for (guest_path, host_path) in files {
            let data = std::fs::read(&host_path).map_err(|source| InitramfsError::Read {
                path: host_path.clone(),
                source,
            })?;
            self.file(&guest_path, 0o755, strip_debug(data));
        }
        Ok(())
    }

    /// Removes the file at `path` and returns its bytes.
    pub fn take(&mut self, path: &str) -> Option<Vec<u8>> {
        let p = path.trim_start_matches('/');
        let at = self.entries.iter().position(|e| e.path == p)?;
        Some(self.entries.remove(at).data)
    }

    /// An image whose `/init` is `init` (the agent, or a test binary), with
    /// the mount points the guest runtime uses.
    pub(crate) fn with_init(init: &Path) -> Result<Initramfs, InitramfsError> {
        let mut img = Initramfs::new();
        for d in ["proc", "sys", "dev", "tmp", "run"] {
            img.dir(d);
        }
        img.executable("/init", init)?;
        Ok(img)
    }

    /// A per-kernel initramfs at `out`: the shared one at `base` with a second
    /// archive appended that holds `modules` under [`MODULES_DIR`] and their
    /// load order (the kernel unpacks concatenated archives in turn).
    pub fn with_modules(
        base: &Path,
        modules: &[std::path::PathBuf],
        out: &Path,
    ) -> Result<(), InitramfsError> {
        let mut img = Initramfs::new();
        let mut order = String::new();
        for m in modules {
            let name = m
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            img.host_file(&format!("{MODULES_DIR}/{name}"), m, 0o644)?;
            order.push_str(&name);
            order.push('\n');
        }
        img.file(&format!("{MODULES_DIR}/order"), 0o644, order.into_bytes());
        let mut bytes = std::fs::read(base).map_err(|source| InitramfsError::Read {
            path: base.to_path_buf(),
            source,
        })?;
        img.write_to(&mut bytes)?;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(InitramfsError::Write)
    }

    /// Writes the archive to a new file at `path`, readable only by this
    /// user whatever the umask (it may hold the user's objects and binaries).
    pub(crate) fn write_private(&self, path: &Path) -> Result<(), InitramfsError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(InitramfsError::Write)?;
        self.write_to(std::io::BufWriter::new(file))
    }

    /// Writes the archive.
    pub fn write_to(&self, mut out: impl Write) -> Result<(), InitramfsError> {
        let mut ino = 1u32;
        let mut next_ino = || {
            ino += 1;
            ino
        };
        for d in &self.dirs {
            let w = cpio::NewcBuilder::new(d)
                .ino(next_ino())
                .mode(S_IFDIR | 0o755)
                .nlink(2)
                .write(&mut out, 0);
            w.finish().map_err(InitramfsError::Write)?;
        }
        for e in &self.entries {
            let size = u32::try_from(e.data.len()).map_err(|_| {
                InitramfsError::Write(std::io::Error::other(format!(
                    "{} is larger than 4 GiB",
                    e.path
                )))
            })?;
            let mut w = cpio::NewcBuilder::new(&e.path)
                .ino(next_ino())
                .mode(e.mode)
                .nlink(1)
                .write(&mut out, size);
            w.write_all(&e.data).map_err(InitramfsError::Write)?;
            w.finish().map_err(InitramfsError::Write)?;
        }
        cpio::newc::trailer(&mut out).map_err(InitramfsError::Write)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_has_parents_files_and_trailer() {
        let mut i = Initramfs::new();
        i.file("/job/objects/0.bpf.o", 0o644, b"ELF".to_vec());
        i.dir("/proc");
        let mut bytes = Vec::new();
        i.write_to(&mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(bytes.starts_with(b"070701"));
        for name in [
            "job\0",
            "job/objects\0",
            "proc\0",
            "job/objects/0.bpf.o\0",
            "TRAILER!!!\0",
        ] {
            assert!(text.contains(name), "missing {name:?}");
        }
        // newc pads every header+name and every payload to 4 bytes.
        assert_eq!(bytes.len() % 4, 0);
        // Reading it back gives the file intact.
        let mut r = &bytes[..];
        let mut found = false;
        loop {
            let mut e = cpio::NewcReader::new(r).unwrap();
            if e.entry().is_trailer() {
                break;
            }
            if e.entry().name() == "job/objects/0.bpf.o" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
                assert_eq!(buf, b"ELF");
                assert_eq!(e.entry().mode(), 0o100644);
                found = true;
            }
            r = e.finish().unwrap();
        }
        assert!(found);
    }

    #[test]
    fn a_taken_file_is_returned_and_no_longer_written() {
        let mut i = Initramfs::new();
        i.file("/init", 0o755, b"binary".to_vec());
        i.file("/lib/libc.so.6", 0o755, b"libc".to_vec());
        assert_eq!(i.take("/init").as_deref(), Some(&b"binary"[..]));
        assert_eq!(i.take("/init"), None);
        let mut bytes = Vec::new();
        i.write_to(&mut bytes).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("init\0") && text.contains("lib/libc.so.6\0"));
    }

    #[test]
    fn same_inputs_same_bytes() {
        let build = || {
            let mut i = Initramfs::new();
            i.file("a/b", 0o644, vec![1, 2, 3]);
            let mut v = Vec::new();
            i.write_to(&mut v).unwrap();
            v
        };
        assert_eq!(build(), build());
    }
}
