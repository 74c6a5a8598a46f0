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
    // The gate merges with the released tool, every slice by name, against
    // the default branch's last merged report, and writes every report.
    mentions(
        &steps,
        &[
            "report merge",
            "slices/slice-1.json slices/slice-2.json slices/slice-3.json",
            "--baseline baseline/bpfcompat.json",
        ],
    );
    assert!(!steps.contains("cargo install"), "the gate builds nothing");
    let merge = gate["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["with"]["command"].as_str() == Some("report merge"))
        .unwrap();
    assert_eq!(merge["uses"].as_str(), Some("./"));
    assert!(merge["with"]["reports"].as_str().is_some());
    assert!(merge["with"]["upload-reports"].as_str().is_some());
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
            &[
                ("ACTION_PATH", path.as_os_str()),
                ("INSTALL", "auto".as_ref()),
            ],
        );
        assert_eq!(code, Some(0), "{out}");
        let digest = output(&out, "digest").unwrap();
        assert_eq!(output(&out, "key"), Some(format!("source-{digest}")));
        digest
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
    assert!(tool.as_str().unwrap().contains("steps.source.outputs.key"));

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
    // With `reports`, `test` writes every report there and says where.
    let work = tempfile::tempdir().unwrap();
    let reports_step = |command: &str| {
        run_step(
            step(&action, "run"),
            &[
                ("PATH", path.as_ref()),
                ("COMMAND", command.as_ref()),
                ("ARGS", "".as_ref()),
                ("REPORTS", work.path().join("out").as_os_str()),
            ],
        )
    };
    let (code, out) = reports_step("test");
    assert_eq!(code, Some(2));
    let dir = work.path().join("out");
    assert_eq!(
        output(&out, "json"),
        Some(dir.join("bpfcompat.json").display().to_string())
    );
    let asked = std::fs::read_to_string(&asked).unwrap();
    for flag in ["--json", "--markdown", "--junit", "--html"] {
        assert!(asked.contains(flag), "{asked}");
    }
    for name in ["json", "markdown", "junit", "html"] {
        assert!(
            action["outputs"][name]["value"].as_str().is_some(),
            "{name}"
        );
    }
    // `kernels fetch` writes no report: refused rather than ignored.
    let (code, _) = reports_step("kernels fetch");
    assert_eq!(code, Some(1));

    assert!(
        action["outputs"]["exit-code"]["value"]
            .as_str()
            .unwrap()
            .contains("steps.run.outputs.exit-code")
    );
}

