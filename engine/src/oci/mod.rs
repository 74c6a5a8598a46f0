//! BPF objects published as OCI artifacts (`--object oci://…`), as
//! Inspektor Gadget publishes its gadgets: the manifest (for an index, its
//! linux/amd64 entry), then each eBPF layer (the gadget media type, or any
//! small layer that is an ELF BPF object), each checked against its digest
//! and written under a name of this module's choosing. What was pulled, by
//! digest, goes into every report.

mod credentials;
mod reference;
mod registry;

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageManifest};
use sha2::Digest as _;

pub use reference::{Reference, is_oci, parse};
use registry::Registry;

/// Inspektor Gadget's media type for an eBPF program layer.
pub const GADGET_EBPF: &str = "application/vnd.gadget.ebpf.program.v1+binary";
/// The most an eBPF layer may be (as a BPF object file).
pub const LAYER_LIMIT: u64 = crate::objects::MAX_OBJECT_BYTES;
/// Layers of other media types are looked into only up to this size: an
/// image's file system layers are not BPF objects and are not downloaded.
const PROBE_LIMIT: u64 = 16 << 20;

/// Why an artifact could not be had.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is malformed.
    #[error(
        "`{reference}` is not an OCI reference: {why}\n  (hint: oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST], e.g. oci://127.0.0.1:5000/gadget/trace_open:v1)"
    )]
    BadReference {
        /// As given (clipped).
        reference: String,
        /// What is wrong.
        why: String,
    },
    /// The registry could not be reached or answered nonsense.
    #[error("cannot pull from {registry}: {why}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// Why.
        why: String,
    },
    /// The registry answered with an error status.
    #[error("{reference}: {url} answered HTTP {status}\n  (hint: {hint})")]
    Status {
        /// The artifact.
        reference: String,
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What to do.
        hint: &'static str,
    },
    /// The registry asks for credentials and there are none.
    #[error(
        "{registry} asks for credentials and the docker config has none for it\n  (hint: `docker login {registry}` writes them to ~/.docker/config.json; bpfcompat reads that file, or $DOCKER_CONFIG/config.json)"
    )]
    NeedsCredentials {
        /// `host[:port]`.
        registry: String,
    },
    /// More bytes than allowed.
    #[error("{url} sent more than {limit} bytes for {what}, the most one may be: refused")]
    TooLarge {
        /// Manifest, layer.
        what: String,
        /// Where.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A manifest that is not one.
    #[error(
        "{reference}: the manifest is not an OCI or Docker image manifest or index ({media_type}): {why}"
    )]
    BadManifest {
        /// The artifact.
        reference: String,
        /// As the registry said it.
        media_type: String,
        /// The parse error.
        why: String,
    },
    /// Content whose digest is not the one asked for.
    #[error("{reference}: {what} has digest {got}, not the {want} it was asked by: refused")]
    DigestMismatch {
        /// The artifact.
        reference: String,
        /// Manifest or layer.
        what: String,
        /// Asked for.
        want: String,
        /// Got.
        got: String,
    },
    /// An index without a linux/amd64 manifest.
    #[error("{reference}: the index has no linux/amd64 manifest (it has: {platforms})")]
    NoPlatform {
        /// The artifact.
        reference: String,
        /// What it has.
        platforms: String,
    },
    /// No layer is a BPF object.
    #[error(
        "{reference}: no layer is an eBPF program (layers: {layers})\n  (hint: bpfcompat takes layers of type {GADGET_EBPF}, and any other layer that is an ELF BPF object)"
    )]
    NoObjects {
        /// The artifact.
        reference: String,
        /// Each layer's media type and size.
        layers: String,
    },
    /// An eBPF layer larger than a BPF object may be.
    #[error(
        "{reference}: layer {digest} declares {size} bytes, more than the {limit} a BPF object may have: refused"
    )]
    LayerTooLarge {
        /// The artifact.
        reference: String,
        /// The layer.
        digest: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An eBPF-typed layer that is not a BPF ELF object.
    #[error("{reference}: layer {digest} has the eBPF media type but is not an ELF BPF object")]
    NotBpf {
        /// The artifact.
        reference: String,
        /// The layer.
        digest: String,
    },
    /// Writing the pulled objects.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An artifact pulled: what the reports record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Artifact {
    /// The reference as given.
    pub reference: String,
    /// The digest of the manifest the objects came from (for an index,
    /// the linux/amd64 entry's).
    pub manifest_digest: String,
    /// The index's digest, when the reference named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    /// The objects taken from its layers.
    pub objects: Vec<ArtifactObject>,
}

