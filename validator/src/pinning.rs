//! Maps an object pins by name (`LIBBPF_PIN_BY_NAME`) are created but never
//! left pinned where the loader would pin them. A pin is the deployment's
//! state, not something a kernel accepts or refuses: on the host a pin in
//! `/sys/fs/bpf` would outlive the check, and an existing pin of the same
//! name (a live tool's map) would be reused instead of the object's own.

use std::path::{Path, PathBuf};

use libbpf_rs::OpenObject;
use libbpf_rs::libbpf_sys;

/// Clears the pin path of every map libbpf would pin; one note per map.
pub fn unpin(open: &mut OpenObject) -> Vec<String> {
    let mut notes = Vec::new();
    for m in open.maps_mut() {
        let map = libbpf_rs::AsRawLibbpf::as_libbpf_object(&m).as_ptr();
        // SAFETY: `map` belongs to `open`, which outlives both calls; a null
        // pin path is libbpf's "not pinned".
        let pinned = unsafe { !libbpf_sys::bpf_map__pin_path(map).is_null() };
        if pinned {
            unsafe { libbpf_sys::bpf_map__set_pin_path(map, std::ptr::null()) };
            notes.push(note(&m.name().to_string_lossy()));
        }
    }
    notes
}

/// What a report says of a map pinned by name.
pub fn note(map: &str) -> String {
    format!("map `{map}` is pinned by name by its loader; here it was created but not left pinned")
}

/// A private directory on bpffs for aya, which always pins maps pinned by
/// name (there is no way to turn it off): removed with its pins on drop.
pub struct PinDir(PathBuf);

impl PinDir {
    /// A fresh directory under `/sys/fs/bpf`; `None` where that is not bpffs.
    pub fn new() -> Option<PinDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .subsec_nanos();
        let dir =
            Path::new("/sys/fs/bpf").join(format!("bpfcompat-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(PinDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}
