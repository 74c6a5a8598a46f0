//! `--object oci://…`: artifacts pushed to a real registry on 127.0.0.1
//! (Debian's docker-registry, started here) validate as files do, with
//! their digests in the report; artifacts that are not what they claim,
//! and registries that send what was not asked for, get clear errors
//! before any guest boots.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bpfcompat_e2e::mirror::{Body, serve};
use bpfcompat_e2e::{Args, cli, fixture, mentions, run, with_report};
use serde_json::{Value, json};
use sha2::Digest;

const GADGET: &str = "application/vnd.gadget.ebpf.program.v1+binary";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A registry on 127.0.0.1 with its storage in a temporary directory,
/// stopped when dropped.
struct Registry {
    child: Child,
    host: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start() -> Registry {
        let exe = Path::new("/usr/bin/docker-registry");
        assert!(
            exe.exists(),
            "no /usr/bin/docker-registry (hint: scripts/setup installs the docker-registry package)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(exe)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let host = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while agent
            .get(&format!("http://{host}/v2/"))
            .call()
            .map_or(true, |r| r.status() != 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            child,
            host,
            agent,
            _dir: dir,
        }
    }

    fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let r = self
            .agent
            .post(&format!("http://{}/v2/{repo}/blobs/uploads/", self.host))
            .send_empty()
            .unwrap();
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let location = match location.starts_with('/') {
            true => format!("http://{}{location}", self.host),
            false => location,
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = self
            .agent
            .put(&format!("{location}{sep}digest={d}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(r.status(), 201);
        d
    }

    /// Pushes a manifest (or index) under `tag`; its digest.
    fn manifest(&self, repo: &str, tag: &str, media_type: &str, body: &Value) -> String {
        let bytes = serde_json::to_vec(body).unwrap();
        let r = self
            .agent
            .put(&format!("http://{}/v2/{repo}/manifests/{tag}", self.host))
            .header("Content-Type", media_type)
            .send(&bytes[..])
            .unwrap();
        assert_eq!(r.status(), 201, "{body:#}");
        digest(&bytes)
    }

    /// An image manifest of `layers` (media type, bytes, title).
    fn image(&self, repo: &str, tag: &str, layers: &[(&str, Vec<u8>, Option<&str>)]) -> String {
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = self.blob(repo, config);
        let layers: Vec<Value> = layers
            .iter()
            .map(|(media_type, bytes, title)| {
                let mut l = json!({
                    "mediaType": media_type,
                    "digest": self.blob(repo, bytes),
                    "size": bytes.len(),
                });
                if let Some(t) = title {
                    l["annotations"] = json!({"org.opencontainers.image.title": t});
                }
                l
            })
            .collect();
        self.manifest(
            repo,
            tag,
            MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": config.len(),
                },
                "layers": layers,
            }),
        )
    }

    /// An index of `manifests` (digest, architecture) under `tag`.
    fn index(&self, repo: &str, tag: &str, manifests: &[(&str, &str)]) -> String {
        let entries: Vec<Value> = manifests
            .iter()
            .map(|(d, arch)| {
                let size = self
                    .agent
                    .get(&format!("http://{}/v2/{repo}/manifests/{d}", self.host))
                    .header("Accept", MANIFEST)
                    .call()
                    .unwrap()
                    .into_body()
                    .read_to_vec()
                    .unwrap()
                    .len();
                json!({
                    "mediaType": MANIFEST, "digest": d, "size": size,
                    "platform": {"os": "linux", "architecture": arch},
                })
            })
            .collect();
        self.manifest(
            repo,
            tag,
            INDEX,
            &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}),
        )
    }
}

#[test]
fn an_artifact_in_a_registry_validates_with_its_digests_in_the_report() {
    let reg = Registry::start();
    let probe = std::fs::read(fixture("kprobe")).unwrap();
    let amd64 = reg.image(
        "gadget/probe",
        "amd64",
        &[(GADGET, probe.clone(), Some("program.bpf.o"))],
    );
    // The arm64 entry holds no BPF object: taking it would fail the run.
    let arm64 = reg.image(
        "gadget/probe",
        "arm64",
        &[(
            "application/vnd.oci.image.layer.v1.tar",
            b"not elf".to_vec(),
            None,
        )],
    );
    let index = reg.index(
        "gadget/probe",
        "v1",
        &[(&arm64, "arm64"), (&amd64, "amd64")],
    );

    let dir = tempfile::tempdir().unwrap();
    let (md, html) = (dir.path().join("r.md"), dir.path().join("r.html"));
    let mut c = cli(&["test", "--object"]);
    c.arg(format!("oci://{}/gadget/probe:v1", reg.host));
    c.kernels(&["debian-11-5.10", "debian-12-6.1"]);
    c.arg("--markdown").arg(&md).arg("--html").arg(&html);
    let (out, report) = with_report(c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}\n{report:#}");
    mentions(&err, &["Pulling", "gadget/probe:v1"]);
    let a = &report["artifacts"][0];
    assert_eq!(
        a["reference"],
        format!("oci://{}/gadget/probe:v1", reg.host)
    );
    assert_eq!(a["manifest_digest"], amd64);
    assert_eq!(a["index_digest"], index);
    assert_eq!(a["objects"][0]["name"], "program.bpf.o");
    assert_eq!(a["objects"][0]["digest"], digest(&probe));
    assert_eq!(a["objects"][0]["media_type"], GADGET);
    // Both kernels judged the layer, named by its title.
    let cells: Vec<(&str, &str)> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["object"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cells,
        [("program.bpf.o", "pass"), ("program.bpf.o", "pass")],
        "{report:#}"
    );
    // Every view names the artifact by digest.
    let layer = digest(&probe);
    for view in [
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&md).unwrap(),
        std::fs::read_to_string(&html).unwrap(),
    ] {
        // (HTML escapes the slash.)
        mentions(&view, &["probe:v1", amd64.as_str(), index.as_str(), &layer]);
    }
}

