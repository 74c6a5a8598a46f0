//! Kernels from archives served on 127.0.0.1 and signed by a key made for
//! the test: an apt archive holding debian-12's kernel as a `.deb`, and an
//! RPM repository built with the real `rpmbuild` and `createrepo_c`, holding
//! the same kernel repackaged the way the RHEL family ships it
//! (`kernel-core` with the image, the modules in `kernel-modules`).

use std::path::Path;
use std::process::Command;

use bpfcompat_e2e::mirror::{Body, TestKey, routes_of_dir, serve, signed_suite};
use bpfcompat_e2e::{mentions, run, with_report};

use super::kernels::{cell, debian_12_image, vendor_deb};

/// The repository's path below the mirror, as a source's suite names it.
const SUITE: &str = "el/9/BaseOS/x86_64/os";

/// Builds one binary RPM named `name` holding `root`'s tree.
fn rpmbuild(top: &Path, name: &str, root: &Path) {
    std::fs::create_dir_all(top).unwrap();
    let spec = top.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: 6.1.0\nRelease: 56.el9\nSummary: kernel\nLicense: GPL-2.0\n\
             BuildArch: x86_64\nAutoReqProv: no\n\
             %define _build_id_links none\n%define __os_install_post %{{nil}}\n%define debug_package %{{nil}}\n\
             %description\nkernel\n%install\ncp -a {}/. %{{buildroot}}/\n%files\n/lib/modules\n",
            root.display()
        ),
    )
    .unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .args(["--quiet", "-bb"])
        .arg(&spec)
        .output()
        .expect("rpmbuild (Debian's `rpm` package) runs");
    assert!(out.status.success(), "{out:?}");
}

/// A repository in `dir` with `kernel-core` and `kernel-modules` made from
/// debian-12's cached kernel; returns the kernel's release.
fn el_repository(dir: &Path) -> String {
    let (vmlinuz, config, release) = debian_12_image();
    let lib = format!("lib/modules/{release}");
    let core = dir.join("core");
    std::fs::create_dir_all(core.join(&lib)).unwrap();
    std::fs::copy(&vmlinuz, core.join(&lib).join("vmlinuz")).unwrap();
    std::fs::copy(&config, core.join(&lib).join("config")).unwrap();
    // The guest modules, xz-compressed as the RHEL family ships them.
    let modules = dir.join("modules");
    let sched = modules.join(&lib).join("kernel/net/sched");
    std::fs::create_dir_all(&sched).unwrap();
    let cached = vmlinuz.with_file_name("modules");
    let mut count = 0;
    for e in std::fs::read_dir(&cached).unwrap().flatten() {
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut xz, &std::fs::read(e.path()).unwrap()).unwrap();
        std::fs::write(sched.join(format!("{name}.xz")), xz.finish().unwrap()).unwrap();
        count += 1;
    }
    assert!(count >= 2, "debian-12's entry has its guest modules");
    let top = dir.join("rpmbuild");
    rpmbuild(&top, "kernel-core", &core);
    rpmbuild(&top, "kernel-modules", &modules);
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("Packages")).unwrap();
    for e in std::fs::read_dir(top.join("RPMS/x86_64"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), repo.join("Packages").join(e.file_name())).unwrap();
    }
    let out = Command::new("createrepo_c")
        .arg("--quiet")
        .arg(&repo)
        .output()
        .expect("createrepo_c runs");
    assert!(out.status.success(), "{out:?}");
    release
}

/// The repository's routes under `prefix`, its `repomd.xml.asc` made by
/// `key` (none without), its primary index altered when `tamper`.
fn served(repo: &Path, prefix: &str, key: Option<&TestKey>, tamper: bool) -> Vec<(String, Body)> {
    let mut routes: Vec<(String, Body)> = routes_of_dir(repo, prefix).into_iter().collect();
    let repomd = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    if let Some(key) = key {
        let asc = key.detach_sign(&repomd).into_bytes();
        routes.push((
            format!("{prefix}/repodata/repomd.xml.asc"),
            Body::Bytes(asc),
        ));
    }
    for (path, body) in &mut routes {
        if let Body::Bytes(b) = body
            && tamper
            && path.contains("primary.xml")
        {
            b.push(0);
        }
    }
    routes
}

