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