/// `test --object REF` on one kernel: exit code and stderr (no report).
fn refused(reference: &str) -> (Option<i32>, String) {
    let mut c = cli(&["test", "--object", reference]);
    c.kernels(&["debian-12-6.1"]);
    let out = run(c);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn artifacts_that_are_not_what_they_claim_are_refused_before_any_boot() {
    let reg = Registry::start();
    let at = |repo_tag: &str| format!("oci://{}/{repo_tag}", reg.host);

    // No layer is a BPF object: said with each layer's type and size.
    reg.image(
        "plain/image",
        "v1",
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            vec![0x1f, 0x8b, 0, 0],
            None,
        )],
    );
    let (code, err) = refused(&at("plain/image:v1"));
    assert_eq!(code, Some(1), "{err}");
    mentions(
        &err,
        &["no layer is an eBPF program", "tar+gzip (4 bytes)", GADGET],
    );

    // A layer of the eBPF media type that is no ELF BPF object.
    reg.image(
        "liar/gadget",
        "v1",
        &[(GADGET, b"#!/bin/sh\n".to_vec(), None)],
    );
    let (code, err) = refused(&at("liar/gadget:v1"));
    assert_eq!(code, Some(1), "{err}");
    mentions(
        &err,
        &["has the eBPF media type but is not an ELF BPF object"],
    );

    // An index without linux/amd64.
    let arm = reg.image(
        "arm/only",
        "arm64",
        &[(GADGET, std::fs::read(fixture("kprobe")).unwrap(), None)],
    );
    reg.index("arm/only", "v1", &[(&arm, "arm64")]);
    let (code, err) = refused(&at("arm/only:v1"));
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["no linux/amd64 manifest", "linux/arm64"]);

    // A tag or digest the registry does not have.
    let (code, err) = refused(&at("arm/only:nope"));
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["HTTP 404", "no such repository, tag or digest"]);

    // Not a reference at all.
    let (code, err) = refused("oci://127.0.0.1:1/Upper/Case");
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["is not an OCI reference", "lowercase", "hint:"]);
}

#[test]
fn a_registry_that_sends_what_was_not_asked_for_is_refused() {
    // A server that is no honest registry: fixed answers per path.
    let manifest = |layers: Value| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest(b"{}"), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    };
    let probe = std::fs::read(fixture("kprobe")).unwrap();
    let honest =
        manifest(json!([{"mediaType": GADGET, "digest": digest(&probe), "size": probe.len()}]));
    let asked = format!("sha256:{}", "0".repeat(64));
    let huge = manifest(json!([{"mediaType": GADGET, "digest": digest(b"x"), "size": 1u64 << 40}]));
    let swapped =
        manifest(json!([{"mediaType": GADGET, "digest": digest(b"other"), "size": probe.len()}]));
    let routes: BTreeMap<String, Body> = [
        // Asked by digest, answered with other bytes.
        (
            format!("/v2/a/manifests/{asked}"),
            Body::Bytes(honest.clone()),
        ),
        // Not a manifest.
        (
            "/v2/b/manifests/latest".to_string(),
            Body::Bytes(b"{\"schemaVersion\": \"two\"".to_vec()),
        ),
        // A layer declared larger than any BPF object.
        ("/v2/c/manifests/latest".to_string(), Body::Bytes(huge)),
        // A layer whose bytes are not its digest's.
        ("/v2/d/manifests/latest".to_string(), Body::Bytes(swapped)),
        (
            format!("/v2/d/blobs/{}", digest(b"other")),
            Body::Bytes(probe),
        ),
    ]
    .into_iter()
    .collect();
    let base = serve(routes);
    let host = base.trim_start_matches("http://");

    let (code, err) = refused(&format!("oci://{host}/a@{asked}"));
    assert_eq!(code, Some(1), "{err}");
    mentions(
        &err,
        &["the manifest has digest", &format!("not the {asked}")],
    );
    let (code, err) = refused(&format!("oci://{host}/b"));
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["is not an OCI or Docker image manifest"]);
    let (code, err) = refused(&format!("oci://{host}/c"));
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["declares 1099511627776 bytes", "refused"]);
    let (code, err) = refused(&format!("oci://{host}/d"));
    assert_eq!(code, Some(1), "{err}");
    mentions(&err, &["layer", "has digest", "refused"]);
}
