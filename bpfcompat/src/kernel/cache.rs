//! The kernel cache: one directory per pinned `.deb` (named by its sha256)
//! holding the extracted `vmlinuz`, the kernel `config` when the package ships
//! one, and `meta.json`.
//!
//! Entries are built in a temporary directory and renamed into place, so a
//! reader sees a whole entry or none; a per-entry lock file serialises
//! concurrent fetches of the same kernel. An entry whose image no longer has
//! the recorded digest is reported corrupt and fetched again.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::FetchError;

/// The cache root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedKernel {
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// The kernel build config, when the package ships one.
    pub config: Option<PathBuf>,
    /// The kernel release (`uname -r`) the package names.
    pub release: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub package: String,
    pub version: String,
    pub release: String,
    pub vmlinuz_sha256: String,
    pub has_config: bool,
}

impl Cache {
    /// `$BPFCOMPAT_CACHE`, else `$XDG_CACHE_HOME/bpfcompat`, else `~/.cache/bpfcompat`.
    pub fn discover() -> Cache {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = env("BPFCOMPAT_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("bpfcompat")))
            .or_else(|| env("HOME").map(|p| p.join(".cache/bpfcompat")))
            .unwrap_or_else(|| PathBuf::from("/tmp/bpfcompat-cache"));
        Cache { root }
    }

    /// A cache at an explicit root.
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn entry_dir(&self, deb_sha256: &str) -> PathBuf {
        self.root.join("kernels").join(deb_sha256)
    }

    /// The cached kernel of a `.deb` digest: `Ok(None)` when absent,
    /// `Err(reason)` when present but damaged.
    pub fn lookup(&self, deb_sha256: &str) -> Result<Option<CachedKernel>, String> {
        let dir = self.entry_dir(deb_sha256);
        if !dir.exists() {
            return Ok(None);
        }
        let meta: Meta = std::fs::read(dir.join("meta.json"))
            .map_err(|e| format!("meta.json unreadable: {e}"))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("meta.json: {e}")))?;
        let vmlinuz = dir.join("vmlinuz");
        let digest = sha256_file(&vmlinuz).map_err(|e| format!("vmlinuz unreadable: {e}"))?;
        if digest != meta.vmlinuz_sha256 {
            return Err(format!(
                "vmlinuz has sha256 {digest}, {} was recorded",
                meta.vmlinuz_sha256
            ));
        }
        let config = meta.has_config.then(|| dir.join("config"));
        Ok(Some(CachedKernel {
            vmlinuz,
            config,
            release: meta.release,
        }))
    }

    /// Takes the exclusive lock of one entry; released when the file drops.
    pub(crate) fn lock(&self, deb_sha256: &str) -> Result<File, FetchError> {
        let dir = self.root.join("kernels");
        let io = |context: String| move |source| FetchError::Io { context, source };
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let path = dir.join(format!("{deb_sha256}.lock"));
        let file = File::create(&path).map_err(io(format!("cannot create {}", path.display())))?;
        file.lock()
            .map_err(io(format!("cannot lock {}", path.display())))?;
        Ok(file)
    }
}

/// Lower-case hex SHA-256 of a file.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_entry_is_reported_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        let dir = cache.entry_dir("abc");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
        let meta = Meta {
            package: "p".into(),
            version: "1".into(),
            release: "6.1.0-9-cloud-amd64".into(),
            vmlinuz_sha256: sha256_file(&dir.join("vmlinuz")).unwrap(),
            has_config: false,
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        let k = cache.lookup("abc").unwrap().unwrap();
        assert_eq!(k.release, "6.1.0-9-cloud-amd64");
        std::fs::write(dir.join("vmlinuz"), b"truncated").unwrap();
        assert!(cache.lookup("abc").unwrap_err().contains("sha256"));
        assert_eq!(cache.lookup("missing").unwrap(), None);
    }
}
