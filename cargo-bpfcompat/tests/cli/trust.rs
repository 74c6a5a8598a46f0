//! Hostile and broken input, as an attacker or an unlucky user would give it:
//! crafted locks and indexes served from a local mirror on 127.0.0.1,
//! planted links, damaged objects, unwritable outputs. Nothing outside the
//! test's own directory may be touched, and every case exits 1 with one
//! clear message. No guest boots here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{bpfcompat, matrix, mentions, run, test_with, tiny_bpf_object, write};
use bpfcompat_e2e::mirror::{Body, TestKey, packages_gz, serve, signed_suite};

const PACKAGE: &str = "linux-image-1.0-1-cloud-amd64";

/// A matrix of one kernel from the `local` archive, pinned by `lock`.
fn local_matrix(dir: &Path, sha256: &str, filename: &str) -> String {
    sized_local_matrix(dir, sha256, filename, 0)
}

/// [`local_matrix`] with the package's pinned size (0: not pinned).
fn sized_local_matrix(dir: &Path, sha256: &str, filename: &str, size: u64) -> String {
    let m = matrix(
        dir,
        "[[kernel]]\nname = \"local-k\"\nsources = [\"local:stable\"]\npackage = \"linux-image-*-1-cloud-amd64\"\n",
    );
    write(
        dir,
        "kernels.lock",
        &format!(
            "[[kernel]]\nname = \"local-k\"\narchive = \"local\"\nsuite = \"stable\"\npackage = \"{PACKAGE}\"\nversion = \"1\"\nfilename = \"{filename}\"\nsize = {size}\nsha256 = \"{sha256}\"\n"
        ),
    );
    m
}

/// A keyring file holding `key`'s public key.
fn keyring(dir: &Path, key: &TestKey) -> std::path::PathBuf {
    let path = dir.join("local-keyring.asc");
    std::fs::write(&path, key.public_armored()).unwrap();
    path
}

/// A directory with a file in it that a hostile value would point at.
fn victim(dir: &Path) -> std::path::PathBuf {
    let v = dir.join("victim");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("precious"), b"keep me").unwrap();
    v
}

fn assert_untouched(victim: &Path) {
    assert_eq!(
        std::fs::read(victim.join("precious")).unwrap(),
        b"keep me",
        "{} was touched",
        victim.display()
    );
}

#[test]
fn a_lock_digest_that_is_a_path_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let v = victim(dir.path());
    // <cache>/kernels/../../victim is the victim: a run once deleted it.
    for digest in ["../../victim".to_string(), v.display().to_string()] {
        let m = local_matrix(dir.path(), &digest, "pool/k.deb");
        let mut c = test_with(&obj, &m, &[]);
        c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
            .env("BPFCOMPAT_MIRROR_LOCAL", "http://127.0.0.1:9");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{err}");
        mentions(&err, &["kernels.lock", "not a sha256 digest"]);
        assert_untouched(&v);
        assert!(!dir.path().join("victim.lock").exists());
    }
}

