//! The kernel cache: one directory per pinned `.deb` (named by its sha256)
//! holding the extracted `vmlinuz`, the kernel `config` when the package ships
//! one, and `meta.json`.
//!
//! Entries are built in a temporary directory and renamed into place, so a
//! reader sees a whole entry or none; a per-entry lock file serialises
//! concurrent fetches of the same kernel. An entry whose image no longer has
//! the recorded digest is reported corrupt and fetched again.
//!
//! Entry names are [`Sha256Hex`] values, never raw strings from a lock.
//! Directories are created 0700 and lock files 0600 without following a
//! symbolic link, so a link planted in a shared directory cannot make a run
//! write through it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::{CacheError, FetchError};
use crate::safe::Sha256Hex;

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
    /// The guest modules the package carries (see
    /// [`GUEST_MODULES`](crate::kernel::GUEST_MODULES)), in load order.
    pub modules: Vec<PathBuf>,
    /// The image's digest, as recorded and checked when the entry was
    /// looked up (BLAKE3, or sha256 for entries that predate it).
    pub vmlinuz_digest: String,
}

/// The layout of cache entries; an entry of another layout is extracted again.
pub(crate) const LAYOUT: u32 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub package: String,
    pub version: String,
    pub release: String,
    pub vmlinuz_sha256: String,
    /// Checked instead of the sha256 when present: cheap in debug builds
    /// (test binaries look entries up too), where sha256 is slow.
    #[serde(default)]
    pub vmlinuz_blake3: Option<String>,
    pub has_config: bool,
    /// [`LAYOUT`] of the entry (absent: layout 1, without modules).
    #[serde(default)]
    pub layout: u32,
    /// The guest modules extracted, in load order.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Whether the entry holds the kernel's function index (layout 5;
    /// only packages with a `System.map` give one).
    #[serde(default)]
    pub indexed: bool,
}

/// Why a cache entry cannot be used.
#[derive(Debug)]
pub enum EntryProblem {
    /// The entry is incomplete or its image changed: fetch it again.
    Damaged(String),
    /// The entry exists but this user cannot read it: fetching again would
    /// not help.
    Unreadable(std::io::Error),
}

impl std::fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryProblem::Damaged(reason) => f.write_str(reason),
            EntryProblem::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

impl Cache {
    /// `$BPFCOMPAT_CACHE`, else `$XDG_CACHE_HOME/bpfcompat`, else
    /// `~/.cache/bpfcompat`. With none of them set there is no private place
    /// to cache kernels: a shared fallback such as `/tmp` would let another
    /// user plant files, so that is an error that names the variable.
    pub fn discover() -> Result<Cache, CacheError> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = env("BPFCOMPAT_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("bpfcompat")))
            .or_else(|| env("HOME").map(|p| p.join(".cache/bpfcompat")))
            .ok_or(CacheError::NoLocation)?;
        check_private(&root)?;
        Ok(Cache { root })
    }

    /// A cache at an explicit root (tests: no ownership check).
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn entry_dir(&self, deb_sha256: &Sha256Hex) -> PathBuf {
        self.root.join("kernels").join(deb_sha256.as_str())
    }

    /// The directory of kernel entries, created 0700 when missing.
    pub(crate) fn kernels_dir(&self) -> Result<PathBuf, FetchError> {
        self.private_dir("kernels")
    }

