//! `oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]`, checked where it enters:
//! the parts become a URL, never a path.

use super::OciError;

/// A parsed artifact reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`.
    pub registry: String,
    /// `name/space/repo`, lowercase.
    pub repository: String,
    /// A tag, or `sha256:<hex>` for a digest reference.
    pub reference: String,
    /// Whether `reference` is a digest (what is pulled must have it).
    pub by_digest: bool,
}

impl Reference {
    /// The scheme, as a container runtime chooses it: plain HTTP only for a
    /// registry on this machine.
    pub fn base_url(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, p)| {
                match p.chars().all(|c| c.is_ascii_digit()) {
                    true => h,
                    false => self.registry.as_str(),
                }
            });
        let scheme = match host {
            "localhost" | "127.0.0.1" | "[::1]" => "http",
            _ => "https",
        };
        format!("{scheme}://{}", self.registry)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.by_digest { '@' } else { ':' };
        write!(
            f,
            "oci://{}/{}{sep}{}",
            self.registry, self.repository, self.reference
        )
    }
}

/// Whether `s` is an `oci://` reference (and so not a file).
pub fn is_oci(s: &str) -> bool {
    s.starts_with("oci://")
}

/// Parses `oci://…`.
pub fn parse(s: &str) -> Result<Reference, OciError> {
    let bad = |why: &str| OciError::BadReference {
        reference: s.chars().take(300).collect(),
        why: why.to_string(),
    };
    let rest = s
        .strip_prefix("oci://")
        .ok_or_else(|| bad("it does not start with oci://"))?;
    if s.len() > 1024 {
        return Err(bad("it is longer than 1024 characters"));
    }
    let (registry, path) = rest
        .split_once('/')
        .ok_or_else(|| bad("it names no repository after the registry"))?;
    let host_ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !host_ok {
        return Err(bad("the registry is not a host name with an optional port"));
    }
    let (repository, reference, by_digest) = match path.split_once('@') {
        Some((repo, digest)) => {
            let hex = digest
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("a digest is sha256:<64 hex digits>"))?;
            if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
                return Err(bad("a digest is sha256:<64 hex digits>"));
            }
            (repo, digest.to_string(), true)
        }
        None => match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string(), false),
            _ => (path, "latest".to_string(), false),
        },
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
    };
    if !repository.split('/').all(component_ok) {
        return Err(bad(
            "a repository is lowercase letters, digits and . _ - between slashes",
        ));
    }
    let tag_ok = by_digest
        || (reference.len() <= 128
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !reference.starts_with(['.', '-']));
    if !tag_ok {
        return Err(bad("a tag is up to 128 letters, digits, . _ -"));
    }
    Ok(Reference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        reference,
        by_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_container_tools_read_them() {
        let r = parse("oci://127.0.0.1:5000/gadget/trace_open:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "gadget/trace_open");
        assert_eq!(r.reference, "v1");
        assert_eq!(r.base_url(), "http://127.0.0.1:5000");
        let r = parse("oci://registry.example/a/b").unwrap();
        assert_eq!(r.reference, "latest");
        assert_eq!(r.base_url(), "https://registry.example");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = parse(&format!("oci://localhost:80/x@{digest}")).unwrap();
        assert!(r.by_digest);
        assert_eq!(r.reference, digest);
        assert_eq!(r.to_string(), format!("oci://localhost:80/x@{digest}"));
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (s, why) in [
            ("oci://host", "no repository"),
            ("oci://host/UPPER", "lowercase"),
            ("oci://host/a/../b", "lowercase"),
            ("oci://host/a@sha256:12", "64 hex"),
            ("oci://host/a@md5:00", "sha256:"),
            ("oci://ho st/a", "host name"),
            ("oci://host/a:bad/tag!", "lowercase"),
        ] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