#[test]
fn a_hostile_index_cannot_plant_a_path_in_the_lock() {
    for (sha, file) in [
        ("../../victim", "pool/k.deb"),
        (&*"a".repeat(64), "../../../etc/passwd"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let index =
            format!("Package: {PACKAGE}\nVersion: 2\nFilename: {file}\nSize: 1\nSHA256: {sha}\n");
        // Signed by the archive's key: the mirror is trusted, the stanza is not.
        let key = TestKey::new("local");
        let base = serve(signed_suite("stable", &index, &key));
        let m = local_matrix(dir.path(), &"0".repeat(64), "pool/k.deb");
        let before = std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();
        let mut c = bpfcompat(&["kernels", "update", "--matrix", &m]);
        c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", keyring(dir.path(), &key));
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{err}");
        mentions(&err, &["is unusable", PACKAGE]);
        let after = std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();
        assert!(
            !after.contains("victim") && !after.contains("passwd"),
            "{after}"
        );
        assert!(
            after.contains(&"0".repeat(64)) || after == before,
            "{after}"
        );
    }
}

#[test]
fn a_planted_lock_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let digest = "e".repeat(64);
    let m = local_matrix(dir.path(), &digest, "pool/k.deb");
    let kernels = dir.path().join("cache/kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    let target = dir.path().join("root-owned-file");
    std::fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, kernels.join(format!("{digest}.lock"))).unwrap();
    let mut c = bpfcompat(&["kernels", "fetch", "--matrix", &m]);
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_LOCAL", "http://127.0.0.1:9");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["symbolic link"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

#[test]
fn a_digest_mismatch_is_a_tool_failure_even_when_unavailable_kernels_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let base = serve(BTreeMap::from([(
        "/pool/k.deb".to_string(),
        Body::Bytes(b"not the pinned package".to_vec()),
    )]));
    let m = local_matrix(dir.path(), &"f".repeat(64), "pool/k.deb");
    let json = dir.path().join("r.json");
    let mut c = test_with(
        &obj,
        &m,
        &["--allow-unavailable", "--json", json.to_str().unwrap()],
    );
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_LOCAL", &base);
    let (code, out, _) = run(c);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cell = &report["cells"][0];
    assert_eq!(cell["status"], "infra_error", "{cell:#}");
    assert!(
        cell["message"].as_str().unwrap().contains("sha256"),
        "{cell:#}"
    );
    // Nothing of the bad download stays in the cache (lock files and the
    // in-use marker are no content).
    let left: Vec<_> = std::fs::read_dir(dir.path().join("cache/kernels"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock") && !n.ends_with(".use"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_download_past_its_pinned_size_is_stopped_there() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(BTreeMap::from([(
        "/pool/k.deb".to_string(),
        Body::Bytes(vec![7; 4 << 20]),
    )]));
    let m = sized_local_matrix(dir.path(), &"f".repeat(64), "pool/k.deb", 1000);
    let mut c = bpfcompat(&["kernels", "fetch", "--matrix", &m]);
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_LOCAL", &base);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("more than the 1000 bytes"), "{err}");
}

#[test]
fn a_stalled_mirror_is_abandoned_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(BTreeMap::from([(
        "/pool/k.deb".to_string(),
        Body::Stall {
            first: vec![0; 1000],
            total: 1 << 20,
        },
    )]));
    let m = local_matrix(dir.path(), &"f".repeat(64), "pool/k.deb");
    let mut c = bpfcompat(&["kernels", "fetch", "--matrix", &m]);
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_LOCAL", &base)
        .env("BPFCOMPAT_HTTP_IDLE_SECS", "2");
    let started = Instant::now();
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["stalled"]);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn no_cache_location_is_an_error_naming_the_variable() {
    let mut c = bpfcompat(&["kernels", "list"]);
    c.env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("BPFCOMPAT_CACHE");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["BPFCOMPAT_CACHE", "hint"]);
}

#[test]
fn a_profile_named_dot_dot_cannot_write_evidence_outside() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = matrix(
        dir.path(),
        "[[kernel]]\nname = \"..\"\nsources = [\"local:stable\"]\npackage = \"p\"\n",
    );
    let evidence = dir.path().join("evidence");
    let (code, _, err) = run(test_with(
        &obj,
        &m,
        &["--evidence", evidence.to_str().unwrap()],
    ));
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["not starting with `.`"]);
}

fn root_or_skip(why: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIP {why}");
    }
    root
}

#[test]
fn an_unreadable_cache_entry_says_so_not_check_the_network() {
    if !root_or_skip("needs root to make an entry another user cannot read") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let digest = "a".repeat(64);
    let m = local_matrix(dir.path(), &digest, "pool/k.deb");
    let entry = dir.path().join(format!("cache/kernels/{digest}"));
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("meta.json"), b"{}").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        (dir.path().to_path_buf(), 0o755),
        (entry.join("meta.json"), 0o600),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // The cache is that user's (a cache of another's is refused outright);
    // the one entry in it is root's.
    for d in ["cache", "cache/kernels"] {
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        nix::unistd::chown(&dir.path().join(d), nobody, None).unwrap();
    }
    let mut c = std::process::Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_cargo-bpfcompat"))
        .args(["kernels", "fetch", "--matrix", &m])
        .env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_LOCAL", "http://127.0.0.1:9");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not readable") && err.contains("uid 65534") && !err.contains("network"),
        "{err}"
    );
}

