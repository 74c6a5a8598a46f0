//! Bad input gets one clear error and exit 1, never a panic: the CLI's
//! contract with CI scripts. No guest boots here.

use std::path::Path;
use std::process::{Command, Output};

mod trust;

fn bpfcompat(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-bpfcompat"));
    // Help is wrapped to the terminal: fix the width for snapshots.
    c.args(args)
        .env_remove("BPFCOMPAT_MIRROR_UBUNTU")
        .env_remove("CARGO_TERM_COLOR")
        .env("COLUMNS", "100");
    c
}

/// `test --object OBJ --matrix MATRIX` and more arguments.
fn test_with(obj: &str, matrix: &str, more: &[&str]) -> Command {
    let mut c = bpfcompat(&["test", "--object", obj, "--matrix", matrix]);
    c.args(more);
    c
}

fn run(mut c: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    (status.code().unwrap_or(-1), out, err)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Writes the matrix `text` as `dir/m.toml`; its path.
fn matrix(dir: &Path, text: &str) -> String {
    write(dir, "m.toml", text)
}

/// Asserts that `text` contains every one of `needles`, naming the first
/// missing one.
#[track_caller]
fn mentions(text: &str, needles: &[&str]) {
    if let Some(missing) = needles.iter().find(|n| !text.contains(**n)) {
        panic!("expected {missing:?} in:\n{text}");
    }
}

/// A real, minimal BPF object (committed, built from its source beside it).
fn tiny_bpf_object() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minimal.bpf.o").to_string()
}

#[test]
fn missing_object_file() {
    let (code, _, err) = run(bpfcompat(&["test", "--object", "/nonexistent/x.bpf.o"]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot read /nonexistent/x.bpf.o"),
        "{err}"
    );
}

#[test]
fn non_elf_and_non_bpf_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "notes.txt", "hello");
    let (code, _, err) = run(bpfcompat(&["test", "--object", &text]));
    assert_eq!(code, 1);
    mentions(&err, &["is not an ELF file", "hint:"]);
    let exe = env!("CARGO_BIN_EXE_cargo-bpfcompat");
    let (code, _, err) = run(bpfcompat(&["test", "--object", exe]));
    assert_eq!(code, 1);
    mentions(&err, &["not a BPF object", "clang -target bpf"]);
}

#[test]
fn unknown_kernel_lists_known_ones() {
    let obj = tiny_bpf_object();
    let (code, _, err) = run(bpfcompat(&[
        "test",
        "--object",
        &obj,
        "--kernel",
        "debian-99",
    ]));
    assert_eq!(code, 1);
    mentions(&err, &["unknown kernel `debian-99`", "debian-12-6.1"]);
    // A slip of case or a character is named; a kernel of the catalogue
    // outside this matrix is pointed to; a matrix name that is none says
    // which there are.
    for (kernel, says) in [
        ("Debian-12-6.1", "did you mean `debian-12-6.1`?"),
        ("debian-12-6.2", "did you mean `debian-12-6.1`?"),
        (
            "debian-13-backports",
            "`debian-13-backports` is in the catalogue; run it with `--matrix all --kernel debian-13-backports`",
        ),
    ] {
        let (code, _, err) = run(bpfcompat(&["test", "--object", &obj, "--kernel", kernel]));
        assert_eq!(code, 1);
        mentions(&err, &[says]);
    }
    let (code, _, err) = run(bpfcompat(&[
        "test",
        "--object",
        &obj,
        "--matrix",
        "nonexistent",
    ]));
    assert_eq!(code, 1);
    mentions(
        &err,
        &[
            "no matrix `nonexistent`",
            "the shipped matrices are default, all, rpm",
        ],
    );
}

#[test]
fn malformed_matrix_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = matrix(
        dir.path(),
        "[[kernel]]\nname = \"x\"\nsources = [\"debian:bookworm\"]\npackage = \"p\"\nrequird = false\n",
    );
    let (code, _, err) = run(test_with(&obj, &m, &[]));
    assert_eq!(code, 1);
    mentions(&err, &["malformed matrix", "requird", "line 5"]);
    let missing = dir.path().join("none.toml");
    let (code, _, err) = run(test_with(&obj, missing.to_str().unwrap(), &[]));
    assert_eq!(code, 1);
    mentions(&err, &["cannot read"]);
}