/// One `name=value` line of what a step wrote to `$GITHUB_OUTPUT`.
fn output(written: &str, name: &str) -> Option<String> {
    written
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

/// The workspace's version, as the release archives are named.
fn version() -> String {
    let out = std::process::Command::new(bpfcompat_e2e::workspace_bin("cargo-bpfcompat"))
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .strip_prefix("cargo-bpfcompat ")
        .unwrap()
        .to_string()
}

#[test]
fn the_action_downloads_its_own_release_only_at_its_release_tag() {
    let action = load("action.yml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let v = version();
    let choose = |reference: &str, install: &str| {
        run_step(
            step(&action, "source"),
            &[
                ("ACTION_PATH", root.as_os_str()),
                ("ACTION_REF", reference.as_ref()),
                ("ACTION_REPOSITORY", "o/bpfcompat".as_ref()),
                ("GITHUB_SERVER_URL", "http://127.0.0.1:9".as_ref()),
                ("INSTALL", install.as_ref()),
            ],
        )
    };
    let tag = format!("v{v}");
    let (code, out) = choose(&tag, "auto");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        output(&out, "download"),
        Some(format!(
            "http://127.0.0.1:9/o/bpfcompat/releases/download/{tag}"
        ))
    );
    assert_eq!(output(&out, "key"), Some(format!("release-{v}")));
    assert_eq!(output(&out, "version"), Some(v.clone()));
    // A branch, another version's tag, or `install: build`: the source.
    for (reference, install) in [("main", "auto"), ("v0.0.0-other", "auto"), (&tag, "build")] {
        let (code, out) = choose(reference, install);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(output(&out, "download"), None, "{reference} {install}");
        assert!(output(&out, "key").unwrap().starts_with("source-"), "{out}");
    }
    let (code, _) = choose(&tag, "sometimes");
    assert_eq!(code, Some(1), "an unknown install mode is refused");
}

/// A release archive as scripts/dist lays it out, its binaries small
/// stand-ins (the install runs `cargo-bpfcompat --version`, which says
/// `says`), with a symbolic link named `link` if given: its name, bytes and
/// `.sha256` line.
fn release_archive(
    dir: &Path,
    version: &str,
    says: &str,
    link: Option<&str>,
) -> (String, Vec<u8>, Vec<u8>) {
    use std::os::unix::fs::PermissionsExt;
    let name = format!("cargo-bpfcompat-{version}-x86_64-unknown-linux-gnu");
    let stage = dir.join(&name);
    std::fs::create_dir_all(&stage).unwrap();
    for bin in ["cargo-bpfcompat", "bpfcompat-agent"] {
        let file = stage.join(bin);
        std::fs::write(&file, format!("#!/bin/sh\necho 'cargo-bpfcompat {says}'\n")).unwrap();
        std::fs::set_permissions(&file, PermissionsExt::from_mode(0o755)).unwrap();
    }
    if let Some(link) = link {
        std::os::unix::fs::symlink("/etc/passwd", stage.join(link)).unwrap();
    }
    let tgz = dir.join(format!("{name}.tar.gz"));
    let ok = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir)
        .arg(&name)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&tgz).unwrap();
    let sum = std::process::Command::new("sha256sum")
        .arg(&tgz)
        .output()
        .unwrap();
    let digest = String::from_utf8(sum.stdout).unwrap()[..64].to_string();
    let line = format!("{digest}  {name}.tar.gz\n").into_bytes();
    (name, bytes, line)
}

/// Serves one release's archive and digest under `/o/bpfcompat/releases/
/// download/vVERSION/`; the download URL.
fn serve_release(name: &str, archive: Vec<u8>, sum: Vec<u8>, version: &str) -> String {
    use bpfcompat_e2e::mirror::{Body, serve};
    let at = format!("/o/bpfcompat/releases/download/v{version}");
    let routes = [
        (format!("{at}/{name}.tar.gz"), Body::Bytes(archive)),
        (format!("{at}/{name}.tar.gz.sha256"), Body::Bytes(sum)),
    ]
    .into_iter()
    .collect();
    format!("{}{at}", serve(routes))
}