    /// `<root>/<name>`, created 0700 when missing.
    fn private_dir(&self, name: &str) -> Result<PathBuf, FetchError> {
        let dir = self.root.join(name);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| FetchError::Io {
                context: format!("cannot create the cache directory {}", dir.display()),
                source,
            })?;
        Ok(dir)
    }

    /// The cached kernel of a `.deb` digest: `Ok(None)` when absent.
    pub fn lookup(&self, deb_sha256: &Sha256Hex) -> Result<Option<CachedKernel>, EntryProblem> {
        let dir = self.entry_dir(deb_sha256);
        if !dir.exists() {
            return Ok(None);
        }
        let unreadable = |e: std::io::Error, what: &str| match e.kind() {
            std::io::ErrorKind::PermissionDenied => EntryProblem::Unreadable(e),
            _ => EntryProblem::Damaged(format!("{what} unreadable: {e}")),
        };
        // An entry is what this cache wrote: a link planted in it (to
        // another entry's kernel, or outside the cache) is damage, never
        // followed.
        for part in [Path::new(""), Path::new("meta.json"), Path::new("vmlinuz")] {
            let p = dir.join(part);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(EntryProblem::Damaged(format!(
                    "{} is a symbolic link",
                    p.display()
                )));
            }
        }
        let meta: Meta = serde_json::from_slice(
            &std::fs::read(dir.join("meta.json")).map_err(|e| unreadable(e, "meta.json"))?,
        )
        .map_err(|e| EntryProblem::Damaged(format!("meta.json: {e}")))?;
        if meta.layout != LAYOUT {
            return Err(EntryProblem::Damaged(format!(
                "an entry of another layout ({}), without the current guest modules or function index",
                meta.layout
            )));
        }
        if let Some(bad) = meta
            .modules
            .iter()
            .find(|m| !crate::kernel::GUEST_MODULES.contains(&m.as_str()))
        {
            return Err(EntryProblem::Damaged(format!("unknown module `{bad}`")));
        }
        let vmlinuz = dir.join("vmlinuz");
        let (digest, recorded) = match &meta.vmlinuz_blake3 {
            Some(b3) => (blake3_file(&vmlinuz), b3),
            None => (sha256_file(&vmlinuz), &meta.vmlinuz_sha256),
        };
        let digest = digest.map_err(|e| unreadable(e, "vmlinuz"))?;
        if digest != *recorded {
            return Err(EntryProblem::Damaged(format!(
                "vmlinuz has digest {digest}, {recorded} was recorded"
            )));
        }
        let config = meta.has_config.then(|| dir.join("config"));
        let modules: Vec<PathBuf> = meta
            .modules
            .iter()
            .map(|m| dir.join("modules").join(format!("{m}.ko")))
            .collect();
        if let Some(missing) = modules
            .iter()
            .chain(config.iter())
            .find(|m| std::fs::symlink_metadata(m).is_ok_and(|md| md.file_type().is_symlink()))
        {
            return Err(EntryProblem::Damaged(format!(
                "{} is a symbolic link",
                missing.display()
            )));
        }
        if let Some(missing) = modules.iter().find(|m| !m.is_file()) {
            return Err(EntryProblem::Damaged(format!(
                "{} is missing",
                missing.display()
            )));
        }
        Ok(Some(CachedKernel {
            vmlinuz,
            config,
            release: meta.release,
            modules,
            vmlinuz_digest: digest,
        }))
    }

    /// The function index of the package's entry: `None` when the entry is
    /// absent, of another layout, or was made from packages without a
    /// `System.map`.
    pub fn function_index(&self, deb_sha256: &Sha256Hex) -> Option<super::FunctionIndex> {
        let dir = self.entry_dir(deb_sha256);
        let meta: Meta =
            serde_json::from_slice(&crate::safe::read_input(&dir.join("meta.json"), 1 << 20).ok()?)
                .ok()?;
        (meta.layout == LAYOUT && meta.indexed)
            .then(|| super::functions::Index::read(&dir).ok())
            .flatten()
    }

    /// The Debian changelog the entry's packages shipped, where it was kept.
    pub fn changelog(&self, deb_sha256: &Sha256Hex) -> Option<PathBuf> {
        let p = self.entry_dir(deb_sha256).join(super::contents::CHANGELOG);
        std::fs::symlink_metadata(&p)
            .is_ok_and(|m| m.file_type().is_file())
            .then_some(p)
    }

    /// Whether an entry for the package is present, without checking it (a
    /// listing's question; [`Cache::lookup`] checks it before use).
    pub fn has(&self, deb_sha256: &Sha256Hex) -> bool {
        self.entry_dir(deb_sha256).join("meta.json").is_file()
    }

    /// Takes the exclusive lock of one entry; released when the file drops.
    pub(crate) fn lock(&self, deb_sha256: &Sha256Hex) -> Result<Lock, FetchError> {
        self.lock_in(&self.kernels_dir()?, deb_sha256.as_str())
    }

    /// Removes what runs that were killed left in the cache (a staging
    /// directory, a partial download, a machine half saved): each is named
    /// with its creator's PID, and is removed only when that process is
    /// gone. Returns what was removed.
    pub fn sweep(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for dir in ["kernels", "snapshots"].map(|d| self.root.join(d)) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if crate::process_group::left_by_the_dead(&name, crate::private::LEFTOVER_PREFIXES)
                    .is_none()
                {
                    continue;
                }
                let path = e.path();
                let gone = match e.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                    _ => std::fs::remove_file(&path),
                };
                if gone.is_ok() {
                    removed.push(path);
                }
            }
        }
        removed
    }

    /// The directory of saved machines (warm guests), created 0700.
    pub(crate) fn snapshots_dir(&self) -> Result<PathBuf, FetchError> {
        self.private_dir("snapshots")
    }

    /// Takes the exclusive lock `<dir>/<name>.lock` (`name` is a digest we
    /// computed), waiting for its holder.
    pub(crate) fn lock_in(&self, dir: &Path, name: &str) -> Result<Lock, FetchError> {
        Lock::take(dir, name, true).map(|l| l.expect("a blocking lock is taken"))
    }
}