#[test]
fn missing_qemu() {
    let obj = tiny_bpf_object();
    let mut c = bpfcompat(&["test", "--object", &obj, "--kernel", "debian-12-6.1"]);
    c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu-system-x86_64");
    let (code, _, err) = run(c);
    assert_eq!(code, 1);
    mentions(
        &err,
        &[
            "/nonexistent/qemu-system-x86_64 not found",
            "apt-get install qemu-system-x86",
        ],
    );
}

#[test]
fn object_mode_finds_its_configuration_beside_the_object_or_from_config() {
    // A trigger that does not parse is refused before any guest, naming the
    // file: proof the object's table was read.
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("minimal.bpf.o");
    std::fs::copy(tiny_bpf_object(), &obj).unwrap();
    let bad = "[objects.minimal]\ntrigger = \"sh -c 'unterminated\"\n";
    let beside = write(dir.path(), "bpfcompat.toml", bad);
    let elsewhere = tempfile::tempdir().unwrap();
    let named = write(elsewhere.path(), "ci.toml", bad);
    let obj = obj.to_str().unwrap();
    for (config, origin) in [(None, &beside), (Some(&named), &named)] {
        let mut c = bpfcompat(&["test", "--object", obj, "--kernel", "debian-12-6.1"]);
        if let Some(f) = config {
            std::fs::remove_file(&beside).ok();
            c.args(["--config-file", f]);
        }
        c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(origin.as_str()) && err.contains("[objects.\"minimal\"] trigger"),
            "{err}"
        );
    }
}

/// A matrix whose only kernel lives in an archive nobody configured.
fn orphan_matrix(dir: &Path) -> String {
    let m = matrix(
        dir,
        "[[kernel]]\nname = \"far-away\"\nsources = [\"nowhere:stable\"]\npackage = \"linux-image-*\"\n",
    );
    write(
        dir,
        "kernels.lock",
        &format!(
            "[[kernel]]\nname = \"far-away\"\narchive = \"nowhere\"\nsuite = \"stable\"\npackage = \"linux-image-1\"\nversion = \"1\"\nfilename = \"pool/k.deb\"\nsize = 1\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ),
    );
    m
}

#[test]
fn kernel_without_mirror_is_unavailable_with_the_variable_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = orphan_matrix(dir.path());
    let cache = dir.path().join("cache");
    let mut c = test_with(&obj, &m, &[]);
    c.env("BPFCOMPAT_CACHE", &cache);
    let (code, out, _) = run(c);
    assert_eq!(code, 1, "{out}");
    mentions(
        &out,
        &[
            "UNAVAILABLE far-away: no mirror for the `nowhere` archive\n  (hint: set BPFCOMPAT_MIRROR_NOWHERE",
            "exit 1: 1 required cell has no verdict: 1 on kernels that could not be had (--allow-unavailable runs without them)",
        ],
    );
    // Allowed, the same run passes but still says why.
    let mut c = test_with(&obj, &m, &["--allow-unavailable"]);
    c.env("BPFCOMPAT_CACHE", &cache);
    let (code, out, _) = run(c);
    assert_eq!(code, 0, "{out}");
    mentions(&out, &["BPFCOMPAT_MIRROR_NOWHERE"]);
}

#[test]
fn without_a_terminal_progress_is_status_lines_on_stderr() {
    // A CI log: each kernel's steps are lines, not an invisible bar.
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = orphan_matrix(dir.path());
    let mut c = test_with(&obj, &m, &["--allow-unavailable"]);
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"));
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{err}");
    mentions(&err, &["    Checking far-away kernel cache"]);
    assert!(
        err.lines()
            .any(|l| l.starts_with("    Finished far-away: unavailable:") && l.ends_with(" s")),
        "{err}"
    );
}

#[test]
fn unreachable_mirror_is_a_clear_download_error() {
    let dir = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let m = orphan_matrix(dir.path());
    let mut c = test_with(&obj, &m, &[]);
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    c.env("BPFCOMPAT_CACHE", dir.path().join("cache"))
        .env("BPFCOMPAT_MIRROR_NOWHERE", "http://127.0.0.1:9");
    let (code, out, _) = run(c);
    assert_eq!(code, 1, "{out}");
    mentions(
        &out,
        &["cannot download http://127.0.0.1:9/pool/k.deb", "hint:"],
    );
}

