//! `bisect` over a signed apt archive served on 127.0.0.1 that lists nine
//! releases of one kernel series: the first five are debian-11's 5.10
//! repackaged, the last four debian-12's 6.1, so that `bpf_loop` (Linux
//! 5.17) appears at the sixth. Each package ships the series' changelog up
//! to its own version.

use std::io::Write;

use bpfcompat_e2e::mirror::{Body, TestKey, serve, signed_suite};
use bpfcompat_e2e::{fixture, mentions, run};
use serde_json::Value;
use sha2::Digest;

use super::kernels::{cached_image, vendor_deb_with};

/// The package of release `n` (1..=9).
fn package(n: usize) -> (String, String) {
    (
        format!("linux-image-9.0.0-{n}-test"),
        format!("9.0.0-{n}.1"),
    )
}

/// The changelog shipped with release `n`: every entry up to it, newest
/// first, as Debian writes them, gzip-compressed.
fn changelog(n: usize) -> Vec<u8> {
    let mut text = String::new();
    for i in (1..=n).rev() {
        let change = match i {
            6 => "  * bpf: backport the bpf_loop helper\n  * drm: unrelated fix\n",
            3 => "  * bpf: an older verifier fix\n",
            _ => "  * net: routine update\n",
        };
        text.push_str(&format!(
            "linux ({}) test; urgency=medium\n\n{change}\n -- Test <test@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n\n",
            package(i).1
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn bisect_finds_the_release_where_a_verdict_changed_and_what_its_changelog_says() {
    let old = cached_image("debian-11-5.10");
    let new = cached_image("debian-12-6.1");
    let dir = tempfile::tempdir().unwrap();
    let mut index = String::new();
    let mut routes = std::collections::BTreeMap::new();
    for n in 1..=9 {
        let (vmlinuz, config, release) = if n < 6 { &old } else { &new };
        let (name, version) = package(n);
        let deb = dir.path().join(format!("{name}.deb"));
        let doc = format!("./usr/share/doc/{name}/changelog.Debian.gz");
        vendor_deb_with(&deb, vmlinuz, config, release, &[(doc, changelog(n))]);
        let bytes = std::fs::read(&deb).unwrap();
        let filename = format!("pool/main/l/linux/{name}_{version}_amd64.deb");
        index.push_str(&format!(
            "Package: {name}\nVersion: {version}\nFilename: {filename}\nSize: {}\nSHA256: {}\n\n",
            bytes.len(),
            hex::encode(sha2::Sha256::digest(&bytes))
        ));
        routes.insert(format!("/{filename}"), Body::Bytes(bytes));
    }
    // A release the index lists but the mirror does not serve.
    index.push_str(&format!(
        "Package: linux-image-9.1.0-1-test\nVersion: 9.1.0-1.1\nFilename: pool/gone.deb\nSize: 10\nSHA256: {}\n\n",
        "0".repeat(64)
    ));
    let (first, _) = package(1);
    let served = routes[&format!("/pool/main/l/linux/{first}_9.0.0-1.1_amd64.deb")].clone();
    let Body::Bytes(bytes) = &served else {
        unreachable!()
    };
    let filename = "pool/main/l/linux/linux-image-9.1.0-0-test_amd64.deb";
    index.push_str(&format!(
        "Package: linux-image-9.1.0-0-test\nVersion: 9.1.0-0.1\nFilename: {filename}\nSize: {}\nSHA256: {}\n\n",
        bytes.len(),
        hex::encode(sha2::Sha256::digest(bytes))
    ));
    routes.insert(format!("/{filename}"), served);
    let key = TestKey::new("archive");
    routes.extend(signed_suite("stable", &index, &key));
    let base = serve(routes);
    let keyring = dir.path().join("archive.asc");
    std::fs::write(&keyring, key.public_armored()).unwrap();
    let matrix = dir.path().join("series.toml");
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"test-9\"\nsources = [\"local:stable\"]\npackage = \"linux-image-9.0.0-*-test\"\n\n\
         [[kernel]]\nname = \"test-9-one\"\nsources = [\"local:stable\"]\npackage = \"linux-image-9.0.0-1-test\"\n\n\
         [[kernel]]\nname = \"test-9-gone\"\nsources = [\"local:stable\"]\npackage = \"linux-image-9.1.0-*-test\"\n",
    )
    .unwrap();
    let bisect = |series: &str, more: &[&str]| {
        let json = dir.path().join("bisect.json");
        let _ = std::fs::remove_file(&json);
        let mut c = bpfcompat_e2e::cli(&["bisect", "--series", series, "--matrix"]);
        c.arg(&matrix)
            .arg("--object")
            .arg(fixture("loop"))
            .arg("--json")
            .arg(&json)
            .args(more)
            .env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", &keyring)
            .env("BPFCOMPAT_CACHE", dir.path().join("cache"));
        let out = run(c);
        let result: Option<Value> = std::fs::read(&json)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap());
        (out, result)
    };

    let (out, result) = bisect("test-9", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = result.unwrap();
    assert_eq!(r["releases"].as_array().unwrap().len(), 9, "{r:#}");
    assert_eq!(r["last_good"], "9.0.0-5.1", "{r:#}");
    assert_eq!(r["first_bad"], "9.0.0-6.1", "{r:#}");
    let boots = r["boots"].as_u64().unwrap();
    assert!(boots <= 5, "{boots} boots: {r:#}");
    assert_eq!(r["probes"].as_array().unwrap().len() as u64, boots);
    // Each tested release's cell is the kernel's own verdict.
    for p in r["probes"].as_array().unwrap() {
        let position = p["position"].as_u64().unwrap();
        let want = if position < 5 { "fail" } else { "pass" };
        assert_eq!(p["verdict"]["status"], want, "{p:#}");
        if position < 5 {
            assert_eq!(p["verdict"]["code"], "UNSUPPORTED_HELPER", "{p:#}");
        }
    }
    assert_eq!(r["non_monotonic"], Value::Array(Vec::new()));
    // Only the first changed release's own entries, only what is about BPF.
    let lines: Vec<&str> = r["changelog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["* bpf: backport the bpf_loop helper"], "{r:#}");
    mentions(
        &stdout,
        &[
            "last as the oldest: 9.0.0-5.1",
            "first changed:      9.0.0-6.1",
            "9.0.0-6.1: * bpf: backport the bpf_loop helper",
        ],
    );

    // A range whose ends agree: said, not bisected.
    let (out, result) = bisect("test-9", &["--good", "9.0.0-2.1", "--bad", "9.0.0-4.1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = result.unwrap();
    assert_eq!(r["found"]["kind"], "same", "{r:#}");
    assert_eq!(r["boots"], 2);
    mentions(
        &String::from_utf8_lossy(&out.stdout),
        &["the two ends give the same verdict"],
    );

    // A version the series does not have, and a series of one release.
    let (out, _) = bisect("test-9", &["--good", "9.0.0-0.1"]);
    assert_eq!(out.status.code(), Some(1));
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &[
            "is not a release of `test-9`",
            "from 9.0.0-1.1 to 9.0.0-9.1",
        ],
    );
    let (out, _) = bisect("test-9-one", &[]);
    assert_eq!(out.status.code(), Some(1));
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["keeps one release", "nothing to bisect"],
    );

    // A result file that cannot be written: said before any boot.
    let (out, _) = bisect("test-9", &["--markdown", "/nonexistent-dir/b.md"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    mentions(&err, &["cannot write /nonexistent-dir/b.md"]);
    assert!(!err.contains("Booting"), "{err}");

    // A release that gives no verdict (its package is not served): the
    // search stops there instead of calling it a change.
    let (out, result) = bisect("test-9-gone", &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(result.is_none());
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["release 9.1.0-1.1 of `test-9-gone` gave no verdict"],
    );
}
