//! Which base URL serves each archive.
//!
//! The repository never names a host: a mirror comes from
//! `BPFCOMPAT_MIRROR_<ARCHIVE>` (e.g. `BPFCOMPAT_MIRROR_DEBIAN_SECURITY`) or,
//! failing that, from the host's own apt sources (one-line `.list` and deb822
//! `.sources` files), where an URI whose last path segment is the archive key
//! (`…/debian`, `…/debian-security`, `…/ubuntu`) serves that archive.

use deb822_fast::borrowed::BorrowedParser;
use std::collections::BTreeMap;
use std::path::Path;

use crate::errors::MirrorError;

/// Archive key to base URL.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    urls: BTreeMap<String, String>,
}

/// The environment variable that configures an archive's mirror.
pub fn mirror_var(archive: &str) -> String {
    format!(
        "BPFCOMPAT_MIRROR_{}",
        archive.to_ascii_uppercase().replace('-', "_")
    )
}

impl Mirrors {
    /// Mirrors from the environment, then `/etc/apt`.
    pub fn discover() -> Mirrors {
        let mut m = Mirrors::from_apt_dir(Path::new("/etc/apt"));
        for (key, value) in std::env::vars() {
            if let Some(rest) = key.strip_prefix("BPFCOMPAT_MIRROR_")
                && !value.is_empty()
            {
                let archive = rest.to_ascii_lowercase().replace('_', "-");
                m.urls
                    .insert(archive, value.trim_end_matches('/').to_string());
            }
        }
        for (archive, url) in &m.urls {
            tracing::debug!("mirror of the `{archive}` archive: {url}");
        }
        m
    }

    /// The mirror of an archive.
    pub fn get(&self, archive: &str) -> Result<&str, MirrorError> {
        self.urls
            .get(archive)
            .map(String::as_str)
            .ok_or_else(|| MirrorError {
                archive: archive.to_string(),
                var: mirror_var(archive),
            })
    }

    /// Reads `sources.list` and `sources.list.d/*.{list,sources}` below `dir`.
    pub(crate) fn from_apt_dir(dir: &Path) -> Mirrors {
        let mut texts = Vec::new();
        if let Ok(t) = std::fs::read_to_string(dir.join("sources.list")) {
            texts.push((false, t));
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("sources.list.d")) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let deb822 = match p.extension().and_then(|e| e.to_str()) {
                    Some("sources") => true,
                    Some("list") => false,
                    _ => continue,
                };
                if let Ok(t) = std::fs::read_to_string(&p) {
                    texts.push((deb822, t));
                }
            }
        }
        let mut m = Mirrors::default();
        for (deb822, text) in texts {
            let uris = if deb822 {
                deb822_uris(&text)
            } else {
                one_line_uris(&text)
            };
            for uri in uris {
                if let Some(archive) = archive_of(&uri) {
                    m.urls
                        .entry(archive)
                        .or_insert_with(|| uri.trim_end_matches('/').to_string());
                }
            }
        }
        m
    }
}

/// URIs of `deb` lines in the one-line format: `deb [opts] URI suite comps…`.
fn one_line_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = match line.strip_prefix("deb ") {
            Some(r) => r.trim_start(),
            None => continue,
        };
        if rest.starts_with('[')
            && let Some(end) = rest.find(']')
        {
            rest = rest[end + 1..].trim_start();
        }
        if let Some(uri) = rest.split_whitespace().next() {
            out.push(uri.to_string());
        }
    }
    out
}

/// URIs of stanzas whose `Types` include `deb` in the deb822 format; a
/// file that does not parse names none.
fn deb822_uris(text: &str) -> Vec<String> {
    let Ok(paragraphs) = BorrowedParser::new(text).parse_all() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in &paragraphs {
        // URIs may be folded over several lines.
        let field = |name: &str| p.get(name).unwrap_or_default().join(" ");
        let enabled = field("Enabled").trim() != "no";
        if enabled && field("Types").split_whitespace().any(|t| t == "deb") {
            out.extend(field("URIs").split_whitespace().map(str::to_string));
        }
    }
    out
}

/// The archive an URI serves, by its last path segment.
fn archive_of(uri: &str) -> Option<String> {
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return None;
    }
    let last = uri.trim_end_matches('/').rsplit('/').next()?;
    match last {
        "debian" | "debian-security" | "ubuntu" => Some(last.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_apt_formats() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sources.list"),
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.test/ubuntu focal main\ndeb-src http://src.test/debian bookworm main\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.test/debian-security/\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://off.test/ubuntu\nEnabled: no\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/x.list.disabled"),
            "deb http://no.test/debian x main\n",
        )
        .unwrap();
        let m = Mirrors::from_apt_dir(dir.path());
        assert_eq!(m.get("ubuntu").unwrap(), "http://mirror.test/ubuntu");
        assert_eq!(m.get("debian").unwrap(), "http://mirror.test/debian");
        assert_eq!(
            m.get("debian-security").unwrap(),
            "http://mirror.test/debian-security"
        );
    }

    #[test]
    fn unknown_archive_names_its_variable() {
        let err = Mirrors::default().get("debian-security").unwrap_err();
        assert_eq!(err.var, "BPFCOMPAT_MIRROR_DEBIAN_SECURITY");
        assert!(err.to_string().contains("BPFCOMPAT_MIRROR_DEBIAN_SECURITY"));
    }
}
