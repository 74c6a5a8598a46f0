//! `--object oci://…`: each artifact reference is pulled into a directory
//! of the run before anything else, and replaced by the objects it holds;
//! what was pulled, by digest, goes into the report.

use std::path::PathBuf;

use bpfcompat_engine::oci::{self, Artifact};

/// The pulled artifacts and the directory holding their objects (removed
/// when the run ends).
#[derive(Default)]
pub struct Pulled {
    pub artifacts: Vec<Artifact>,
    _dir: Option<tempfile::TempDir>,
}

/// Replaces every `oci://` entry of `objects` by the objects its artifact
/// holds, in place and in order.
pub fn pull(objects: &mut Vec<PathBuf>) -> Result<Pulled, crate::error::Error> {
    let is_ref = |p: &PathBuf| p.to_str().is_some_and(oci::is_oci);
    if !objects.iter().any(is_ref) {
        return Ok(Pulled::default());
    }
    let dir = tempfile::Builder::new()
        .prefix("bpfcompat-oci-")
        .tempdir()?;
    let mut artifacts = Vec::new();
    let mut out = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let Some(text) = o.to_str().filter(|s| oci::is_oci(s)) else {
            out.push(o.clone());
            continue;
        };
        let reference = oci::parse(text)?;
        // One directory per artifact: two artifacts may name a layer alike.
        let here = dir.path().join(i.to_string());
        std::fs::create_dir(&here)?;
        eprintln!("{} {reference}", crate::render::verb("Pulling"));
        let artifact = oci::pull(&reference, &here)?;
        out.extend(artifact.objects.iter().map(|o| o.path.clone()));
        artifacts.push(artifact);
    }
    *objects = out;
    Ok(Pulled {
        artifacts,
        _dir: Some(dir),
    })
}
