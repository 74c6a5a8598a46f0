//! The shipped GitHub workflow and composite action stay valid: they parse,
//! shard consistently, merge and gate, and name no archive host.

use bpfcompat_e2e::mentions;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&full).unwrap();
    assert!(
        !text.contains("debian.org") && !text.contains("ubuntu.com"),
        "{path} must not name an archive host: mirrors come from BPFCOMPAT_MIRROR_*"
    );
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn steps_text(job: &Yaml) -> String {
    job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["uses"].as_str().unwrap_or(""),
                s["run"].as_str().unwrap_or(""),
                s["with"]["args"].as_str().unwrap_or(""),
                s["with"]["command"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn workflow_partitions_merges_and_gates_without_hiding_failures() {
    let wf = load(".github/workflows/bpfcompat.yml");
    let kernels = &wf["jobs"]["kernels"];
    let slices: Vec<i64> = kernels["strategy"]["matrix"]["slice"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(slices, [1, 2, 3]);
    let steps = steps_text(kernels);
    let partition = format!("--partition count:${{{{ matrix.slice }}}}/{}", slices.len());
    mentions(&steps, &[partition.as_str(), "--json slice-"]);
    assert_eq!(
        kernels["needs"].as_str(),
        Some("fetch"),
        "slices restore one warm cache"
    );
    mentions(&steps_text(&wf["jobs"]["fetch"]), &["kernels fetch"]);
    let gate = &wf["jobs"]["gate"];
    assert_eq!(gate["needs"].as_str(), Some("kernels"));
    let steps = steps_text(gate);
    mentions(
        &steps,
        &[
            "cargo bpfcompat report merge slices/*.json",
            "--junit",
            "--html",
        ],
    );
    assert!(
        !steps.contains("--allow-partial"),
        "the gate must refuse a missing slice"
    );
    assert_eq!(wf["permissions"]["contents"].as_str(), Some("read"));
    for (name, job) in wf["jobs"].as_hash().unwrap() {
        let name = name.as_str().unwrap();
        assert!(
            job["timeout-minutes"].as_i64().is_some(),
            "{name}: timeout-minutes"
        );
        assert!(
            !format!("{job:?}").contains("continue-on-error"),
            "{name}: a failing slice must not look green"
        );
    }
    for var in ["BPFCOMPAT_MIRROR_DEBIAN", "BPFCOMPAT_MIRROR_UBUNTU"] {
        assert!(
            wf["env"][var].as_str().is_some_and(|v| v.contains("vars.")),
            "{var} comes from a repository variable"
        );
    }
}

#[test]
fn composite_action_enables_kvm_caches_and_passes_inputs_through_env() {
    let action = load("action.yml");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    for input in ["args", "working-directory", "command"] {
        assert!(action["inputs"][input].as_hash().is_some(), "{input}");
    }
    let steps = steps_text(&action["runs"]);
    mentions(
        &steps,
        &[
            "99-bpfcompat-kvm.rules",
            "udevadm trigger --name-match=kvm",
            "scripts/setup\" --runtime",
            "cargo install --locked --path",
            "actions/cache@v4",
            "cargo bpfcompat $COMMAND $ARGS",
        ],
    );
    let all = action["runs"]["steps"].as_vec().unwrap();
    let caches: Vec<&str> = all
        .iter()
        .filter_map(|s| s["with"]["path"].as_str())
        .collect();
    mentions(
        &caches.join("\n"),
        &["~/.cache/bpfcompat", "cargo-bpfcompat"],
    );
    for step in all {
        if let Some(script) = step["run"].as_str() {
            assert_eq!(
                step["shell"].as_str(),
                Some("bash"),
                "composite run steps need a shell"
            );
            assert!(
                !script.contains("${{"),
                "inputs reach scripts through env, never spliced in: {script}"
            );
        }
    }
}

#[test]
fn the_demo_installs_what_bpfcompat_needs_and_nothing_the_tests_use() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let packages = |args: &[&str]| {
        let out = std::process::Command::new(root.join("scripts/setup"))
            .args(args)
            .arg("--print")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let runtime = packages(&["--runtime"]);
    mentions(&runtime, &["qemu-system-x86", "clang"]);
    for test_only in ["chromium", "rpm", "createrepo-c", "busybox-static"] {
        assert!(!runtime.lines().any(|p| p == test_only), "{test_only}");
        assert!(packages(&[]).lines().any(|p| p == test_only), "{test_only}");
    }
    let demo = std::fs::read_to_string(root.join("scripts/demo")).unwrap();
    assert!(
        demo.lines().any(|l| l.trim() == "scripts/setup --runtime"),
        "the demo sets up the runtime only"
    );
}

/// Runs a composite step's script as GitHub runs it (`bash -eo pipefail`),
/// with `env`; its exit code and what it wrote to `$GITHUB_OUTPUT`.
fn run_step(step: &Yaml, env: &[(&str, &std::ffi::OsStr)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("github-output");
    std::fs::write(&output, "").unwrap();
    let mut c = std::process::Command::new("bash");
    c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(step["run"].as_str().unwrap())
        .env("GITHUB_OUTPUT", &output);
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c.status().unwrap();
    (status.code(), std::fs::read_to_string(&output).unwrap())
}

fn step<'a>(action: &'a Yaml, id: &str) -> &'a Yaml {
    action["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no step `{id}`"))
}

#[test]
fn the_action_keys_its_build_by_source_and_says_the_exit_code() {
    let action = load("action.yml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The tool's cache key is its source's digest, the same for the same
    // source (a moved tag or a new commit builds again).
    let key = |path: &Path| {
        let (code, out) = run_step(
            step(&action, "source"),
            &[("ACTION_PATH", path.as_os_str())],
        );
        assert_eq!(code, Some(0), "{out}");
        out.trim().strip_prefix("digest=").unwrap().to_string()
    };
    let k = key(&root);
    assert_eq!(k.len(), 16);
    assert!(k.chars().all(|c| c.is_ascii_hexdigit()), "{k}");
    assert_eq!(key(&root), k);
    let tool = &action["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some("tool"))
        .unwrap()["with"]["key"];
    assert!(
        tool.as_str()
            .unwrap()
            .contains("steps.source.outputs.digest")
    );

    // The run step passes the inputs as words, keeps cargo-bpfcompat's exit
    // code as the step's and writes it as the action's output.
    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let cargo = bin.path().join("cargo");
    std::fs::write(
        &cargo,
        format!("#!/bin/sh\necho \"$@\" > {}\nexit 2\n", asked.display()),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, out) = run_step(
        step(&action, "run"),
        &[
            ("PATH", path.as_ref()),
            ("COMMAND", "test".as_ref()),
            ("ARGS", "--json r.json --kernel *".as_ref()),
        ],
    );
    assert_eq!(code, Some(2));
    assert_eq!(out.trim(), "exit-code=2");
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        "bpfcompat test --json r.json --kernel *",
        "words, no glob expanded"
    );
    assert!(
        action["outputs"]["exit-code"]["value"]
            .as_str()
            .unwrap()
            .contains("steps.run.outputs.exit-code")
    );
}
