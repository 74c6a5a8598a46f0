//! Resolving a profile to the newest matching package over its sources'
//! indexes: apt `Packages` ([`super::apt`]) or RPM `primary.xml`
//! ([`super::repodata`]).

use crate::errors::ResolveError;
use crate::kernel::{Mirrors, Trust, apt, compare_versions, repodata};
use crate::matrix::{Format, PackagePin, Pin, Profile, Source};

/// A package an index offers.
pub type Candidate = PackagePin;

/// One source's index, downloaded.
pub enum Index {
    Apt(String),
    Rpm(repodata::Primary),
}

impl Index {
    /// Downloads the index of `suite` from the mirror at `base`; returns the
    /// URL that answered with it.
    fn download(
        format: Format,
        source: &Source,
        base: &str,
        trust: Trust,
    ) -> Result<(String, Index), ResolveError> {
        match format {
            Format::Deb => {
                apt::download(source, base, trust).map(|(u, text)| (u, Index::Apt(text)))
            }
            Format::Rpm => repodata::download(source, base, trust).map(|(u, p)| (u, Index::Rpm(p))),
        }
    }

    /// The packages whose name matches `pattern`; an error when one of them
    /// cannot be pinned safely.
    pub(crate) fn matching(&self, pattern: &str) -> Result<Vec<Candidate>, String> {
        match self {
            Index::Apt(text) => apt::matching(text, pattern),
            Index::Rpm(primary) => primary.matching(pattern),
        }
    }
}

/// One source's index, downloaded and verified, with the packages in it
/// that match the profile.
struct Offered {
    source: Source,
    url: String,
    index: Index,
    found: Vec<Candidate>,
}

/// Every source of `profile`, in its order, with what it offers.
fn offered(
    profile: &Profile,
    mirrors: &Mirrors,
    trust: Trust,
) -> Result<Vec<Offered>, ResolveError> {
    let sources = profile.sources().expect("validated with the matrix");
    let mut out = Vec::new();
    for source in sources {
        let base = mirrors.get(&source.archive)?;
        let (url, index) = Index::download(profile.format, &source, base, trust)?;
        let found = index
            .matching(&profile.package)
            .map_err(|message| ResolveError::BadIndex {
                url: url.clone(),
                message,
            })?;
        out.push(Offered {
            source,
            url,
            index,
            found,
        });
    }
    Ok(out)
}

/// The pin of candidate `c` of `o`, with its module packages.
fn pin_of(profile: &Profile, o: &Offered, c: Candidate) -> Result<Pin, ResolveError> {
    let modules = profile
        .modules
        .iter()
        .map(|pattern| module_package(&o.index, &o.url, pattern, &c.version))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pin {
        name: profile.name.clone(),
        format: profile.format,
        archive: o.source.archive.clone(),
        suite: o.source.suite.clone(),
        package: c.package,
        version: c.version,
        filename: c.filename,
        size: c.size,
        sha256: c.sha256,
        modules,
        own: None,
    })
}

/// Finds the newest package matching `profile` over all its sources, from
/// indexes verified under `trust`.
pub fn resolve(profile: &Profile, mirrors: &Mirrors, trust: Trust) -> Result<Pin, ResolveError> {
    let format = profile.format;
    // The newest match over all sources (the first source's on a tie).
    let mut best: Option<(Candidate, usize)> = None;
    let offered = offered(profile, mirrors, trust)?;
    for (i, o) in offered.iter().enumerate() {
        let newest = o
            .found
            .iter()
            .max_by(|a, b| compare_versions(format, &a.version, &b.version));
        if let Some(c) = newest {
            let newer = best
                .as_ref()
                .is_none_or(|b| compare_versions(format, &c.version, &b.0.version).is_gt());
            if newer {
                best = Some((c.clone(), i));
            }
        }
    }
    let (c, i) = best.ok_or_else(|| ResolveError::NoMatch {
        pattern: profile.package.clone(),
        sources: profile.sources.join(", "),
    })?;
    pin_of(profile, &offered[i], c)
}

/// Every package of `profile`'s series over all its sources, oldest first
/// in the distro's version order (a version offered by two sources is
/// taken from the first), each pinned with its module packages: what
/// `bisect` searches.
pub fn series(
    profile: &Profile,
    mirrors: &Mirrors,
    trust: Trust,
) -> Result<Vec<Pin>, ResolveError> {
    let mut all: Vec<Pin> = Vec::new();
    for o in offered(profile, mirrors, trust)? {
        for c in o.found.clone() {
            if !all.iter().any(|p| p.version == c.version) {
                all.push(pin_of(profile, &o, c)?);
            }
        }
    }
    if all.is_empty() {
        return Err(ResolveError::NoMatch {
            pattern: profile.package.clone(),
            sources: profile.sources.join(", "),
        });
    }
    all.sort_by(|a, b| compare_versions(profile.format, &a.version, &b.version));
    Ok(all)
}

/// The one package of `index` that matches `pattern` at the image's
/// `version`: a kernel's modules are built with it, in the same suite.
fn module_package(
    index: &Index,
    url: &str,
    pattern: &str,
    version: &str,
) -> Result<PackagePin, ResolveError> {
    let bad = |message: String| ResolveError::BadIndex {
        url: url.to_string(),
        message,
    };
    let mut found: Vec<Candidate> = index
        .matching(pattern)
        .map_err(bad)?
        .into_iter()
        .filter(|c| c.version == version)
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ResolveError::NoMatch {
            pattern: format!("{pattern} (version {version})"),
            sources: url.to_string(),
        }),
        _ => Err(bad(format!(
            "`{pattern}` matches {} packages at version {version}: make the pattern exact",
            found.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modules_package_is_the_one_at_the_images_version() {
        let stanza = |name: &str, version: &str, d: char| {
            format!(
                "Package: {name}\nVersion: {version}\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n\n",
                d.to_string().repeat(64)
            )
        };
        let index = stanza("linux-modules-5.4.0-215-generic", "5.4.0-215.235", 'a')
            + &stanza("linux-modules-5.4.0-216-generic", "5.4.0-216.236", 'b')
            + &stanza(
                "linux-modules-extra-5.4.0-216-generic",
                "5.4.0-216.236",
                'c',
            );
        let index = Index::Apt(index);
        let m = module_package(
            &index,
            "u",
            "linux-modules-5.4.0-*-generic",
            "5.4.0-216.236",
        )
        .unwrap();
        assert_eq!(m.package, "linux-modules-5.4.0-216-generic");
        let missing = module_package(&index, "u", "linux-modules-5.4.0-*-generic", "5.4.0-9.9");
        assert!(matches!(missing, Err(ResolveError::NoMatch { .. })));
        let loose = module_package(&index, "u", "linux-modules-*", "5.4.0-216.236");
        assert!(
            matches!(loose, Err(ResolveError::NoMatch { .. })),
            "no `*` run spans `-`"
        );
    }
}
