//! Kernels from RPM repositories: a repository built here with the real
//! `rpmbuild` and `createrepo_c`, holding debian-12's kernel repackaged the
//! way the RHEL family ships it (`kernel-core` with the image, the modules
//! in `kernel-modules`), served on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use bpfcompat_e2e::mirror::{Body, routes_of_dir, serve};
use bpfcompat_e2e::{mentions, run, with_report};

use super::kernels::{cell, debian_12_image};

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

#[test]
fn a_kernel_from_an_rpm_repository_is_pinned_fetched_booted_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let release = el_repository(dir.path());
    let repo = dir.path().join("repo");
    let mut routes = routes_of_dir(&repo, &format!("/{SUITE}"));
    // A copy whose primary index was altered after repomd.xml named it.
    for (path, body) in routes_of_dir(&repo, "/tampered/os") {
        let body = match body {
            Body::Bytes(mut b)
                if path.ends_with("primary.xml.zst") || path.ends_with("primary.xml.gz") =>
            {
                b.push(0);
                Body::Bytes(b)
            }
            other => other,
        };
        routes.insert(path, body);
    }
    let base = serve(routes);
    let matrix = dir.path().join("el.toml");
    std::fs::write(
        &matrix,
        format!(
            "[[kernel]]\nname = \"el-9\"\nformat = \"rpm\"\nsources = [\"local:{SUITE}\"]\n\
             package = \"kernel-core\"\nmodules = [\"kernel-modules\"]\n"
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let cli = |args: &[&str]| {
        let mut c = bpfcompat_e2e::cli(args);
        c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_CACHE", &cache);
        c
    };
    let m = matrix.to_str().unwrap();
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

    // An index that does not match the digest repomd.xml gives is refused.
    std::fs::write(
        &matrix,
        "[[kernel]]\nname = \"el-9\"\nformat = \"rpm\"\nsources = [\"local:tampered/os\"]\npackage = \"kernel-core\"\n",
    )
    .unwrap();
    let out = run(cli(&["kernels", "update", "--matrix", m]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["tampered/os/repodata/", "but repomd.xml says"],
    );
}
