//! RPM repositories (dnf/yum): `<suite>/repodata/repomd.xml` names the
//! `primary.xml` index and its digest; the index lists each package with
//! its version, digest and location.
//!
//! The suite of an RPM source is the repository's path below the mirror
//! (`9/BaseOS/x86_64/os`); a pinned package's file name is that path joined
//! with the package's location, so it downloads like a `.deb` of the pool.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;

use crate::errors::ResolveError;
use crate::kernel::fetch::{INDEX_LIMIT, RELEASE_LIMIT, SIGNATURE_LIMIT, http_bytes};
use crate::kernel::trust::{self, Trust};
use crate::matrix::PackagePin as Candidate;
use crate::matrix::Source;
use crate::matrix::package_matches;
use crate::safe::{Sha256Hex, check_archive_path, check_name, check_version};

/// A repository's `primary.xml`, read.
pub(crate) struct Primary {
    /// The repository's path below the mirror.
    suite: String,
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct RepoMd {
    #[serde(default)]
    data: Vec<RepoData>,
}

#[derive(Debug, Deserialize)]
struct RepoData {
    #[serde(rename = "@type")]
    kind: String,
    checksum: Checksum,
    location: Location,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default, rename = "package")]
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    arch: String,
    version: Version,
    checksum: Checksum,
    size: Size,
    location: Location,
}

#[derive(Debug, Deserialize)]
struct Version {
    #[serde(rename = "@epoch", default)]
    epoch: Option<String>,
    #[serde(rename = "@ver")]
    ver: String,
    #[serde(rename = "@rel")]
    rel: String,
}

#[derive(Debug, Deserialize)]
struct Checksum {
    #[serde(rename = "@type")]
    kind: String,
    #[serde(rename = "$text")]
    value: String,
}

#[derive(Debug, Deserialize)]
struct Size {
    #[serde(rename = "@package")]
    package: u64,
}

#[derive(Debug, Deserialize)]
struct Location {
    #[serde(rename = "@href")]
    href: String,
    /// Another base than the repository's: not followed.
    #[serde(rename = "@xml:base", default)]
    base: Option<String>,
}

/// Downloads `<base>/<suite>/repodata/repomd.xml`, verifies its detached
/// signature (`repomd.xml.asc`) under `trust`, then the `primary.xml` it
/// names, checked against the digest it gives; returns the repomd URL.
pub(crate) fn download(
    source: &Source,
    base: &str,
    trust: Trust,
) -> Result<(String, Primary), ResolveError> {
    let (archive, suite) = (source.archive.as_str(), source.suite.as_str());
    let url = format!("{base}/{suite}/repodata/repomd.xml");
    let repomd = read_all(&url, RELEASE_LIMIT, "a repomd.xml")?;
    let signature = http_bytes(&format!("{url}.asc"), SIGNATURE_LIMIT, "a signature").ok();
    trust::detached(archive, trust, &repomd, signature.as_deref()).map_err(|message| {
        ResolveError::Signature {
            url: format!("{url}.asc"),
            message,
            hint: trust::hint(archive),
        }
    })?;
    let bad = |message: String| ResolveError::BadIndex {
        url: url.clone(),
        message,
    };
    let href = primary_location(&repomd).map_err(bad)?;
    let primary_url = format!("{base}/{suite}/{}", href.0);
    let body = read_all(&primary_url, INDEX_LIMIT, "a primary.xml")?;
    let actual = hex::encode(Sha256::digest(&body));
    if actual != href.1.as_str() {
        return Err(ResolveError::BadIndex {
            url: primary_url,
            message: format!(
                "its sha256 is {actual}, but repomd.xml says {}: the index was altered or the mirror is mid-update",
                href.1
            ),
        });
    }
    let text = decompress(&href.0, &body).map_err(|e| ResolveError::Index {
        url: primary_url.clone(),
        message: e.to_string(),
    })?;
    let packages = parse_primary(&text).map_err(|message| ResolveError::BadIndex {
        url: primary_url,
        message,
    })?;
    Ok((
        url,
        Primary {
            suite: suite.to_string(),
            packages,
        },
    ))
}

