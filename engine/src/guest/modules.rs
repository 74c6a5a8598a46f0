//! Which kernel modules every guest gets, and where an own kernel's
//! modules directory has them.

use std::path::{Path, PathBuf};

/// Kernel modules shipped into each guest, in load order (each after the
/// ones it depends on), where the kernel's package carries them: the virtio
/// PCI and block drivers for the job disk of a guest restored from a
/// snapshot; and what a BPF program's hook commonly needs and distros build
/// as modules: the clsact qdisc and the BPF classifier and action for tc,
/// veth and dummy for test interfaces.
pub const GUEST_MODULES: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
    "sch_ingress",
    "cls_bpf",
    "act_bpf",
    "veth",
    "dummy",
];

/// The guest modules below `dir` (regular files named `<module>.ko`,
/// `.ko.xz` or `.ko.zst`, at most 8 levels down, links not followed), the
/// first of each name in path order.
pub(crate) fn guest_module_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let kind = e.file_type()?;
            if kind.is_dir() && depth < 8 {
                stack.push((e.path(), depth + 1));
            } else if kind.is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some((m, _)) = module_file(&name)
            && GUEST_MODULES.contains(&m.as_str())
            && !found.iter().any(|(n, _)| *n == m)
        {
            found.push((m, path));
        }
    }
    found.sort_by_key(|(m, _)| GUEST_MODULES.iter().position(|g| g == m));
    Ok(found)
}

/// A module's name as the kernel knows it (`-` as `_`) and its compression
/// (`""`, `xz`, `zst`), from its file's name (`<name>.ko[.xz|.zst]`).
pub(crate) fn module_file(file: &str) -> Option<(String, &'static str)> {
    let (stem, compression) = [(".ko", ""), (".ko.xz", "xz"), (".ko.zst", "zst")]
        .iter()
        .find_map(|(ext, c)| file.strip_suffix(ext).map(|s| (s, *c)))?;
    (!stem.is_empty()).then(|| (stem.replace('-', "_"), compression))
}
