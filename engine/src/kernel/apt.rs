//! Apt archives: the `Packages` index of a suite, and the stanzas of it
//! that match a profile's pattern.

use deb822_fast::borrowed::BorrowedParser;

use crate::errors::ResolveError;
use crate::kernel::fetch::{
    INDEX_LIMIT, RELEASE_LIMIT, SIGNATURE_LIMIT, TOO_LARGE, http_bytes, inflate,
};
use crate::kernel::trust::{self, Trust};
use crate::matrix::PackagePin as Candidate;
use crate::matrix::Source;
use crate::matrix::package_matches;
use crate::safe::{Sha256Hex, check_archive_path, check_name, check_version};
use sha2::{Digest, Sha256};

/// The suite's `Packages` index (`main/binary-amd64`, xz or gzip) as its
/// `Release` file lists it: `InRelease` (or `Release` + `Release.gpg`)
/// verified under `trust`, then the index checked against the sha256 the
/// release gives. Returns the index URL and its text.
pub(crate) fn download(
    source: &Source,
    base: &str,
    trust: Trust,
) -> Result<(String, String), ResolveError> {
    let (archive, suite) = (source.archive.as_str(), source.suite.as_str());
    let dists = format!("{base}/dists/{suite}");
    let release = match release(archive, &dists, trust)? {
        Some(text) => text,
        // An unsigned local repository without a Release file.
        None => return unlisted_index(&dists),
    };
    let bad = |message: String| ResolveError::BadIndex {
        url: format!("{dists}/Release"),
        message,
    };
    let listed = sha256_entries(&release).map_err(bad)?;
    for ext in ["xz", "gz"] {
        let name = format!("main/binary-amd64/Packages.{ext}");
        let Some(expected) = listed.iter().find(|(_, path)| *path == name).map(|e| &e.0) else {
            continue;
        };
        let url = format!("{dists}/{name}");
        let body = http_bytes(&url, INDEX_LIMIT, "a package index").map_err(|message| {
            ResolveError::Index {
                url: url.clone(),
                message,
            }
        })?;
        let actual = hex::encode(Sha256::digest(&body));
        if &actual != expected {
            return Err(ResolveError::BadIndex {
                url,
                message: format!(
                    "its sha256 is {actual}, but the signed Release says {expected}: the index was altered or the mirror is mid-update"
                ),
            });
        }
        return decompress(ext, &body[..])
            .map(|text| (url.clone(), text))
            .map_err(|e| ResolveError::Index {
                url,
                message: e.to_string(),
            });
    }
    Err(bad(
        "it lists no main/binary-amd64/Packages.xz or .gz".into()
    ))
}

/// The text of the suite's release file, verified under `trust`; `None`
/// when there is none and none is required.
fn release(archive: &str, dists: &str, trust: Trust) -> Result<Option<String>, ResolveError> {
    let unsigned = |url: &str, message: String| ResolveError::Signature {
        url: url.to_string(),
        message,
        hint: trust::hint(archive),
    };
    let inrelease = format!("{dists}/InRelease");
    match http_bytes(&inrelease, RELEASE_LIMIT, "a release file") {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body);
            let text =
                trust::cleartext(archive, trust, &text).map_err(|m| unsigned(&inrelease, m))?;
            return current(&inrelease, text).map(Some);
        }
        // Too large is the mirror's answer, not its absence.
        Err(message) if message.starts_with(TOO_LARGE) => {
            return Err(ResolveError::BadIndex {
                url: inrelease,
                message,
            });
        }
        Err(_) => {}
    }
    let url = format!("{dists}/Release");
    let body = match http_bytes(&url, RELEASE_LIMIT, "a release file") {
        Ok(body) => body,
        Err(_) if trust == Trust::InsecureUnsigned => return Ok(None),
        Err(message) => {
            return Err(ResolveError::Index {
                url: format!("{dists}/InRelease (or Release)"),
                message,
            });
        }
    };
    let signature = http_bytes(&format!("{url}.gpg"), SIGNATURE_LIMIT, "a signature").ok();
    trust::detached(archive, trust, &body, signature.as_deref())
        .map_err(|m| unsigned(&format!("{url}.gpg"), m))?;
    current(&url, String::from_utf8_lossy(&body).into_owned()).map(Some)
}

/// A release file whose `Valid-Until` has not passed (apt's rule).
fn current(url: &str, release: String) -> Result<String, ResolveError> {
    match trust::expired(&release, chrono::Utc::now()) {
        None => Ok(release),
        Some(until) => Err(ResolveError::BadIndex {
            url: url.to_string(),
            message: format!(
                "it expired (Valid-Until: {until}): the mirror serves an outdated release, which apt refuses too; use a mirror that is up to date"
            ),
        }),
    }
}

/// The `SHA256` field of a release file: (digest, path) pairs.
fn sha256_entries(release: &str) -> Result<Vec<(String, String)>, String> {
    let paragraphs = BorrowedParser::new(release)
        .parse_all()
        .map_err(|e| format!("not a Release file: {e}"))?;
    let lines = paragraphs
        .first()
        .and_then(|p| p.get("SHA256"))
        .ok_or("it has no SHA256 field")?;
    Ok(lines
        .iter()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (sum, _size, path) = (f.next()?, f.next()?, f.next()?);
            Some((sum.to_ascii_lowercase(), path.to_string()))
        })
        .collect())
}

/// An unsigned repository's index, taken as the mirror serves it.
fn unlisted_index(dists: &str) -> Result<(String, String), ResolveError> {
    let mut last = String::new();
    for ext in ["xz", "gz"] {
        let url = format!("{dists}/main/binary-amd64/Packages.{ext}");
        match http_bytes(&url, INDEX_LIMIT, "a package index") {
            Ok(body) => {
                return decompress(ext, &body[..])
                    .map(|text| (url.clone(), text))
                    .map_err(|e| ResolveError::Index {
                        url,
                        message: e.to_string(),
                    });
            }
            Err(e) => last = e,
        }
    }
    Err(ResolveError::Index {
        url: format!("{dists}/main/binary-amd64/Packages.{{xz,gz}}"),
        message: last,
    })
}

fn decompress(ext: &str, body: &[u8]) -> std::io::Result<String> {
    match ext {
        "xz" => inflate(liblzma::read::XzDecoder::new(body), body.len()),
        _ => inflate(flate2::read::GzDecoder::new(body), body.len()),
    }
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