/// An exclusive lock file, released when dropped. The file is never
/// truncated and never opened through a link. Its holder may remove it
/// with what it guards ([`Lock::remove`]): a waiter that gets the lock
/// afterwards sees that the path no longer names the file it locked, and
/// locks again, so two runs never both hold a lock on one name.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Locks `<dir>/<name>.lock`; `None` when `wait` is false and another
    /// process holds it.
    pub(crate) fn take(dir: &Path, name: &str, wait: bool) -> Result<Option<Lock>, FetchError> {
        let io = |context: String| move |source| FetchError::Io { context, source };
        let path = dir.join(format!("{name}.lock"));
        loop {
            let file = open_marker(&path).map_err(io(format!(
                "cannot open the lock file {} (a symbolic link there is refused)",
                path.display()
            )))?;
            if wait {
                file.lock()
                    .map_err(io(format!("cannot lock {}", path.display())))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(io(format!("cannot lock {}", path.display()))(e));
                    }
                }
            }
            if names(&path, &file) {
                return Ok(Some(Lock { file, path }));
            }
        }
    }

    /// Removes the lock file, then releases the lock.
    pub(crate) fn remove(self) -> std::io::Result<()> {
        let removed = std::fs::remove_file(&self.path);
        drop(self.file);
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether `path` (not followed) is still the file `file` has open.
/// Opens (creating it private) a lock or in-use marker file: never
/// through a link, never truncated.
fn open_marker(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

fn names(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(p), Ok(f)) => p.dev() == f.dev() && p.ino() == f.ino(),
        _ => false,
    }
}

/// A kernel entry of the cache, as `cache prune` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its name: the digest of its packages ([`Pin::entry_key`](crate::matrix::Pin::entry_key)).
    pub key: String,
    /// `package version` from its `meta.json`, when readable.
    pub what: Option<String>,
    /// Bytes on disk.
    pub bytes: u64,
}