fn read_all(url: &str, limit: u64, what: &str) -> Result<Vec<u8>, ResolveError> {
    http_bytes(url, limit, what).map_err(|message| ResolveError::Index {
        url: url.to_string(),
        message,
    })
}

/// The location of the `primary` index and its sha256, from `repomd.xml`.
fn primary_location(repomd: &[u8]) -> Result<(String, Sha256Hex), String> {
    let text = std::str::from_utf8(repomd).map_err(|_| "repomd.xml is not UTF-8".to_string())?;
    let md: RepoMd = quick_xml::de::from_str(text).map_err(|e| format!("not a repomd.xml: {e}"))?;
    let primary = md
        .data
        .into_iter()
        .find(|d| d.kind == "primary")
        .ok_or("repomd.xml names no `primary` index")?;
    if primary.checksum.kind != "sha256" {
        return Err(format!(
            "the primary index's checksum is {}: only sha256 is trusted",
            primary.checksum.kind
        ));
    }
    if primary.location.base.is_some() {
        return Err("the primary index lies outside the repository (xml:base)".into());
    }
    check_archive_path(&primary.location.href)?;
    let digest = Sha256Hex::try_from(primary.checksum.value.trim().to_string())?;
    Ok((primary.location.href, digest))
}

/// Decompresses an index by its file name's extension.
fn decompress(name: &str, body: &[u8]) -> std::io::Result<String> {
    let reader: Box<dyn Read + '_> = match name.rsplit('.').next() {
        Some("gz") => Box::new(flate2::read::GzDecoder::new(body)),
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(body)),
        Some("zst") => Box::new(zstd::Decoder::new(body)?),
        Some("bz2") => Box::new(bzip2::read::BzDecoder::new(body)),
        _ => Box::new(body),
    };
    super::fetch::inflate(reader, body.len())
}

fn parse_primary(text: &str) -> Result<Vec<Package>, String> {
    let md: Metadata =
        quick_xml::de::from_str(text).map_err(|e| format!("not a primary.xml index: {e}"))?;
    Ok(md.packages)
}

impl Primary {
    /// The x86_64 packages whose name matches `pattern`. A matching package
    /// whose fields could not be pinned safely makes the index unusable, as
    /// for an apt index.
    pub(crate) fn matching(&self, pattern: &str) -> Result<Vec<Candidate>, String> {
        let mut out = Vec::new();
        for p in &self.packages {
            if p.arch != "x86_64" || !package_matches(pattern, &p.name) {
                continue;
            }
            let bad = |m: String| format!("package `{}`: {m}", p.name.escape_debug());
            check_name("the package", &p.name).map_err(bad)?;
            let version = match p.version.epoch.as_deref().unwrap_or("0") {
                "0" | "" => format!("{}-{}", p.version.ver, p.version.rel),
                epoch => format!("{epoch}:{}-{}", p.version.ver, p.version.rel),
            };
            check_version(&version).map_err(bad)?;
            if p.checksum.kind != "sha256" {
                return Err(bad(format!(
                    "its checksum is {}: only sha256 is trusted",
                    p.checksum.kind
                )));
            }
            if p.location.base.is_some() {
                return Err(bad("it lies outside the repository (xml:base)".into()));
            }
            let filename = format!("{}/{}", self.suite, p.location.href);
            check_archive_path(&filename).map_err(bad)?;
            out.push(Candidate {
                package: p.name.clone(),
                version,
                filename,
                size: p.size.package,
                sha256: Sha256Hex::try_from(p.checksum.value.trim().to_string()).map_err(bad)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, arch: &str, rel: &str, href: &str, sum: &str) -> String {
        format!(
            r#"<package type="rpm"><name>{name}</name><arch>{arch}</arch>
<version epoch="0" ver="5.14.0" rel="{rel}"/>
<checksum type="sha256" pkgid="YES">{sum}</checksum>
<summary>The Linux kernel</summary>
<size package="1234" installed="5" archive="6"/>
<location href="{href}"/>
<format><rpm:license>GPLv2</rpm:license><rpm:provides><rpm:entry name="kernel"/></rpm:provides></format>
</package>"#
        )
    }

    fn primary(packages: &[String]) -> Primary {
        let text = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{}">{}</metadata>"#,
            packages.len(),
            packages.concat()
        );
        Primary {
            suite: "9/BaseOS/x86_64/os".into(),
            packages: parse_primary(&text).unwrap(),
        }
    }

    #[test]
    fn picks_the_x86_64_packages_of_the_pattern_with_their_repository_path() {
        let sum = "a".repeat(64);
        let p = primary(&[
            package(
                "kernel-core",
                "x86_64",
                "427.el9",
                "Packages/k/kc-427.rpm",
                &sum,
            ),
            package(
                "kernel-core",
                "aarch64",
                "427.el9",
                "Packages/k/kc-a.rpm",
                &sum,
            ),
            package(
                "kernel-core",
                "x86_64",
                "70.el9",
                "Packages/k/kc-70.rpm",
                &sum,
            ),
            package(
                "kernel-modules",
                "x86_64",
                "427.el9",
                "Packages/k/km.rpm",
                &sum,
            ),
        ]);
        let found = p.matching("kernel-core").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].version, "5.14.0-427.el9");
        assert_eq!(
            found[0].filename,
            "9/BaseOS/x86_64/os/Packages/k/kc-427.rpm"
        );
        assert_eq!(found[0].size, 1234);
    }