#[test]
fn kernels_list_shows_every_profile_and_its_state() {
    let dir = tempfile::tempdir().unwrap();
    // In a pipe (no terminal, no COLUMNS) a row is one line, for scripts.
    let mut c = bpfcompat(&["kernels", "list"]);
    c.env("BPFCOMPAT_CACHE", dir.path()).env_remove("COLUMNS");
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    for k in [
        "ubuntu-16.04-4.15",
        "ubuntu-20.04-5.4",
        "ubuntu-22.04-5.15",
        "ubuntu-24.04-6.8",
        "debian-11-5.10",
        "debian-12-6.1",
        "debian-13-6.12",
        "debian-sid",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("{k} missing:\n{out}"));
        mentions(line, &["linux-"]);
    }
    assert!(
        out.lines()
            .find(|l| l.starts_with("ubuntu-20.04-5.4"))
            .unwrap()
            .contains("unavailable: set BPFCOMPAT_MIRROR_UBUNTU"),
        "{out}"
    );
    // Aligned: every row's package and state start where the header's do.
    let header = out.lines().next().unwrap();
    for column in ["PACKAGE", "STATE"] {
        let at = header.find(column).unwrap();
        for line in out.lines().skip(1) {
            assert!(
                line[..at].ends_with("  ") && !line[at..].starts_with(' '),
                "{column} not aligned:\n{out}"
            );
        }
    }
    assert!(
        out.lines().all(|l| !l.ends_with(' ')),
        "trailing blanks:\n{out}"
    );
}

#[test]
fn verbose_shows_the_engines_decisions_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bpfcompat(&["-v", "kernels", "list", "--kernel", "ubuntu-20.04-5.4"]);
    c.env("BPFCOMPAT_CACHE", dir.path())
        .env("BPFCOMPAT_MIRROR_UBUNTU", "http://mirror.invalid/ubuntu");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    mentions(
        &err,
        &[
            "DEBUG",
            "mirror of the `ubuntu` archive: http://mirror.invalid/ubuntu",
        ],
    );
    assert!(
        !out.contains("DEBUG"),
        "diagnostics stay off stdout:\n{out}"
    );
    let (_, _, quiet) = run(bpfcompat(&["kernels", "list"]));
    assert!(!quiet.contains("DEBUG"), "{quiet}");
}

#[test]
fn color_follows_the_flag_and_cargo_term_color() {
    // A kernel without a mirror gives an `unavailable` cell without a guest.
    let cache = tempfile::tempdir().unwrap();
    let obj = tiny_bpf_object();
    let styled = |color: Option<&str>, env: Option<&str>| {
        let mut c = bpfcompat(&["test", "--object", &obj, "--kernel", "ubuntu-20.04-5.4"]);
        c.env("BPFCOMPAT_CACHE", cache.path())
            .env_remove("CARGO_TERM_COLOR");
        if let Some(when) = color {
            c.args(["--color", when]);
        }
        if let Some(when) = env {
            c.env("CARGO_TERM_COLOR", when);
        }
        let (_, out, _) = run(c);
        mentions(&out, &["minimal.bpf.o"]);
        (out.contains("\u{1b}["), out)
    };
    let (painted, always) = styled(Some("always"), None);
    assert!(painted, "--color always paints the cell:\n{always}");
    let (painted, never) = styled(Some("never"), Some("always"));
    assert!(
        !painted,
        "--color never wins over CARGO_TERM_COLOR:\n{never}"
    );
    assert!(styled(None, Some("always")).0, "CARGO_TERM_COLOR=always");
    assert!(!styled(None, None).0, "auto: not a terminal, no colour");
    // The same table, with or without colour.
    let strip = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('\u{1b}') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            rest = &rest[rest.find('m').map_or(rest.len(), |m| m + 1)..];
        }
        out + rest
    };
    assert_eq!(strip(&always), never);
    // Usage errors follow it too.
    let (_, _, err) = run(bpfcompat(&[
        "--color",
        "always",
        "test",
        "--partition",
        "3/2",
    ]));
    assert!(err.contains('\u{1b}'), "{err}");
}

