//! Values from untrusted files (locks, matrices, archive indexes) that end up
//! in file names or URLs, checked where they enter.
//!
//! A lock or an index is data a mirror or a pull request can plant: a
//! `sha256` of `../../x` once made a run delete a directory. Anything that
//! becomes part of a path goes through a constructor here first, so the
//! cache and the evidence directory never join an unchecked string.

use std::path::{Path, PathBuf};

use std::fmt;

use serde::{Deserialize, Serialize};

/// A SHA-256 digest: exactly 64 lower-case hex digits, safe as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// The digest as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Sha256Hex(s))
        } else {
            Err(format!(
                "`{}` is not a sha256 digest (64 lower-case hex digits)",
                s.escape_debug()
            ))
        }
    }
}

impl TryFrom<&str> for Sha256Hex {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, String> {
        Sha256Hex::try_from(s.to_string())
    }
}

impl From<Sha256Hex> for String {
    fn from(d: Sha256Hex) -> String {
        d.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Sha256Hex {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for Sha256Hex {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Whether `s` can name a file or directory of ours: letters, digits, `-`,
/// `.`, `_` and `+`, not empty, not starting with a dot (so never `.`, `..`
/// or a hidden file), at most 128 bytes.
pub(crate) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._+".contains(&b))
}

/// Checks a profile or package name; the error says what is allowed.
pub(crate) fn check_name(what: &str, s: &str) -> Result<(), String> {
    if is_safe_name(s) {
        Ok(())
    } else {
        Err(format!(
            "{what} `{}` must be 1 to 128 letters, digits, `-`, `.`, `_` or `+`, not starting with `.`",
            s.escape_debug()
        ))
    }
}

/// Checks a path below an archive root (`pool/main/l/linux/x.deb`): relative,
/// no empty, `.` or `..` component, and only the characters archives use.
pub(crate) fn check_archive_path(s: &str) -> Result<(), String> {
    let fine = !s.is_empty()
        && s.len() <= 1024
        && !s.starts_with('/')
        && s.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._+~%".contains(&b))
        });
    if fine {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a relative archive path (pool/…)",
            s.escape_debug()
        ))
    }
}

/// Checks a Debian version (`6.1.158-1`, `1:2.3~rc1+b2`).
pub(crate) fn check_version(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~:-_".contains(&b))
    {
        Ok(())
    } else {
        Err(format!("`{}` is not a package version", s.escape_debug()))
    }
}

/// A path a file names (a matrix's own kernel, a configuration's BTF file or
/// matrix), relative to that file's directory `dir` and inside it, links
/// resolved: `key = "/etc/shadow"`, `../x` or a link out are refused, saying
/// which key. (A path given on the command line is the user's own.)
pub(crate) fn confined(dir: &Path, rel: &Path, key: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let shown = rel.display().to_string();
    if !plain {
        return Err(format!(
            "`{key} = {shown:?}` must be a path relative to the file's directory, without `..`\n  (hint: put it beside the file, or in a directory below it; or give it on the command line)"
        ));
    }
    let path = dir.join(rel);
    let base = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("`{key} = {shown:?}`: cannot read {}: {e}", path.display()))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "`{key} = {shown:?}` leads out of the file's directory (to {}) through a link",
            real.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_exactly_64_lower_hex() {
        let good = "a".repeat(64);
        assert!(Sha256Hex::try_from(good.as_str()).is_ok());
        for bad in [
            "../../some-dir".to_string(),
            "/etc".to_string(),
            "A".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("{}/", "a".repeat(63)),
            String::new(),
        ] {
            assert!(Sha256Hex::try_from(bad.as_str()).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_never_climb_or_hide() {
        for good in [
            "debian-12-6.1",
            "ubuntu-20.04-5.4",
            "linux-image-6.1.0-9-cloud-amd64",
            "a+b",
        ] {
            assert!(is_safe_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "a\0",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn archive_paths_stay_below_the_root() {
        assert!(check_archive_path("pool/main/l/linux/linux-image_6.1.158-1_amd64.deb").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "pool/../../x",
            "pool//x",
            "./pool/x",
            "pool/x y",
            "pool/\n",
        ] {
            assert!(check_archive_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert!(check_version("6.1.158-1").is_ok());
        assert!(check_version("1:2.3~rc1+b2").is_ok());
        assert!(check_version("1/../x").is_err());
        assert!(check_version("").is_err());
    }
}

/// Most bytes a configuration, matrix or lock file may hold.
pub const TEXT_INPUT_LIMIT: u64 = 16 << 20;
/// Most bytes a JSON report (`--baseline`, `report diff`, `report merge`) may hold.
pub const REPORT_LIMIT: u64 = 1 << 30;
/// Most bytes an own kernel file (a package or an image) may hold.
pub const KERNEL_FILE_LIMIT: u64 = 2 << 30;

/// Everything `reader` gives, within `limit` bytes: past it, an error
/// naming `what` (a package's member, a decompressed stream), so a small
/// input cannot fill memory.
pub fn read_within(reader: impl std::io::Read, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "{what} is larger than the {} MiB it may be: refused",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// Reads a file a person or a project named: a regular file (a FIFO or a
/// device is refused, and opening never blocks on one), at most `limit`
/// bytes; the error says which rule it broke.
pub fn read_input(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, a device or a directory is not read)",
        ));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {} MiB such a file may hold",
            meta.len(),
            limit >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "more than the {} MiB such a file may hold",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// [`read_input`] as text.
pub fn read_text_input(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_input(path, limit)?).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn inputs_are_regular_files_within_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, b"{}").unwrap();
        assert_eq!(read_input(&file, 10).unwrap(), b"{}");
        assert!(
            read_input(&file, 1)
                .unwrap_err()
                .to_string()
                .contains("may hold")
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_input(&fifo, 10).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = read_input(std::path::Path::new("/dev/zero"), 10).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