/// One layer taken as a BPF object.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ArtifactObject {
    /// The object's name in the reports.
    pub name: String,
    /// The layer's digest.
    pub digest: String,
    /// The layer's media type.
    pub media_type: String,
    /// Where it was written.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Artifact {
    /// One line for a report: the reference, the digests, each object's layer.
    pub fn describe(&self) -> String {
        let objects: Vec<String> = self
            .objects
            .iter()
            .map(|o| format!("{} = layer {}", o.name, o.digest))
            .collect();
        format!(
            "{}: manifest {}{}; {}",
            self.reference,
            self.manifest_digest,
            self.index_digest
                .as_ref()
                .map(|i| format!(" (index {i})"))
                .unwrap_or_default(),
            objects.join(", ")
        )
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Pulls `reference`'s BPF objects into `dir` (which must exist).
pub fn pull(reference: &Reference, dir: &Path) -> Result<Artifact, OciError> {
    let shown = reference.to_string();
    let mut registry = Registry::new(reference);
    let (bytes, media_type) = registry.manifest(&reference.reference)?;
    let digest = sha256(&bytes);
    if reference.by_digest && digest != reference.reference {
        return Err(OciError::DigestMismatch {
            reference: shown,
            what: "the manifest".into(),
            want: reference.reference.clone(),
            got: digest,
        });
    }
    let (manifest, manifest_digest, index_digest) = match is_index(&bytes, &media_type) {
        true => {
            let entry = amd64_entry(&shown, &bytes, &media_type)?;
            let (inner, inner_type) = registry.manifest(&entry)?;
            let got = sha256(&inner);
            if got != entry {
                return Err(OciError::DigestMismatch {
                    reference: shown,
                    what: "the linux/amd64 manifest".into(),
                    want: entry,
                    got,
                });
            }
            (
                parse_manifest(&shown, &inner, &inner_type)?,
                got,
                Some(digest),
            )
        }
        false => (parse_manifest(&shown, &bytes, &media_type)?, digest, None),
    };
    let objects = take_objects(&shown, reference, &mut registry, &manifest, dir)?;
    Ok(Artifact {
        reference: shown,
        manifest_digest,
        index_digest,
        objects,
    })
}

/// Whether the manifest is an index (or a Docker manifest list).
fn is_index(bytes: &[u8], media_type: &str) -> bool {
    if media_type.contains("image.index") || media_type.contains("manifest.list") {
        return true;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| {
        p.manifests.is_some()
            || p.media_type
                .is_some_and(|m| m.contains("image.index") || m.contains("manifest.list"))
    })
}

/// The digest of an index's linux/amd64 manifest.
fn amd64_entry(shown: &str, bytes: &[u8], media_type: &str) -> Result<String, OciError> {
    let index = ImageIndex::from_reader(bytes).map_err(|e| OciError::BadManifest {
        reference: shown.to_string(),
        media_type: media_type.to_string(),
        why: e.to_string(),
    })?;
    let mut seen = Vec::new();
    for m in index.manifests() {
        let Some(p) = m.platform() else {
            seen.push("no platform".to_string());
            continue;
        };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if os == "linux" && arch == "amd64" {
            return Ok(m.digest().to_string());
        }
        seen.push(format!("{os}/{arch}"));
    }
    Err(OciError::NoPlatform {
        reference: shown.to_string(),
        platforms: if seen.is_empty() {
            "nothing".into()
        } else {
            seen.join(", ")
        },
    })
}

fn parse_manifest(shown: &str, bytes: &[u8], media_type: &str) -> Result<ImageManifest, OciError> {
    ImageManifest::from_reader(bytes).map_err(|e| OciError::BadManifest {
        reference: shown.to_string(),
        media_type: media_type.to_string(),
        why: e.to_string(),
    })
}

/// Each layer that is a BPF object, verified and written to `dir`.
fn take_objects(
    shown: &str,
    reference: &Reference,
    registry: &mut Registry,
    manifest: &ImageManifest,
    dir: &Path,
) -> Result<Vec<ArtifactObject>, OciError> {
    let mut objects = Vec::new();
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        let digest = layer.digest().to_string();
        let size = layer.size();
        layers.push(format!("{media_type} ({size} bytes)"));
        let gadget = media_type == GADGET_EBPF;
        if gadget && size > LAYER_LIMIT {
            return Err(OciError::LayerTooLarge {
                reference: shown.to_string(),
                digest,
                size,
                limit: LAYER_LIMIT,
            });
        }
        if !gadget && size > PROBE_LIMIT {
            continue;
        }
        let bytes = registry.blob(&digest, size)?;
        let got = sha256(&bytes);
        if got != digest {
            return Err(OciError::DigestMismatch {
                reference: shown.to_string(),
                what: format!("layer {digest}"),
                want: digest,
                got,
            });
        }
        if !crate::objects::is_bpf_elf(&bytes) {
            if gadget {
                return Err(OciError::NotBpf {
                    reference: shown.to_string(),
                    digest,
                });
            }
            continue;
        }
        let title = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.title"))
            .map(String::as_str);
        let name = object_name(reference, title, objects.len(), &objects);
        let path = dir.join(&name);
        std::fs::write(&path, &bytes).map_err(|source| OciError::Write {
            path: path.clone(),
            source,
        })?;
        objects.push(ArtifactObject {
            name,
            digest,
            media_type,
            path,
        });
    }
    if objects.is_empty() {
        return Err(OciError::NoObjects {
            reference: shown.to_string(),
            layers: if layers.is_empty() {
                "none".into()
            } else {
                layers.join(", ")
            },
        });
    }
    Ok(objects)
}