impl Cache {
    /// The kernel entries present (complete or not).
    pub fn entries(&self) -> Vec<Entry> {
        let Ok(dir) = std::fs::read_dir(self.root.join("kernels")) else {
            return Vec::new();
        };
        let mut out: Vec<Entry> = dir
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let key = e.file_name().to_str()?.to_string();
                Sha256Hex::try_from(key.clone()).ok()?;
                let what = std::fs::read(e.path().join("meta.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
                    .map(|m| format!("{} {}", m.package, m.version));
                Some(Entry {
                    key,
                    what,
                    bytes: disk_usage(&e.path()),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Removes the lock files that guard nothing any more (left by an
    /// earlier release, or by a run that was killed) and that nobody holds;
    /// returns how many.
    pub fn remove_stale_locks(&self) -> usize {
        ["kernels", "snapshots"]
            .iter()
            .map(|d| remove_stale_locks_in(&self.root.join(d)))
            .sum()
    }

    /// Marks an entry as in use by a run until the guard drops: a shared
    /// lock on `<key>.use` that [`Cache::remove_entry`] will not break. Taken
    /// before the entry is looked up, so a removal either finishes first (and
    /// the run fetches again) or waits for the run.
    pub fn hold(&self, key: &Sha256Hex) -> Result<InUse, FetchError> {
        loop {
            let (file, path) = self.use_file(key)?;
            file.lock_shared().map_err(|source| FetchError::Io {
                context: format!("cannot mark kernel {} in use", key.as_str()),
                source,
            })?;
            // A removal deletes the marker with the entry: a lock on the
            // deleted file would guard nothing, so take the new one.
            if names(&path, &file) {
                return Ok(InUse(file));
            }
        }
    }

    fn use_file(&self, key: &Sha256Hex) -> Result<(File, PathBuf), FetchError> {
        let path = self.kernels_dir()?.join(format!("{}.use", key.as_str()));
        let file = open_marker(&path).map_err(|source| FetchError::Io {
            context: format!(
                "cannot open {} (a symbolic link there is refused)",
                path.display()
            ),
            source,
        })?;
        Ok((file, path))
    }

    /// Removes an entry, under its lock (a run fetching it finishes first);
    /// `false`, leaving it, while a run uses it ([`Cache::hold`]).
    pub fn remove_entry(&self, key: &Sha256Hex) -> Result<bool, FetchError> {
        let (in_use, use_path) = self.use_file(key)?;
        match in_use.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(FetchError::Io {
                    context: format!("cannot lock kernel {}", key.as_str()),
                    source,
                });
            }
        }
        let lock = self.lock(key)?;
        let dir = self.entry_dir(key);
        let io = |source| FetchError::Io {
            context: format!("cannot remove {}", dir.display()),
            source,
        };
        std::fs::remove_dir_all(&dir).map_err(io)?;
        lock.remove().map_err(io)?;
        // Still held exclusively: a run waiting on it sees it gone and
        // takes a new one ([`Cache::hold`]).
        std::fs::remove_file(&use_path).map_err(io)?;
        drop(in_use);
        Ok(true)
    }
}

/// A kernel entry in use by a run (see [`Cache::hold`]).
#[derive(Debug)]
pub struct InUse(#[allow(dead_code, reason = "held for its lock")] File);

/// Removes the unheld `<name>.lock` files of `dir` beside which nothing else
/// is named `<name>` or `<name>.*`.
fn remove_stale_locks_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let guards = |name: &str| {
        names.iter().any(|n| {
            n.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || (rest.starts_with('.') && rest != ".lock"))
        })
    };
    names
        .iter()
        .filter_map(|n| n.strip_suffix(".lock"))
        .filter(|name| Sha256Hex::try_from(name.to_string()).is_ok() && !guards(name))
        .filter(|name| match Lock::take(dir, name, false) {
            Ok(Some(lock)) => lock.remove().is_ok(),
            _ => false,
        })
        .count()
}

/// Bytes of the regular files below `dir`, links not followed.
pub(crate) fn disk_usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Lower-case hex SHA-256 of a file.
/// The BLAKE3 digest of a file, hex: of cache entries' images, saved
/// machines (checked before every restore) and what goes into them. It must
/// cost little next to a restore, in test binaries' debug builds too
/// (sha256 of a 120 MB machine took 0.7 s here, longer than the restore;
/// BLAKE3's SIMD code is assembly, fast at any optimisation level).
pub(crate) fn blake3_file(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_mmap(path)?;
    Ok(h.finalize().to_hex().to_string())
}

pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A cache root that exists must be this user's and writable by no one
/// else (a missing one is created 0700 when first used).
fn check_private(root: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root) else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    let unsafe_because = |why: String, fix: String| CacheError::Unsafe {
        path: root.to_path_buf(),
        why,
        fix,
    };
    if meta.uid() != me {
        return Err(unsafe_because(
            format!("owned by uid {}, not by this user (uid {me})", meta.uid()),
            format!("chown -R {me} {}", root.display()),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(
            format!("writable by others (mode {:o})", meta.mode() & 0o7777),
            format!("chmod go-w {}", root.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_killed_run_left_is_swept_and_what_a_live_one_fills_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        let kernels = cache.kernels_dir().unwrap();
        let snapshots = cache.snapshots_dir().unwrap();
        // A PID no process has (above the kernel's maximum).
        let dead = 4_194_305;
        let left = [
            kernels.join(format!(".staging-{dead}-abc")),
            snapshots.join(format!(".saving-{dead}-abc")),
        ];
        for d in &left {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("vmlinuz"), b"half").unwrap();
        }
        std::fs::write(kernels.join(format!(".download-{dead}-x")), b"part").unwrap();
        // This process's own work in progress, and what is no leftover.
        let live = crate::private::tempdir(".staging-", Some(&kernels)).unwrap();
        std::fs::write(kernels.join("notes"), b"x").unwrap();
        let removed = cache.sweep();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(left.iter().all(|d| !d.exists()));
        assert!(live.path().exists());
        assert!(kernels.join("notes").exists());
    }

    #[test]
    fn a_cache_another_user_owns_or_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        // Missing: created private when first used.
        assert!(check_private(&root).is_ok());
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private(&root).is_ok());
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_private(&root).unwrap_err().to_string();
        assert!(
            e.contains("writable by others (mode 777)") && e.contains("chmod go-w"),
            "{e}"
        );
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        if nix::unistd::geteuid().is_root() {
            // nobody's directory, as a root run would find it planted.
            nix::unistd::chown(&root, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            let e = check_private(&root).unwrap_err().to_string();
            assert!(
                e.contains("owned by uid 65534") && e.contains("chown -R 0"),
                "{e}"
            );
        }
    }

    #[test]
    fn damaged_entry_is_reported_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        let abc = Sha256Hex::try_from("a".repeat(64)).unwrap();
        let dir = cache.entry_dir(&abc);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
        let meta = Meta {
            package: "p".into(),
            version: "1".into(),
            release: "6.1.0-9-cloud-amd64".into(),
            vmlinuz_sha256: sha256_file(&dir.join("vmlinuz")).unwrap(),
            vmlinuz_blake3: None,
            has_config: false,
            layout: LAYOUT,
            indexed: false,
            modules: Vec::new(),
        };
        // An entry of an earlier release (sha256 only), then one with BLAKE3:
        // each is checked by what it recorded.
        let original = std::fs::read(dir.join("vmlinuz")).unwrap();
        let with_blake3 = Meta {
            vmlinuz_blake3: Some(blake3_file(&dir.join("vmlinuz")).unwrap()),
            vmlinuz_sha256: "not checked when blake3 is recorded".into(),
            ..serde_json::from_value(serde_json::to_value(&meta).unwrap()).unwrap()
        };
        for m in [&meta, &with_blake3] {
            std::fs::write(dir.join("vmlinuz"), &original).unwrap();
            std::fs::write(dir.join("meta.json"), serde_json::to_vec(m).unwrap()).unwrap();
            let k = cache.lookup(&abc).unwrap().unwrap();
            assert_eq!(k.release, "6.1.0-9-cloud-amd64");
            std::fs::write(dir.join("vmlinuz"), b"truncated").unwrap();
            let problem = cache.lookup(&abc).unwrap_err();
            assert!(
                matches!(&problem, EntryProblem::Damaged(r) if r.contains("was recorded")),
                "{problem}"
            );
        }
        let missing = Sha256Hex::try_from("b".repeat(64)).unwrap();
        assert_eq!(cache.lookup(&missing).unwrap(), None);
    }

    #[test]
    fn a_planted_lock_link_is_refused_and_its_target_untouched() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path().join("cache"));
        let digest = Sha256Hex::try_from("c".repeat(64)).unwrap();
        let kernels = cache.kernels_dir().unwrap();
        let mode = std::fs::metadata(&kernels).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, kernels.join(format!("{digest}.lock"))).unwrap();
        let err = cache.lock(&digest).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn lock_files_are_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        let digest = Sha256Hex::try_from("d".repeat(64)).unwrap();
        drop(cache.lock(&digest).unwrap());
        let path = tmp.path().join(format!("kernels/{digest}.lock"));
        std::fs::write(&path, b"x").unwrap();
        drop(cache.lock(&digest).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"x", "never truncated");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn prune_removes_only_unheld_locks_that_guard_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        let kernels = cache.kernels_dir().unwrap();
        let [stale, held, guarding] = ["a", "b", "c"].map(|c| c.repeat(64));
        for name in [&stale, &held, &guarding] {
            std::fs::write(kernels.join(format!("{name}.lock")), b"").unwrap();
        }
        std::fs::create_dir(kernels.join(&guarding)).unwrap();
        let _held = Lock::take(&kernels, &held, true).unwrap();
        assert_eq!(cache.remove_stale_locks(), 1);
        assert!(!kernels.join(format!("{stale}.lock")).exists());
        assert!(kernels.join(format!("{held}.lock")).exists());
        assert!(kernels.join(format!("{guarding}.lock")).exists());
    }

