//! Files and directories bpfcompat keeps for itself (the cache, saved
//! machines, the run directory) are created with explicit modes, 0700 and
//! 0600, whatever the umask: under `umask 000` they would otherwise be
//! anyone's to read and replace.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The name a temporary file or directory in the cache starts with:
/// `prefix`, then this process's PID, so that what a killed run left can be
/// told from what a live one is filling ([`crate::kernel::Cache::sweep`]).
pub(crate) fn leftover_prefix(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// The prefixes of what the cache's writers leave while at work.
pub(crate) const LEFTOVER_PREFIXES: &[&str] = &[".staging-", ".saving-", ".download-", ".side-"];

/// A temporary directory (0700) named `prefix…`, in `dir` or `$TMPDIR`.
pub fn tempdir(prefix: &str, dir: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    let prefix = match dir {
        Some(_) => leftover_prefix(prefix),
        None => prefix.to_string(),
    };
    b.prefix(&prefix).permissions(Permissions::from_mode(0o700));
    match dir {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
}

/// `path` and its missing parents, 0700.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// A file (0600) created or truncated, not through a link.
pub(crate) fn create_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// [`create_file`] with `bytes` in it.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::io::Write::write_all(&mut create_file(path)?, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    /// Under any umask (the default 022 would give 0755 and 0644).
    #[test]
    fn what_it_keeps_for_itself_is_private() {
        let t = tempdir("bpfcompat-test-", None).unwrap();
        assert_eq!(mode(t.path()), 0o700);
        let nested = t.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!((mode(&t.path().join("a")), mode(&nested)), (0o700, 0o700));
        let f = nested.join("meta.json");
        write_file(&f, b"{}").unwrap();
        assert_eq!(mode(&f), 0o600);
        // Not through a link planted at its name.
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_file(&link, b"x").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