#[test]
fn the_action_installs_the_release_binary_and_builds_when_it_cannot_be_trusted() {
    let action = load("action.yml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let v = version();
    let work = tempfile::tempdir().unwrap();
    let (name, archive, sum) = release_archive(work.path(), &v, &v, None);
    // A `cargo` that only says it was asked to build.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let built = work.path().join("built");
    std::fs::write(
        bin.join("cargo"),
        format!("#!/bin/sh\necho \"$@\" > {}\n", built.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("cargo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let install = |download: &str| {
        let home = tempfile::tempdir().unwrap();
        let _ = std::fs::remove_file(&built);
        let (code, out) = run_step(
            step(&action, "install"),
            &[
                ("ACTION_PATH", root.as_os_str()),
                ("DOWNLOAD", download.as_ref()),
                ("VERSION", v.as_ref()),
                ("HOME", home.path().as_os_str()),
                ("PATH", path.as_ref()),
            ],
        );
        assert_eq!(code, Some(0), "{out}");
        let installed = home.path().join(".cargo/bin/cargo-bpfcompat").exists();
        (
            output(&out, "installed").unwrap(),
            installed,
            built.exists(),
        )
    };

    // The release: downloaded, checked, installed; nothing built.
    let url = serve_release(&name, archive.clone(), sum.clone(), &v);
    assert_eq!(install(&url), ("download".to_string(), true, false));

    // An archive whose digest is not the one published, a release without
    // the archive, and a digest file of another archive: built instead.
    let mut tampered = archive.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let bad = serve_release(&name, tampered, sum.clone(), &v);
    assert_eq!(install(&bad), ("build".to_string(), false, true));
    assert_eq!(
        install(&format!("{url}/nothing-here")),
        ("build".to_string(), false, true)
    );
    let other = serve_release(&name, archive, b"0000  other.tar.gz\n".to_vec(), &v);
    assert_eq!(install(&other), ("build".to_string(), false, true));
    // Not at a release tag: built, nothing downloaded.
    assert_eq!(install(""), ("build".to_string(), false, true));
}

#[test]
fn install_binary_refuses_archives_that_are_not_what_they_say() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-binary");
    let v = version();
    let run = |url: &str, version: &str| {
        let dest = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(&script)
            .args([url, version])
            .arg(dest.path())
            .output()
            .unwrap();
        let installed = dest.path().join("cargo-bpfcompat").exists();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            installed,
        )
    };
    // Sound: installed.
    let dir = tempfile::tempdir().unwrap();
    let (name, archive, sum) = release_archive(dir.path(), &v, &v, None);
    let (code, err, installed) = run(&serve_release(&name, archive, sum, &v), &v);
    assert_eq!((code, installed), (Some(0), true), "{err}");

    // A link in the archive (it could point anywhere once unpacked).
    let dir = tempfile::tempdir().unwrap();
    let (name, archive, sum) = release_archive(dir.path(), &v, &v, Some("passwd"));
    let (code, err, installed) = run(&serve_release(&name, archive, sum, &v), &v);
    assert_eq!((code, installed), (Some(1), false), "{err}");
    mentions(&err, &["link or special file"]);

    // An archive named for another version than its binary says.
    let dir = tempfile::tempdir().unwrap();
    let (name, archive, sum) = release_archive(dir.path(), "9.9.9", &v, None);
    let (code, err, installed) = run(&serve_release(&name, archive, sum, "9.9.9"), "9.9.9");
    assert_eq!((code, installed), (Some(1), false), "{err}");
    mentions(&err, &["not version 9.9.9"]);

    // A version that is no version, and bad use.
    let (code, err, _) = run("http://127.0.0.1:9", "1.0;rm");
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["not a version"]);
    let out = std::process::Command::new(&script).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn the_release_workflow_publishes_the_archive_every_installer_fetches() {
    let wf = load(".github/workflows/release.yml");
    let tags: Vec<&str> = wf["on"]["push"]["tags"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(tags, ["v*"]);
    let dist = &wf["jobs"]["dist"];
    let steps = steps_text(dist);
    mentions(
        &steps,
        &[
            "scripts/dist",
            "scripts/test-dist",
            "actions/attest-build-provenance",
            "gh release upload",
            ".tar.gz.sha256",
        ],
    );
    // Built, then checked, then attested and published: in that order.
    let at = |needle: &str| steps.find(needle).unwrap();
    assert!(at("scripts/dist") < at("scripts/test-dist"));
    assert!(at("scripts/test-dist") < at("actions/attest-build-provenance"));
    assert!(at("actions/attest-build-provenance") < at("gh release upload"));
    assert_eq!(wf["permissions"]["contents"].as_str(), Some("read"));
    assert!(dist["timeout-minutes"].as_i64().is_some());

    // One name for the archive: scripts/dist makes it, binstall, the action
    // and scripts/install-binary fetch it from the tag `vVERSION`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    mentions(
        &read("scripts/dist"),
        &[
            "name=\"cargo-bpfcompat-$version-$target\"",
            "target=x86_64-unknown-linux-gnu",
        ],
    );
    mentions(
        &read("scripts/install-binary"),
        &["name=\"cargo-bpfcompat-$version-x86_64-unknown-linux-gnu\""],
    );
    mentions(
        &read("cargo-bpfcompat/Cargo.toml"),
        &[
            "[package.metadata.binstall]",
            "{ repo }/releases/download/v{ version }/{ name }-{ version }-{ target }.tar.gz",
        ],
    );
    mentions(&read("action.yml"), &["/releases/download/v$version"]);
}