#[test]
fn a_cache_another_user_could_plant_in_is_refused_before_anything_runs() {
    if !root_or_skip("needs root to give the cache to another user") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    // nobody's, and anyone may write in it: what they plant would be
    // booted, restored and trusted by this root run.
    nix::unistd::chown(&cache, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = bpfcompat(&["kernels", "list"]);
    c.env("BPFCOMPAT_CACHE", &cache);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("owned by uid 65534") && err.contains("chown -R 0"),
        "{err}"
    );
    // Its own, but writable by others: refused too.
    nix::unistd::chown(&cache, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    let mut c = bpfcompat(&["kernels", "list"]);
    c.env("BPFCOMPAT_CACHE", &cache);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("writable by others") && err.contains("chmod go-w"),
        "{err}"
    );
}

#[test]
fn a_full_disk_says_so_not_check_the_network() {
    if !root_or_skip("needs root to mount a small tmpfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&cache)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&cache);
    let base = serve(BTreeMap::from([(
        "/pool/k.deb".to_string(),
        Body::Bytes(vec![7; 1 << 20]),
    )]));
    let m = local_matrix(dir.path(), &"f".repeat(64), "pool/k.deb");
    let mut c = bpfcompat(&["kernels", "fetch", "--matrix", &m]);
    c.env("BPFCOMPAT_CACHE", &cache)
        .env("BPFCOMPAT_MIRROR_LOCAL", &base);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("disk is full") && !err.contains("network"),
        "{err}"
    );
}

#[test]
fn damaged_objects_are_refused_on_the_host_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(tiny_bpf_object()).unwrap();
    let shoff = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let mut overwritten = good.clone();
    overwritten[shoff..].iter_mut().for_each(|b| *b = 0x5a);
    let mut past_end = good.clone();
    past_end[40..48].copy_from_slice(&(good.len() as u64 * 4).to_le_bytes());
    // A .BTF whose first type record has a kind BTF does not have.
    let with_btf = std::fs::read(bpfcompat_e2e::fixture("ringbuf")).unwrap();
    let btf = with_btf
        .windows(3)
        .position(|w| w == [0x9f, 0xeb, 0x01])
        .expect("the object has BTF");
    let word = |at: usize| u32::from_le_bytes(with_btf[at..at + 4].try_into().unwrap()) as usize;
    let first_type = btf + word(btf + 4) + word(btf + 8);
    let mut bad_kind = with_btf.clone();
    bad_kind[first_type + 7] = 0x1f;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a BTF type of no kind", bad_kind),
        ("200 bytes", good[..200].to_vec()),
        ("700 bytes", good[..700].to_vec()),
        ("overwritten section headers", overwritten),
        ("e_shoff past the end", past_end),
    ];
    for (what, bytes) in cases {
        let p = dir.path().join("broken.bpf.o");
        std::fs::write(&p, bytes).unwrap();
        let mut c = bpfcompat(&["test", "--object", p.to_str().unwrap()]);
        // Were a guest attempted, the error would be about QEMU instead.
        c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let started = Instant::now();
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(started.elapsed() < Duration::from_secs(1), "{what}");
        assert!(
            err.contains("broken.bpf.o is a damaged BPF object") && err.lines().count() <= 2,
            "{what}: {err}"
        );
    }
}