#[test]
fn help_teaches() {
    // The whole text is the contract: a snapshot shows every change in review
    // (`cargo insta review` after an intended one).
    for (name, args) in [
        ("help", &["--help"][..]),
        ("test_help", &["test", "--help"][..]),
        ("check_help", &["check", "--help"][..]),
        ("kernels_help", &["kernels", "--help"][..]),
        ("report_help", &["report", "--help"][..]),
    ] {
        let (code, out, _) = run(bpfcompat(args));
        assert_eq!(code, 0, "{args:?}");
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn usage_errors_read_well() {
    for (name, args) in [
        ("usage_unknown_flag", &["test", "--bogus"][..]),
        ("usage_bad_shard", &["test", "--shard", "3/2"][..]),
        ("usage_bad_mode", &["test", "--mode", "sideways"][..]),
        ("usage_no_command", &[][..]),
    ] {
        let (code, _, err) = run(bpfcompat(args));
        assert_eq!(code, 1, "{args:?}");
        insta::assert_snapshot!(name, err);
    }
}

#[test]
fn a_device_or_fifo_given_as_a_report_or_baseline_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let fifo = fifo.to_str().unwrap().to_string();
    for args in [
        vec!["report", "merge", "/dev/zero"],
        vec!["report", "diff", fifo.as_str(), "/dev/zero"],
        vec!["test", "--object", "x.bpf.o", "--baseline", fifo.as_str()],
    ] {
        let mut c = bpfcompat(&args);
        c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{args:?}: {err}");
        mentions(&err, &["not a regular file"]);
    }
}

#[test]
fn zero_limits_and_sizes_are_usage_errors() {
    for (flag, value) in [
        ("--timeout", "0"),
        ("--object-timeout", "0s"),
        ("--command-timeout", "0"),
        ("--memory", "0"),
        ("--cpus", "0"),
        ("--jobs", "0"),
    ] {
        let mut c = bpfcompat(&["test", "--object", "x.bpf.o", flag, value]);
        c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{flag} {value}: {err}");
        mentions(&err, &[&format!("invalid value '{value}' for '{flag}")]);
    }
}

#[test]
fn readiness_flags_are_checked_before_any_guest() {
    for (args, says) in [
        (
            &["--ready-line", "(unclosed"][..],
            "invalid value '(unclosed' for '--ready-line <REGEX>': not a regular expression",
        ),
        (&["--ready-after", "0"][..], "must be more than 0"),
        (&["--grace", "0s"][..], "must be more than 0"),
        (
            &["--ready-line", "x", "--ready-after", "2s"][..],
            "cannot be used with",
        ),
        (&["--mode", "fire"][..], "needs a readiness criterion"),
    ] {
        let mut c = bpfcompat(&["test", "--loader", "/bin/true"]);
        c.args(args).env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
        let (code, _, err) = run(c);
        assert_eq!(code, 1, "{args:?}: {err}");
        mentions(&err, &[says]);
    }
}

#[test]
fn readiness_from_the_configuration_is_checked_before_any_guest() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bpfcompat.toml");
    std::fs::write(&config, "[objects.true]\nready_line = \"(unclosed\"\n").unwrap();
    let mut c = bpfcompat(&["test", "--loader", "/bin/true", "--config-file"]);
    c.arg(&config).env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(
        &err,
        &["[objects.\"true\"] ready_line: not a regular expression"],
    );
}

#[test]
fn an_empty_slice_says_so_and_exits_zero_with_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("slice.json");
    let mut c = bpfcompat(&[
        "test",
        "--object",
        &tiny_bpf_object(),
        "--kernel",
        "debian-12-6.1",
    ]);
    c.args(["--partition", "count:2/2", "--json"]).arg(&json);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{err}");
    mentions(&err, &["slice count:2/2 has no kernels", "nothing to run"]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["scope"]["partition"], "count:2/2");
    assert_eq!(
        report["scope"]["run_kernels"],
        serde_json::json!(["debian-12-6.1"])
    );
    assert_eq!(report["kernels"], serde_json::json!([]));
}

