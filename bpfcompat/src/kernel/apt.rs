//! Apt archives: the `Packages` index of a suite, and the stanzas of it
//! that match a profile's pattern.

use deb822_fast::borrowed::BorrowedParser;
use std::io::Read;

use crate::errors::ResolveError;
use crate::kernel::fetch::http_get;
use crate::kernel::index::Candidate;
use crate::matrix::package_matches;
use crate::safe::{Sha256Hex, check_archive_path, check_name, check_version};

/// `dists/<suite>/main/binary-amd64/Packages`, xz first, then gzip; returns
/// the URL that answered and the text.
pub(crate) fn download(base: &str, suite: &str) -> Result<(String, String), ResolveError> {
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
            "xz" => liblzma::read::XzDecoder::new(body).read_to_string(&mut text),
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