#[test]
fn a_fifo_device_or_directory_object_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.bpf.o");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for (p, kind) in [
        (fifo.to_str().unwrap(), "a FIFO"),
        ("/dev/zero", "a device"),
        (dir.path().to_str().unwrap(), "a directory"),
    ] {
        let started = Instant::now();
        let (code, _, err) = run(bpfcompat(&["test", "--object", p]));
        assert_eq!(code, 1, "{err}");
        mentions(&err, &[kind]);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn usage_errors_exit_1_not_2() {
    for args in [
        &["--bogus"][..],
        &[][..],
        &["test", "--shard", "3/2"][..],
        &["test", "--shard", "0/2"][..],
        &["test", "--mode", "sideways"][..],
    ] {
        let (code, _, err) = run(bpfcompat(args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("error") || err.contains("Usage"), "{err}");
    }
    let (code, out, _) = run(bpfcompat(&["--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("Usage"));
}

#[test]
fn unwritable_report_paths_fail_before_any_guest() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let file = write(dir.path(), "a-file", "x");
    for (flag, path) in [
        ("--json", "/nonexistent-dir/r.json".to_string()),
        ("--markdown", dir.path().display().to_string()),
        ("--junit", format!("{file}/r.xml")),
        ("--evidence", format!("{file}/evidence")),
    ] {
        let mut c = bpfcompat(&["test", "--object", &obj, flag, &path]);
        c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{flag}: {err}");
        assert!(err.contains(flag) && err.contains("hint"), "{flag}: {err}");
    }
    // A baseline that is not a report is refused before anything runs, too.
    let mut c = bpfcompat(&["test", "--object", &obj, "--baseline", &file]);
    c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["baseline"]);
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn a_report_that_cannot_be_written_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = super::orphan_matrix(dir.path());
    let json = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    let mut c = test_with(
        &obj,
        &m,
        &[
            "--allow-unavailable",
            "--json",
            json.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    // Only known after the run: the step summary GitHub would append to.
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache")).env(
        "GITHUB_STEP_SUMMARY",
        dir.path().join("no-such-dir/summary"),
    );
    let (code, out, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["GITHUB_STEP_SUMMARY"]);
    assert!(json.is_file() && md.is_file());
    assert!(
        out.contains("far-away"),
        "the matrix is still printed: {out}"
    );
}

#[test]
fn outdated_lists_profiles_the_archive_has_moved_past() {
    let dir = tempfile::tempdir().unwrap();
    // The lock pins version 1; the archive serves version 2 of the same package.
    let m = local_matrix(dir.path(), &"a".repeat(64), "pool/k.deb");
    let index = |version: &str| {
        format!(
            "Package: {PACKAGE}\nVersion: {version}\nFilename: pool/k2.deb\nSize: 2\nSHA256: {}\n",
            "b".repeat(64)
        )
    };
    let key = TestKey::new("local");
    let keys = keyring(dir.path(), &key);
    let outdated = |version: &str| {
        let base = serve(signed_suite("stable", &index(version), &key));
        let mut c = bpfcompat(&["kernels", "outdated", "--matrix", &m]);
        c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", &keys);
        run(c)
    };
    let (code, out, err) = outdated("2");
    assert_eq!(code, 2, "{out}{err}");
    let row = out.lines().find(|l| l.starts_with("local-k")).unwrap();
    mentions(row, &["1", &format!("{PACKAGE} 2"), "outdated"]);
    mentions(&out, &["1 profile is behind the archive", "kernels update"]);
    let (code, out, _) = outdated("1");
    assert_eq!(code, 0, "{out}");
    mentions(&out, &["current"]);
}

#[test]
fn an_own_kernel_at_a_url_is_checked_against_its_digest() {
    use sha2::Digest as _;
    // A bzImage as far as the boot protocol header goes: "HdrS" at 0x202,
    // the version string at 0x200 + the field at 0x20e.
    let mut image = vec![0u8; 0x1000];
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x20e..0x210].copy_from_slice(&0x600u16.to_le_bytes());
    image[0x800..0x800 + 24].copy_from_slice(b"6.6.6-vendor (builder@x)");
    let digest = hex::encode(sha2::Sha256::digest(&image));
    let base = serve(BTreeMap::from([(
        "/k/vmlinuz".to_string(),
        Body::Bytes(image),
    )]));
    let dir = tempfile::tempdir().unwrap();
    let fetch = |sha256: &str| {
        let m = write(
            dir.path(),
            "own.toml",
            &format!(
                "[[kernel]]\nname = \"vendor\"\nurl = \"{base}/k/vmlinuz\"\nsha256 = \"{sha256}\"\n"
            ),
        );
        let mut c = bpfcompat(&["kernels", "fetch", "--matrix", &m]);
        c.env("BPFCOMPAT_CACHE", dir.path().join("cache"));
        run(c)
    };
    let (code, out, err) = fetch(&"0".repeat(64));
    assert_eq!(code, 1, "{out}{err}");
    mentions(&err, &["sha256", &digest]);
    let (code, out, err) = fetch(&digest);
    assert_eq!(code, 0, "{err}");
    mentions(&out, &["vendor: 6.6.6-vendor at "]);
    // Listed as what it is: its URL at its digest, cached, no mirror asked for.
    let m = dir.path().join("own.toml");
    let mut c = bpfcompat(&["kernels", "list", "--matrix", m.to_str().unwrap()]);
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"));
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    mentions(
        &out,
        &[
            &format!("{base}/k/vmlinuz"),
            &format!("sha256 {}", &digest[..12]),
            "cached (6.6.6-vendor)",
        ],
    );
    // One kernel a profile, named one way.
    let m = write(
        dir.path(),
        "bad.toml",
        "[[kernel]]\nname = \"v\"\nurl = \"https://example.invalid/k\"\n",
    );
    let (code, _, err) = run(bpfcompat(&["kernels", "list", "--matrix", &m]));
    assert_eq!(code, 1);
    mentions(&err, &["`url` needs its `sha256`"]);
}

#[test]
fn an_index_is_used_only_when_the_archives_key_signed_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = local_matrix(dir.path(), &"a".repeat(64), "pool/k.deb");
    let index = format!(
        "Package: {PACKAGE}\nVersion: 2\nFilename: pool/k2.deb\nSize: 2\nSHA256: {}\n",
        "b".repeat(64)
    );
    let (archive_key, other_key) = (TestKey::new("archive"), TestKey::new("other"));
    let trusted = keyring(dir.path(), &archive_key);
    let update = |routes: BTreeMap<String, Body>, extra: &[&str]| {
        let base = serve(routes);
        let mut c = bpfcompat(&["kernels", "update", "--matrix", &m]);
        c.args(extra)
            .env("BPFCOMPAT_MIRROR_LOCAL", &base)
            .env("BPFCOMPAT_KEYRING_LOCAL", &trusted);
        run(c)
    };
    let pinned = || std::fs::read_to_string(dir.path().join("kernels.lock")).unwrap();

    // Signed by another key than the archive's: refused, naming the keys.
    let (code, _, err) = update(signed_suite("stable", &index, &other_key), &[]);
    assert_eq!(code, 1, "{err}");
    mentions(
        &err,
        &[
            "InRelease is not signed by a trusted key",
            "BPFCOMPAT_KEYRING_LOCAL",
            "--insecure-unsigned",
        ],
    );
    assert!(pinned().contains("version = \"1\""), "{}", pinned());

    // A Packages index other than the one the signed release lists.
    let mut routes = signed_suite("stable", &index, &archive_key);
    routes.insert(
        "/dists/stable/main/binary-amd64/Packages.gz".into(),
        Body::Bytes(packages_gz(&index.replace("Version: 2", "Version: 3"))),
    );
    let (code, _, err) = update(routes, &[]);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["Packages.gz", "but the signed Release says"]);

    // A signed release whose text was changed after signing.
    let mut routes = signed_suite("stable", &index, &archive_key);
    let Some(Body::Bytes(inrelease)) = routes.get("/dists/stable/InRelease").cloned() else {
        unreachable!()
    };
    let altered = String::from_utf8(inrelease)
        .unwrap()
        .replace("Origin: test", "Origin: evil");
    routes.insert(
        "/dists/stable/InRelease".into(),
        Body::Bytes(altered.into_bytes()),
    );
    let (code, _, err) = update(routes, &[]);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["not signed by a trusted key"]);

    // No release file at all: refused, unless explicitly accepted.
    let unsigned = BTreeMap::from([(
        "/dists/stable/main/binary-amd64/Packages.gz".to_string(),
        Body::Bytes(packages_gz(&index)),
    )]);
    let (code, _, err) = update(unsigned.clone(), &[]);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["InRelease (or Release)"]);
    assert!(pinned().contains("version = \"1\""), "{}", pinned());
    let (code, out, err) = update(unsigned, &["--insecure-unsigned"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(pinned().contains("version = \"2\""), "{}", pinned());

    // Signed by a trusted (RSA) key, but only with SHA-1: refused, as apt
    // does.
    let rsa = TestKey::rsa("archive-rsa");
    let rsa_keyring = dir.path().join("rsa-keyring.asc");
    std::fs::write(&rsa_keyring, rsa.public_armored()).unwrap();
    let mut routes = signed_suite("stable", &index, &rsa);
    let gz = packages_gz(&index);
    let release = bpfcompat_e2e::mirror::release_for(&[("main/binary-amd64/Packages.gz", &gz)]);
    routes.insert(
        "/dists/stable/InRelease".into(),
        Body::Bytes(rsa.clearsign_sha1(&release).into_bytes()),
    );
    let base = serve(routes);
    let mut c = bpfcompat(&["kernels", "update", "--matrix", &m]);
    c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
        .env("BPFCOMPAT_KEYRING_LOCAL", &rsa_keyring);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["weak digest SHA1", "apt refuses"]);
    // The same key with SHA-256 is fine (the digest decided).
    let base = serve(signed_suite("stable", &index, &rsa));
    let elsewhere = dir.path().join("rsa.lock");
    let mut c = bpfcompat(&["kernels", "update", "--matrix", &m, "--lock"]);
    c.arg(&elsewhere);
    c.env("BPFCOMPAT_MIRROR_LOCAL", &base)
        .env("BPFCOMPAT_KEYRING_LOCAL", &rsa_keyring);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");

    // A properly signed release past its Valid-Until: a replayed old one.
    let mut routes = signed_suite("stable", &index, &archive_key);
    let stale = release.replace(
        "Suite: test\n",
        "Suite: test\nValid-Until: Sat, 13 Dec 2025 20:30:35 UTC\n",
    );
    routes.insert(
        "/dists/stable/InRelease".into(),
        Body::Bytes(archive_key.clearsign(&stale).into_bytes()),
    );
    let (code, _, err) = update(routes, &[]);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["expired (Valid-Until: Sat, 13 Dec 2025"]);

    // An endless release file is not read into memory before its check.
    let mut routes = signed_suite("stable", &index, &archive_key);
    routes.insert(
        "/dists/stable/InRelease".into(),
        Body::Bytes(vec![b'x'; 17 << 20]),
    );
    let (code, _, err) = update(routes, &[]);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["more than 16 MiB for a release file"]);

    // Signed by the archive's key: pinned.
    let (code, out, err) = update(signed_suite("stable", &index, &archive_key), &[]);
    assert_eq!(code, 0, "{out}{err}");
    mentions(&out, &["local-k"]);
}