#[test]
fn the_catalogue_lists_every_profile_with_its_pinned_package() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bpfcompat(&["kernels", "list", "--matrix", "all"]);
    c.env("BPFCOMPAT_CACHE", dir.path()).env_remove("COLUMNS");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows.len() >= 40, "{out}");
    for row in rows {
        assert!(row.contains(" linux-"), "unpinned: {row}");
    }
    mentions(&out, &["ubuntu-24.04-6.8-aws", "debian-12-6.12-backports"]);
    // On a terminal of 80 columns the table fits it, each kernel's name
    // whole on its row.
    let mut c = bpfcompat(&["kernels", "list", "--matrix", "all"]);
    c.env("BPFCOMPAT_CACHE", dir.path()).env("COLUMNS", "80");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    mentions(
        &out,
        &["\nubuntu-24.04-6.8-aws ", "\ndebian-12-6.12-backports "],
    );
    // A width no table can fit (COLUMNS=0) leaves rows unwrapped.
    let mut c = bpfcompat(&["kernels", "list", "--matrix", "all"]);
    c.env("BPFCOMPAT_CACHE", dir.path()).env("COLUMNS", "0");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().skip(1).all(|row| row.contains(" linux-")),
        "{out}"
    );
}

#[test]
fn prune_removes_kernels_no_matrix_pins_and_machines_that_boot_them() {
    let cache = tempfile::tempdir().unwrap();
    let kernels = cache.path().join("kernels");
    let snapshots = cache.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let entry = |key: &str, package: &str| {
        let dir = kernels.join(key);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("meta.json"),
            format!(r#"{{"package":"{package}","version":"1","release":"r","vmlinuz_sha256":"","has_config":false}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("vmlinuz"), vec![0u8; 2_000_000]).unwrap();
    };
    // The matrix below pins this package.
    let pinned = "1".repeat(64);
    let stale = "2".repeat(64);
    entry(&pinned, "linux-kept");
    entry(&stale, "linux-gone");
    let machine = |key: &str, owner: &str| {
        std::fs::write(snapshots.join(format!("{key}.owner")), owner).unwrap();
        std::fs::write(snapshots.join(format!("{key}.state")), vec![0u8; 3_000_000]).unwrap();
    };
    machine(&"a".repeat(64), &format!("k1 Tcg agent {pinned}"));
    machine(&"b".repeat(64), &format!("k2 Tcg agent {stale}"));
    machine(&"c".repeat(64), "k1 Tcg");
    // An orphan lock of a machine removed by an earlier release, and the
    // locks of what prune removes and keeps.
    let lock = |dir: &std::path::Path, key: String| {
        let path = dir.join(format!("{key}.lock"));
        std::fs::write(&path, b"").unwrap();
        path
    };
    let orphan = lock(&snapshots, "d".repeat(64));
    let kept_lock = lock(&snapshots, "a".repeat(64));
    let removed_lock = lock(&kernels, stale.clone());
    let dir = tempfile::tempdir().unwrap();
    let matrix = matrix(
        dir.path(),
        "[[kernel]]\nname = \"k1\"\nsources = [\"debian:bookworm\"]\npackage = \"linux-kept\"\n",
    );
    write(
        dir.path(),
        "m.lock",
        &format!(
            "[[kernel]]\nname = \"k1\"\narchive = \"debian\"\nsuite = \"bookworm\"\npackage = \"linux-kept\"\nversion = \"1\"\nfilename = \"pool/l.deb\"\nsize = 1\nsha256 = \"{pinned}\"\n"
        ),
    );
    let prune = |more: &[&str]| {
        let mut c = bpfcompat(&["kernels", "prune", "--keep", &matrix]);
        c.args(more).env("BPFCOMPAT_CACHE", cache.path());
        run(c)
    };
    let (code, out, err) = prune(&["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    mentions(
        &out,
        &[
            "Would remove kernel linux-gone 1 (222222222222, 2 MB)",
            "Would remove the saved machine of k2 (agent tcg, 3 MB)",
            "Would remove the saved machine of k1 (agent tcg, 3 MB)",
            "would free 8 MB",
        ],
    );
    assert!(kernels.join(&stale).exists());
    // A kernel a live run uses (a shared lock on `<key>.use`) stays.
    let in_use = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(kernels.join(format!("{stale}.use")))
        .unwrap();
    in_use.lock_shared().unwrap();
    let (code, out, err) = prune(&[]);
    assert_eq!(code, 0, "{err}");
    mentions(
        &out,
        &["Kept kernel linux-gone 1 (222222222222): a running bpfcompat uses it"],
    );
    assert!(kernels.join(&stale).exists());
    drop(in_use);
    let (code, out, err) = prune(&[]);
    assert_eq!(code, 0, "{err}");
    mentions(&out, &["Removed kernel linux-gone", "freed 2 MB"]);
    assert!(!kernels.join(&stale).exists());
    assert!(kernels.join(&pinned).exists());
    assert!(snapshots.join(format!("{}.state", "a".repeat(64))).exists());
    assert!(!snapshots.join(format!("{}.state", "b".repeat(64))).exists());
    assert!(!snapshots.join(format!("{}.owner", "c".repeat(64))).exists());
    assert!(!orphan.exists() && !removed_lock.exists());
    assert!(kept_lock.exists());
    // Nothing left to prune.
    let (_, out, _) = prune(&[]);
    assert_eq!(out.trim(), "freed 0 MB");
}

#[test]
fn a_reader_that_went_away_ends_the_output_quietly() {
    // `kernels list | head -1`: the reader closes before the table is out.
    // Each command's exit code stands, with no panic on stderr.
    for args in [&["kernels", "list", "--matrix", "all"][..], &["--help"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = bpfcompat(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn cargos_flags_reach_the_build_and_metadata_and_its_config_is_not_ours() {
    // A cargo that notes what it was asked: metadata is answered by the
    // real cargo (no dependencies are read), the build fails at once.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("asked");
    let fake = dir.path().join("cargo");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncase \"$1\" in metadata) exec cargo \"$@\";; esac\nexit 101\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/Cargo.toml");
    let mut c = bpfcompat(&[
        "test",
        "--manifest-path",
        manifest,
        "--locked",
        "--offline",
        "--frozen",
        "--profile",
        "ci",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--all-targets",
        "--config",
        "build.jobs=1",
    ]);
    c.env("CARGO", &fake)
        .env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "the build failed: {err}");
    let asked = std::fs::read_to_string(&log).unwrap();
    let metadata = asked.lines().find(|l| l.starts_with("metadata")).unwrap();
    mentions(
        metadata,
        &["--locked", "--offline", "--frozen", "--config build.jobs=1"],
    );
    let build = asked.lines().find(|l| l.starts_with("build")).unwrap();
    mentions(
        build,
        &[
            "--profile ci",
            "--target x86_64-unknown-linux-gnu",
            "--all-targets",
            "--locked",
            "--offline",
            "--frozen",
            "--config build.jobs=1",
        ],
    );

    // `--config` was bpfcompat's file once: a bpfcompat configuration given
    // to it is refused with the flag that takes it, before anything runs.
    let ours = dir.path().join("bpfcompat.toml");
    std::fs::write(&ours, "kernels = [\"debian-12-6.1\"]\n").unwrap();
    let mut c = bpfcompat(&["test", "--object", &tiny_bpf_object(), "--config"]);
    c.arg(&ours).env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["`--config` is cargo's", "--config-file"]);
}

#[test]
fn a_filter_that_selects_no_object_lists_the_objects_there_are() {
    let obj = tiny_bpf_object();
    let mut c = bpfcompat(&["test", "nothing-like-it", "--object", &obj]);
    c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(
        &err,
        &[
            "no object's name contains `nothing-like-it`",
            "the objects are minimal.bpf.o",
        ],
    );
    let mut c = bpfcompat(&["test", "min", "--loader", "/bin/true"]);
    c.env("BPFCOMPAT_QEMU", "/nonexistent/qemu");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    mentions(&err, &["FILTER `min` selects objects by name"]);
}

#[test]
fn error_note_and_status_labels_are_coloured_as_asked() {
    let red_error = "\u{1b}[1m\u{1b}[31merror:\u{1b}[0m cannot read /nonexistent";
    for (args, env, coloured) in [
        (vec!["--color", "always"], None, true),
        (
            vec!["--color", "never"],
            Some(("CLICOLOR_FORCE", "1")),
            false,
        ),
        (vec![], Some(("CLICOLOR_FORCE", "1")), true),
        (vec![], None, false),
    ] {
        let mut c = bpfcompat(&["test", "--object", "/nonexistent"]);
        c.args(&args)
            .env_remove("CLICOLOR_FORCE")
            .env_remove("NO_COLOR");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let (code, _, err) = run(c);
        assert_eq!(code, 1);
        assert_eq!(
            err.contains(red_error),
            coloured,
            "{args:?} {env:?}: {err:?}"
        );
        assert_eq!(
            err.contains('\u{1b}'),
            coloured,
            "{args:?} {env:?}: {err:?}"
        );
    }
}