/// A file name for a layer: its title when that is a plain file name,
/// else the repository's last part, made unique in the run. Never a path
/// the registry chose.
fn object_name(
    reference: &Reference,
    title: Option<&str>,
    index: usize,
    taken: &[ArtifactObject],
) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let base = match title {
        Some(t) if plain(t) => t
            .trim_end_matches(".o")
            .trim_end_matches(".bpf")
            .to_string(),
        _ => reference
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("artifact")
            .to_string(),
    };
    let mut name = format!("{base}.bpf.o");
    if taken.iter().any(|o| o.name == name) || (title.is_none() && index > 0) {
        name = format!("{base}-{}.bpf.o", index + 1);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layers_name_is_its_plain_title_or_the_repositorys_and_never_a_path() {
        let r = parse("oci://127.0.0.1:5000/gadget/trace_open:v1").unwrap();
        assert_eq!(
            object_name(&r, Some("program.bpf.o"), 0, &[]),
            "program.bpf.o"
        );
        assert_eq!(object_name(&r, None, 0, &[]), "trace_open.bpf.o");
        assert_eq!(
            object_name(&r, Some("../../etc/x"), 0, &[]),
            "trace_open.bpf.o"
        );
        assert_eq!(object_name(&r, None, 1, &[]), "trace_open-2.bpf.o");
        let first = ArtifactObject {
            name: "p.bpf.o".into(),
            digest: String::new(),
            media_type: String::new(),
            path: PathBuf::new(),
        };
        assert_eq!(object_name(&r, Some("p.o"), 1, &[first]), "p-2.bpf.o");
    }

    #[test]
    fn an_index_is_told_from_a_manifest_by_type_or_shape() {
        assert!(is_index(b"{}", "application/vnd.oci.image.index.v1+json"));
        assert!(is_index(br#"{"manifests": []}"#, "application/json"));
        assert!(!is_index(
            br#"{"layers": []}"#,
            "application/vnd.oci.image.manifest.v1+json"
        ));
    }
}