    #[test]
    fn hostile_packages_make_the_index_unusable() {
        let good = "b".repeat(64);
        for (href, sum) in [
            ("../../etc/passwd", good.as_str()),
            ("/abs.rpm", good.as_str()),
            ("Packages/k.rpm", "not-a-digest"),
        ] {
            let p = primary(&[package("kernel-core", "x86_64", "1", href, sum)]);
            let err = p.matching("kernel-core").unwrap_err();
            assert!(err.contains("kernel-core"), "{err}");
        }
        let sha1 = package("kernel-core", "x86_64", "1", "P/k.rpm", &good)
            .replace("type=\"sha256\"", "type=\"sha1\"");
        let err = primary(&[sha1]).matching("kernel-core").unwrap_err();
        assert!(err.contains("only sha256"), "{err}");
        let based = package("kernel-core", "x86_64", "1", "P/k.rpm", &good).replace(
            "<location ",
            "<location xml:base=\"http://elsewhere.test/\" ",
        );
        let err = primary(&[based]).matching("kernel-core").unwrap_err();
        assert!(err.contains("outside"), "{err}");
        // Packages of other names are not ours to judge.
        let p = primary(&[package("other", "x86_64", "1", "../x", "junk")]);
        assert!(p.matching("kernel-core").unwrap().is_empty());
    }

    #[test]
    fn repomd_names_the_primary_index_and_its_digest() {
        let sum = "c".repeat(64);
        let repomd = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1</revision>
  <data type="filelists"><checksum type="sha256">{sum}</checksum><location href="repodata/f.xml.gz"/></data>
  <data type="primary"><checksum type="sha256">{sum}</checksum><open-checksum type="sha256">{sum}</open-checksum><location href="repodata/p-primary.xml.zst"/><size>10</size></data>
</repomd>"#
        );
        let (href, digest) = primary_location(repomd.as_bytes()).unwrap();
        assert_eq!(href, "repodata/p-primary.xml.zst");
        assert_eq!(digest.as_str(), sum);
        let outside = repomd.replace("repodata/p-primary", "../p-primary");
        assert!(primary_location(outside.as_bytes()).is_err());
        assert!(
            primary_location(b"<repomd/>")
                .unwrap_err()
                .contains("no `primary`")
        );
    }
}
