//! Warm guests: a kernel's machine saved once and restored for every later
//! guest gives the cells a cold boot gives; a damaged saved machine is
//! found before use and saved again.

use std::path::{Path, PathBuf};

use bpfcompat_e2e::{default_kernels, test_on, with_report};
use serde_json::Value;

/// Every fixture, as `scripts/demo` validates them.
fn demo_fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".bpf.c")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// What a cell says, every field a verdict is made of.
fn verdicts(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let keep: serde_json::Map<String, Value> = c
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| {
                    [
                        "object", "kernel", "status", "stage", "code", "program", "message",
                    ]
                    .contains(&k.as_str())
                        || k.as_str() == "errno"
                        || k.as_str() == "programs"
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut keep = Value::Object(keep);
            // The verifier's figures must agree too, except how long it took.
            for p in keep["programs"].as_array_mut().into_iter().flatten() {
                if let Some(c) = p.get_mut("complexity").and_then(Value::as_object_mut) {
                    c.remove("verification_time_us");
                }
            }
            keep.to_string()
        })
        .collect();
    v.sort();
    v
}

/// A cache of its own for saved machines, sharing the kernels already
/// fetched (its `kernels` is a link to theirs).
fn private_cache(dir: &Path) -> PathBuf {
    let shared = bpfcompat_engine::kernel::Cache::discover()
        .unwrap()
        .root()
        .join("kernels");
    std::fs::create_dir_all(&shared).unwrap();
    let root = dir.join("cache");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&shared, root.join("kernels")).unwrap();
    root
}

#[test]
fn warm_guests_give_the_cells_cold_guests_give_and_a_damaged_machine_is_saved_again() {
    let kernels = default_kernels();
    let kernels: Vec<&str> = kernels.iter().map(String::as_str).collect();
    let fixtures = demo_fixtures();
    let fixtures: Vec<&str> = fixtures.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let run = |extra: &[&str]| {
        let mut c = test_on(&kernels, &fixtures);
        c.args(extra).env("BPFCOMPAT_CACHE", &cache);
        let (out, report) = with_report(c);
        assert!(matches!(out.status.code(), Some(0 | 2)), "{report:#}");
        (String::from_utf8_lossy(&out.stderr).into_owned(), report)
    };
    let restored = |report: &Value| -> Vec<bool> {
        report["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["restored"].as_bool().unwrap())
            .collect()
    };

    let (_, cold) = run(&["--cold"]);
    assert!(restored(&cold).iter().all(|r| !r));
    let cells = verdicts(&cold);
    assert_eq!(cells.len(), kernels.len() * fixtures.len());

    // The first warm run saves each kernel's machine, then restores it.
    let (err, first) = run(&[]);
    assert!(restored(&first).iter().all(|r| *r), "{err}");
    assert_eq!(err.matches("Saving").count(), kernels.len(), "{err}");
    same_cells(&verdicts(&first), &cells);

    // A saved machine damaged on disk is found and saved again; every
    // other kernel only restores (nothing else is saved a second time).
    let snapshots = cache.join("snapshots");
    let state = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "state"))
        .unwrap();
    let mut bytes = std::fs::read(&state).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&state, bytes).unwrap();
    let (err, second) = run(&[]);
    assert_eq!(err.matches("Saving").count(), 1, "{err}");
    assert!(restored(&second).iter().all(|r| *r), "{err}");
    same_cells(&verdicts(&second), &cells);
}

/// Fails naming only the cells that differ (a whole matrix hides them).
fn same_cells(warm: &[String], cold: &[String]) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|c| !b.contains(c)).cloned().collect()
    };
    let (warm_only, cold_only) = (only(warm, cold), only(cold, warm));
    assert!(
        warm_only.is_empty() && cold_only.is_empty(),
        "warm guests said:\n{}\ncold guests said:\n{}",
        warm_only.join("\n"),
        cold_only.join("\n")
    );
}

/// The `.state` files of a cache's saved machines, with their mtimes.
fn saved_states(cache: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(cache.join("snapshots"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn command_mode_restores_warm_guests_and_keeps_their_machines() {
    let kernels = ["debian-11-5.10", "debian-12-6.1"];
    let dir = tempfile::tempdir().unwrap();
    let cache = private_cache(dir.path());
    let loader = bpfcompat_e2e::workspace_bin("lo-echo");
    let run = || {
        let mut c = bpfcompat_e2e::cli(&["test", "--loader"]);
        c.arg(&loader).env("BPFCOMPAT_CACHE", &cache);
        bpfcompat_e2e::Args::kernels(&mut c, &kernels);
        let (out, report) = with_report(c);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}\n{report:#}");
        (err, report)
    };
    // The priming run saves each kernel's machine and restores it at once:
    // a command's job (the loader and its libraries) is one a saved agent
    // takes.
    let (err, first) = run();
    assert!(!err.contains("Cold"), "{err}");
    assert_eq!(err.matches("Saving").count(), kernels.len(), "{err}");
    let saved = saved_states(&cache);
    assert_eq!(saved.len(), kernels.len(), "{err}");
    for k in first["kernels"].as_array().unwrap() {
        assert_eq!(k["restored"], true, "{k:#}");
    }
    // Later runs only restore, and leave the machines as they were.
    let (err, second) = run();
    assert!(!err.contains("Cold") && !err.contains("Saving"), "{err}");
    for k in second["kernels"].as_array().unwrap() {
        assert_eq!(k["restored"], true, "{k:#}");
    }
    assert_eq!(saved_states(&cache), saved);

    // `kernels list` names the machines that exist.
    let out =
        bpfcompat_e2e::run(bpfcompat_e2e::cli(&["kernels", "list"]).env("BPFCOMPAT_CACHE", &cache));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.matches("saved machine").count(),
        kernels.len(),
        "{listed}"
    );

    // One kernel's machine copied under the other's key (and the reverse):
    // each restore says a release that is not its profile's, so the machine
    // goes and the kernel boots cold; the verdicts are each kernel's own.
    let key_of = |profile: &str| -> String {
        let dir = cache.join("snapshots");
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.extension().is_some_and(|e| e == "owner")
                    && std::fs::read_to_string(p).unwrap().starts_with(profile)
            })
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .unwrap()
    };
    let (a, b) = (key_of(kernels[0]), key_of(kernels[1]));
    let snapshots = cache.join("snapshots");
    for ext in ["state", "blake3"] {
        let (pa, pb) = (
            snapshots.join(format!("{a}.{ext}")),
            snapshots.join(format!("{b}.{ext}")),
        );
        let tmp = snapshots.join("swap");
        std::fs::rename(&pa, &tmp).unwrap();
        std::fs::rename(&pb, &pa).unwrap();
        std::fs::rename(&tmp, &pb).unwrap();
    }
    let (err, swapped) = run();
    assert_eq!(
        err.matches("the saved machine runs kernel").count(),
        2,
        "{err}"
    );
    for k in kernels {
        bpfcompat_e2e::assert_release_of(bpfcompat_e2e::cell(&swapped, "lo-echo", k), k);
    }
}
