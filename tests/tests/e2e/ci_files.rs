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
                "{} {} {}",
                s["uses"].as_str().unwrap_or(""),
                s["run"].as_str().unwrap_or(""),
                s["with"]["args"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn workflow_shards_merges_and_gates() {
    let wf = load(".github/workflows/bpfcompat.yml");
    let kernels = &wf["jobs"]["kernels"];
    let shards: Vec<i64> = kernels["strategy"]["matrix"]["shard"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(shards, [1, 2, 3]);
    let steps = steps_text(kernels);
    assert!(
        steps.contains(&format!("--shard ${{{{ matrix.shard }}}}/{}", shards.len())),
        "{steps}"
    );
    mentions(&steps, &["--json shard-"]);
    let gate = &wf["jobs"]["gate"];
    assert_eq!(gate["needs"].as_str(), Some("kernels"));
    let steps = steps_text(gate);
    mentions(&steps, &["cargo bpfcompat report merge shards/*.json"]);
    mentions(&steps, &["--junit", "--html"]);
    for var in ["BPFCOMPAT_MIRROR_DEBIAN", "BPFCOMPAT_MIRROR_UBUNTU"] {
        assert!(
            wf["env"][var].as_str().is_some_and(|v| v.contains("vars.")),
            "{var} comes from a repository variable"
        );
    }
}

#[test]
fn composite_action_installs_and_runs_the_cli() {
    let action = load("action.yml");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    assert!(action["inputs"]["args"].as_hash().is_some());
    assert!(action["inputs"]["working-directory"].as_hash().is_some());
    let steps = steps_text(&action["runs"]);
    mentions(&steps, &["scripts/setup\" --runtime"]);
    mentions(&steps, &["cargo install --locked --path"]);
    mentions(&steps, &["cargo bpfcompat test ${{ inputs.args }}"]);
    for step in action["runs"]["steps"].as_vec().unwrap() {
        assert_eq!(
            step["shell"].as_str(),
            Some("bash"),
            "composite run steps need a shell"
        );
    }
}