#[test]
fn check_cleanup_removes_what_a_killed_check_left_and_nothing_of_a_live_one() {
    if !root_or_skip("needs root to make devices and cgroups") {
        return;
    }
    // A PID no process has, and this test's own (a live check's).
    let (dead, live) = (4_194_303, std::process::id());
    let made = |name: &str| {
        std::process::Command::new("ip")
            .args(["link", "add", name, "type", "veth", "peer", "name"])
            .arg(name.replace('a', "b"))
            .status()
            .is_ok_and(|s| s.success())
    };
    if !made(&format!("bpfve{dead}a")) {
        eprintln!("SKIP cannot make a veth pair here");
        return;
    }
    assert!(made(&format!("bpfve{live}a")));
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let cgroup2 = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(std::path::PathBuf::from);
    let left_cgroup = cgroup2
        .as_ref()
        .map(|r| r.join(format!("bpfcompat-check-{dead}-0")));
    if let Some(c) = &left_cgroup {
        std::fs::create_dir(c).unwrap();
    }
    let (code, out, err) = run(bpfcompat(&["check", "--cleanup"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("Removed bpfve{dead}a")), "{out}");
    let exists = |n: String| Path::new("/sys/class/net").join(n).exists();
    assert!(!exists(format!("bpfve{dead}a")) && !exists(format!("bpfve{dead}b")));
    // A live check's pair stays (removed here by the test itself).
    assert!(exists(format!("bpfve{live}a")), "{out}");
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &format!("bpfve{live}a")])
        .status();
    if let Some(c) = &left_cgroup {
        assert!(!c.exists(), "{out}");
    }
}