    #[test]
    fn a_waiter_on_a_lock_removed_by_its_holder_locks_the_file_there_now() {
        let tmp = tempfile::tempdir().unwrap();
        let held = Lock::take(tmp.path(), "k", true).unwrap().unwrap();
        assert!(
            Lock::take(tmp.path(), "k", false).unwrap().is_none(),
            "held"
        );
        let waiter = std::thread::spawn({
            let dir = tmp.path().to_path_buf();
            move || Lock::take(&dir, "k", true).unwrap().unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        held.remove().unwrap();
        let got = waiter.join().unwrap();
        // The waiter holds the lock on the file the name now gives, so a
        // third run cannot take the same name at once.
        assert!(names(&tmp.path().join("k.lock"), &got.file));
        assert!(Lock::take(tmp.path(), "k", false).unwrap().is_none());
        got.remove().unwrap();
        assert!(!tmp.path().join("k.lock").exists());
    }
}

/// Random plants between runs: links (into another entry, out of the
/// cache), truncations, swapped files and leftovers with dead or live
/// owners. Whatever was planted, the cache never answers with a kernel
/// whose image is not the one its entry recorded, never writes outside
/// itself, and never deletes a machine that is intact.
#[cfg(test)]
mod plants {
    use super::*;
    use proptest::prelude::*;

    /// Where a plant lands, relative to the cache root.
    const SPOTS: &[&str] = &[
        "kernels/A/meta.json",
        "kernels/A/vmlinuz",
        "kernels/B/meta.json",
        "kernels/B/vmlinuz",
        "kernels/A",
        "snapshots/m.blake3",
        "snapshots/m.owner",
        "snapshots/m.lock",
        "kernels/A.lock",
        "kernels/.staging-4194305-x",
        "snapshots/.saving-4194305-x",
    ];

    #[derive(Debug, Clone)]
    enum Plant {
        /// A link at a spot to the victim outside, or to another spot.
        Link(usize, Option<usize>),
        /// A spot's file cut to its first bytes.
        Truncate(usize, usize),
        /// Two spots' files exchanged.
        Swap(usize, usize),
        /// A file at a spot with these bytes.
        Write(usize, Vec<u8>),
    }

    fn plant() -> impl Strategy<Value = Plant> {
        let spot = 0..SPOTS.len();
        prop_oneof![
            (spot.clone(), proptest::option::of(0..SPOTS.len()))
                .prop_map(|(a, b)| Plant::Link(a, b)),
            (spot.clone(), 0..64usize).prop_map(|(a, n)| Plant::Truncate(a, n)),
            (spot.clone(), 0..SPOTS.len()).prop_map(|(a, b)| Plant::Swap(a, b)),
            (spot, proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(a, b)| Plant::Write(a, b)),
        ]
    }

    fn key(c: char) -> Sha256Hex {
        Sha256Hex::try_from(c.to_string().repeat(64)).unwrap()
    }

    /// A real spot's path: entries A and B under their digests.
    fn at(root: &Path, spot: &str) -> PathBuf {
        let spot = spot
            .replace("kernels/A", &format!("kernels/{}", key('a').as_str()))
            .replace("kernels/B", &format!("kernels/{}", key('b').as_str()));
        root.join(spot)
    }

    fn entry(cache: &Cache, k: &Sha256Hex, image: &[u8], release: &str) {
        let dir = cache.entry_dir(k);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinuz"), image).unwrap();
        let meta = Meta {
            package: "p".into(),
            version: "1".into(),
            release: release.into(),
            vmlinuz_sha256: sha256_file(&dir.join("vmlinuz")).unwrap(),
            vmlinuz_blake3: None,
            has_config: false,
            layout: LAYOUT,
            indexed: false,
            modules: Vec::new(),
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_plant_gives_a_wrong_kernel_a_write_outside_or_a_lost_machine(
            plants in proptest::collection::vec(plant(), 1..6),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("cache");
            let outside = tmp.path().join("victim");
            std::fs::write(&outside, b"precious").unwrap();
            let cache = Cache::at(&root);
            cache.kernels_dir().unwrap();
            let snapshots = cache.snapshots_dir().unwrap();
            entry(&cache, &key('a'), b"IMAGE-A", "6.1.0-9-cloud-amd64");
            entry(&cache, &key('b'), b"IMAGE-B", "5.10.0-46-cloud-amd64");
            // An intact saved machine.
            std::fs::write(snapshots.join("m.state"), b"MACHINE").unwrap();
            let digest = blake3_file(&snapshots.join("m.state")).unwrap();
            std::fs::write(snapshots.join("m.blake3"), &digest).unwrap();
            for p in &plants {
                let spot = |i: usize| at(&root, SPOTS[i]);
                match p {
                    Plant::Link(a, to) => {
                        let target = to.map_or(outside.clone(), spot);
                        let _ = std::fs::remove_dir_all(spot(*a));
                        let _ = std::fs::remove_file(spot(*a));
                        if let Some(parent) = spot(*a).parent() {
                            let _ = std::fs::create_dir_all(parent);
                        }
                        let _ = std::os::unix::fs::symlink(target, spot(*a));
                    }
                    Plant::Truncate(a, n) => {
                        // The planter cuts files, not what a link points at.
                        let linked = std::fs::symlink_metadata(spot(*a)).is_ok_and(|m| m.file_type().is_symlink());
                        if let (false, Ok(bytes)) = (linked, std::fs::read(spot(*a))) {
                            let _ = std::fs::write(spot(*a), &bytes[..(*n).min(bytes.len())]);
                        }
                    }
                    Plant::Swap(a, b) => {
                        let tmpname = root.join("swap");
                        let _ = std::fs::rename(spot(*a), &tmpname);
                        let _ = std::fs::rename(spot(*b), spot(*a));
                        let _ = std::fs::rename(&tmpname, spot(*b));
                    }
                    Plant::Write(a, bytes) => {
                        if let Some(parent) = spot(*a).parent() {
                            let _ = std::fs::create_dir_all(parent);
                        }
                        if !std::fs::symlink_metadata(spot(*a)).is_ok_and(|m| m.file_type().is_symlink()) {
                            let _ = std::fs::write(spot(*a), bytes);
                        }
                    }
                }
            }
            let machine_intact = blake3_file(&snapshots.join("m.state")).is_ok_and(|d| d == digest);
            // What a run does with the cache.
            for (k, image) in [(key('a'), &b"IMAGE-A"[..]), (key('b'), &b"IMAGE-B"[..])] {
                if let Ok(Some(found)) = cache.lookup(&k) {
                    // Only an image its entry recorded, never through a link.
                    prop_assert!(!std::fs::symlink_metadata(&found.vmlinuz).unwrap().file_type().is_symlink());
                    let bytes = std::fs::read(&found.vmlinuz).unwrap();
                    let recorded = sha256_file(&found.vmlinuz).unwrap();
                    prop_assert_eq!(&found.vmlinuz_digest, &recorded);
                    // A kernel whose image was swapped in is reported with
                    // the release its own meta names, consistently.
                    if bytes == image {
                        let own = match image == b"IMAGE-A" {
                            true => "6.1",
                            false => "5.10",
                        };
                        prop_assert!(found.release.starts_with(own), "{}", found.release);
                    }
                }
            }
            cache.sweep();
            cache.remove_stale_locks();
            let _ = cache.hold(&key('a'));
            prop_assert_eq!(std::fs::read(&outside).unwrap(), b"precious".to_vec());
            if machine_intact {
                prop_assert!(snapshots.join("m.state").exists());
            }
        }
    }
}
