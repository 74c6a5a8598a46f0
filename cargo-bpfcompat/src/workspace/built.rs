//! The workspace's BPF objects, as `test`, `check` and `list` take them:
//! built, found, each checked to be a BPF object, and at least one.

use super::{BuildOutput, CargoArgs, Discovered, build_workspace, discover};
use crate::error::Error;

/// Builds the workspace and finds its BPF objects; a build that produced
/// none is an error saying where they were looked for.
pub fn built_objects(cargo: &CargoArgs) -> Result<(BuildOutput, Vec<Discovered>), Error> {
    let build = build_workspace(cargo)?;
    let found = discover(&build)?;
    for d in &found {
        bpfcompat_engine::objects::check_bpf_object(&d.path)?;
    }
    if found.is_empty() {
        return Err(Error::Input(format!(
            "the build of {} produced no BPF object (looked in every build script's OUT_DIR, the .bpf.objs section of every binary, {}/bpf and {}/bpf{{el,eb}}-unknown-none)\n  (hint: build your BPF programs with libbpf-cargo or aya-build, or give compiled objects: `cargo bpfcompat test --object FILE`, `cargo bpfcompat check FILE`)",
            build.workspace_root.display(),
            build.target_dir.display(),
            build.target_dir.display()
        )));
    }
    Ok((build, found))
}
