//! Resolving a profile to the newest matching package of its archive
//! `Packages` indexes.

use deb822_fast::borrowed::BorrowedParser;
use std::io::Read;

use crate::errors::ResolveError;
use crate::kernel::{Mirrors, compare_versions, fetch::http_get};
use crate::matrix::{PackagePin, Pin, Profile, package_matches};
use crate::safe::{Sha256Hex, check_archive_path, check_name, check_version};

/// A package stanza that matched a profile.
/// A package an index offers.
pub type Candidate = PackagePin;

/// Finds the newest package matching `profile` over all its sources.
pub fn resolve(profile: &Profile, mirrors: &Mirrors) -> Result<Pin, ResolveError> {
    // The newest match over all sources, with the index it came from.
    let mut best: Option<(Candidate, String, String, String, String)> = None;
    let sources = profile.sources().expect("validated with the matrix");
    for source in &sources {
        let base = mirrors.get(&source.archive)?;
        let (url, text) = download_index(base, &source.suite)?;
        let found =
            matching(&text, &profile.package).map_err(|message| ResolveError::BadIndex {
                url: url.clone(),
                message,
            })?;
        let newest = found
            .into_iter()
            .max_by(|a, b| compare_versions(&a.version, &b.version));
        if let Some(c) = newest {
            let newer = best
                .as_ref()
                .is_none_or(|b| compare_versions(&c.version, &b.0.version).is_gt());
            if newer {
                best = Some((c, source.archive.clone(), source.suite.clone(), url, text));
            }
        }
    }
    let (c, archive, suite, url, index) = best.ok_or_else(|| ResolveError::NoMatch {
        pattern: profile.package.clone(),
        sources: profile.sources.join(", "),
    })?;
    let modules = profile
        .modules
        .iter()
        .map(|pattern| module_package(&index, &url, pattern, &c.version))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pin {
        name: profile.name.clone(),
        archive,
        suite,
        package: c.package,
        version: c.version,
        filename: c.filename,
        size: c.size,
        sha256: c.sha256,
        modules,
        own: None,
    })
}

/// The one package of `index` that matches `pattern` at the image's
/// `version`: a kernel's modules are built with it, in the same suite.
fn module_package(
    index: &str,
    url: &str,
    pattern: &str,
    version: &str,
) -> Result<PackagePin, ResolveError> {
    let bad = |message: String| ResolveError::BadIndex {
        url: url.to_string(),
        message,
    };
    let mut found: Vec<Candidate> = matching(index, pattern)
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

/// `dists/<suite>/main/binary-amd64/Packages`, xz first, then gzip; returns
/// the URL that answered and the text.
fn download_index(base: &str, suite: &str) -> Result<(String, String), ResolveError> {
    let mut last = String::new();
    for ext in ["xz", "gz"] {
        let url = format!("{base}/dists/{suite}/main/binary-amd64/Packages.{ext}");
        let body = match http_get(&url) {
            Ok(r) => r,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let mut text = String::new();
        let res = match ext {
            "xz" => xz2::read::XzDecoder::new(body).read_to_string(&mut text),
            _ => flate2::read::GzDecoder::new(body).read_to_string(&mut text),
        };
        return res
            .map(|_| (url.clone(), text))
            .map_err(|e| ResolveError::Index {
                url,
                message: e.to_string(),
            });
    }
    Err(ResolveError::Index {
        url: format!("{base}/dists/{suite}/main/binary-amd64/Packages.{{xz,gz}}"),
        message: last,
    })
}

/// Stanzas of a `Packages` index whose name matches `pattern`. A matching
/// stanza whose fields could not be pinned safely (a digest that is no
/// digest, a file name that leaves the archive) makes the index unusable:
/// a mirror that serves it is not trusted for anything else either.
pub(crate) fn matching(index: &str, pattern: &str) -> Result<Vec<Candidate>, String> {
    let paragraphs = BorrowedParser::new(index)
        .parse_all()
        .map_err(|e| format!("not a Packages index: {e}"))?;
    let mut out = Vec::new();
    for stanza in &paragraphs {
        let field = |name: &str| stanza.get_single(name).map(|v| v.trim().to_string());
        let Some(package) = field("Package") else {
            continue;
        };
        if !package_matches(pattern, &package) {
            continue;
        }
        if let (Some(version), Some(filename), Some(size), Some(sha256)) = (
            field("Version"),
            field("Filename"),
            field("Size").and_then(|s| s.parse().ok()),
            field("SHA256"),
        ) {
            let bad = |m: String| format!("package `{}`: {m}", package.escape_debug());
            check_name("the package", &package).map_err(bad)?;
            check_version(&version).map_err(bad)?;
            check_archive_path(&filename).map_err(bad)?;
            out.push(Candidate {
                sha256: Sha256Hex::try_from(sha256).map_err(bad)?,
                package,
                version,
                filename,
                size,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_matching_stanzas_only() {
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let index = format!(
            "Package: linux-image-6.1.0-9-cloud-amd64\nVersion: 6.1.27-1\nFilename: pool/a.deb\nSize: 10\nSHA256: {a}\n\n\
Package: linux-image-6.1.0-9-cloud-amd64-dbg\nVersion: 6.1.27-1\nFilename: pool/b.deb\nSize: 10\nSHA256: {b}\n\n\
Package: linux-image-6.1.0-10-cloud-amd64\nVersion: 6.1.38-1\nFilename: pool/c.deb\nSize: 12\nSHA256: {c}\n"
        );
        let found = matching(&index, "linux-image-6.1.0-*-cloud-amd64").unwrap();
        let names: Vec<_> = found.iter().map(|c| c.package.as_str()).collect();
        assert_eq!(
            names,
            [
                "linux-image-6.1.0-9-cloud-amd64",
                "linux-image-6.1.0-10-cloud-amd64"
            ]
        );
        assert_eq!(found[1].size, 12);
    }

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

    #[test]
    fn hostile_stanzas_make_the_index_unusable() {
        let stanza = |sha: &str, file: &str| {
            format!(
                "Package: linux-image-1-cloud-amd64\nVersion: 1\nFilename: {file}\nSize: 1\nSHA256: {sha}\n"
            )
        };
        let good = "d".repeat(64);
        assert!(matching(&stanza(&good, "pool/x.deb"), "linux-image-*-cloud-amd64").is_ok());
        for text in [
            stanza("../../some-dir", "pool/x.deb"),
            stanza(&good, "../../x.deb"),
            stanza(&good, "/x.deb"),
        ] {
            let err = matching(&text, "linux-image-*-cloud-amd64").unwrap_err();
            assert!(err.contains("linux-image-1-cloud-amd64"), "{err}");
        }
        // Stanzas of other packages are not ours to judge.
        assert!(
            matching(&stanza("junk", "pool/x.deb"), "linux-image-9-*")
                .unwrap()
                .is_empty()
        );
    }
}