#[test]
fn a_kernel_from_an_rpm_repository_is_pinned_fetched_booted_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let release = el_repository(dir.path());
    let repo = dir.path().join("repo");
    let (key, other) = (TestKey::new("el"), TestKey::new("other"));
    let keyring = dir.path().join("el.asc");
    std::fs::write(&keyring, key.public_armored()).unwrap();
    let base = serve(
        [
            served(&repo, &format!("/{SUITE}"), Some(&key), false),
            // Signed, but its primary index was altered after repomd.xml named it.
            served(&repo, "/tampered/os", Some(&key), true),
            // Signed by another key than the repository's.
            served(&repo, "/forged/os", Some(&other), false),
            served(&repo, "/unsigned/os", None, false),
        ]
        .concat()
        .into_iter()
        .collect(),
    );
    let matrix = dir.path().join("el.toml");
    let profile = |suite: &str, modules: &str| {
        std::fs::write(
            &matrix,
            format!(
                "[[kernel]]\nname = \"el-9\"\nformat = \"rpm\"\nsources = [\"local:{suite}\"]\n\
                 package = \"kernel-core\"\nmodules = [{modules}]\n"
            ),
        )
        .unwrap();
    };
    let cache = dir.path().join("cache");
    let cli = |args: &[&str]| {
        let mut c = bpfcompat_e2e::cli(args);
        c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", &keyring)
            .env("BPFCOMPAT_CACHE", &cache);
        c
    };
    let m = matrix.to_str().unwrap();
    profile(SUITE, "\"kernel-modules\"");
    let out = run(cli(&["kernels", "update", "--matrix", m]));
    assert!(out.status.success(), "{out:?}");
    let lock = std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();
    mentions(
        &lock,
        &[
            "format = \"rpm\"",
            "package = \"kernel-core\"",
            "version = \"6.1.0-56.el9\"",
            &format!("filename = \"{SUITE}/Packages/kernel-core-6.1.0-56.el9.x86_64.rpm\""),
            "package = \"kernel-modules\"",
        ],
    );

    // The tc classifier needs clsact and cls_bpf, which only kernel-modules
    // carries: it passes only if both packages were read.
    let mut c = cli(&["test", "--matrix", m, "--object"]);
    c.arg(bpfcompat_e2e::fixture("tc"));
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let k = &report["kernels"][0];
    assert_eq!(k["release"], release.as_str(), "{k:#}");
    assert_eq!(k["kernel_config"]["CONFIG_BPF_LSM"], "y", "{k:#}");
    assert_eq!(cell(&report, "tc", "el-9")["status"], "pass", "{report:#}");

    // What is not signed by the repository's key, or not what its signed
    // repomd.xml names, is refused and leaves the lock as it was.
    for (suite, says) in [
        (
            "tampered/os",
            &["tampered/os/repodata/", "but repomd.xml says"][..],
        ),
        (
            "forged/os",
            &[
                "forged/os/repodata/repomd.xml.asc",
                "not signed by a trusted key",
            ],
        ),
        (
            "unsigned/os",
            &["serves no signature", "--insecure-unsigned"],
        ),
    ] {
        profile(suite, "");
        let out = run(cli(&["kernels", "update", "--matrix", m]));
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        mentions(&String::from_utf8_lossy(&out.stderr), says);
        let now = std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();
        assert!(now.contains(SUITE), "{now}");
    }
    // A local test repository without signatures, accepted explicitly.
    let out = run(cli(&[
        "kernels",
        "update",
        "--matrix",
        m,
        "--insecure-unsigned",
    ]));
    assert!(out.status.success(), "{out:?}");
    let now = std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();
    assert!(now.contains("unsigned/os/Packages/kernel-core"), "{now}");
}

#[test]
fn a_kernel_from_a_signed_apt_archive_is_pinned_fetched_booted_and_judged() {
    let (vmlinuz, config, release) = debian_12_image();
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("k.deb");
    vendor_deb(&deb, &vmlinuz, &config, &release);
    let bytes = std::fs::read(&deb).unwrap();
    let package = format!("linux-image-{release}");
    let filename = format!("pool/main/l/linux/{package}_1_amd64.deb");
    let index = {
        use sha2::Digest;
        format!(
            "Package: {package}\nVersion: 6.1.0-1\nFilename: {filename}\nSize: {}\nSHA256: {}\n",
            bytes.len(),
            hex::encode(sha2::Sha256::digest(&bytes))
        )
    };
    let key = TestKey::new("archive");
    let mut routes = signed_suite("stable", &index, &key);
    routes.insert(format!("/{filename}"), Body::Bytes(bytes));
    let base = serve(routes);
    let keyring = dir.path().join("archive.asc");
    std::fs::write(&keyring, key.public_armored()).unwrap();
    let matrix = dir.path().join("m.toml");
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"local-6.1\"\nsources = [\"local:stable\"]\npackage = \"linux-image-6.1.0-*-cloud-amd64\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut c = bpfcompat_e2e::cli(args);
        c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", &keyring)
            .env("BPFCOMPAT_CACHE", dir.path().join("cache"));
        c
    };
    let m = matrix.to_str().unwrap();
    let out = run(cli(&["kernels", "update", "--matrix", m]));
    assert!(out.status.success(), "{out:?}");
    let mut c = cli(&["test", "--matrix", m, "--object"]);
    c.arg(bpfcompat_e2e::fixture("tc"));
    let (out, report) = with_report(c);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["kernels"][0]["release"], release.as_str());
    assert_eq!(
        cell(&report, "tc", "local-6.1")["status"],
        "pass",
        "{report:#}"
    );
}
