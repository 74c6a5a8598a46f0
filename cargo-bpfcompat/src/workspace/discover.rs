//! Finding the BPF objects a build produced, wherever the usual tools leave
//! them, and naming each for a person.
//!
//! - every build script's `OUT_DIR` (libbpf-cargo with `reference_obj`,
//!   aya-build, hand-written build scripts);
//! - the `.bpf.objs` section of every built executable (libbpf-cargo 0.26+
//!   embeds each skeleton's object there and leaves no file by default);
//! - `<target>/bpf/` (`cargo libbpf build`) and
//!   `<target>/bpf{el,eb}-unknown-none/<profile>/` (aya xtask projects).
//!
//! The same bytes found twice are one object (by sha256); every place it was
//! found is kept for `cargo bpfcompat list`.

use std::path::{Path, PathBuf};

use bpfcompat_engine::objects::{embedded_objects, is_bpf_elf};
use sha2::{Digest, Sha256};

use super::build::BuildOutput;

/// One BPF object of the workspace.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Name in reports and configuration (the skeleton or file name).
    pub name: String,
    /// Package that produced it.
    pub package: String,
    /// Lower-case hex sha256 of its bytes.
    pub sha256: String,
    /// Where it is on disk (embedded objects are written out under the target dir).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: usize,
    /// Every place it was found.
    pub found_in: Vec<String>,
}

/// Files larger than this are not BPF objects worth reading whole.
const MAX_OBJECT: u64 = 64 << 20;

/// Collects, deduplicates and names the objects of a build.
pub fn discover(build: &BuildOutput) -> Result<Vec<Discovered>, String> {
    let mut found: Vec<Discovered> = Vec::new();
    let store = build.target_dir.join("bpfcompat").join("objects");
    let mut add = |name: String,
                   package: &str,
                   bytes: Vec<u8>,
                   origin: String,
                   path: Option<PathBuf>|
     -> Result<(), String> {
        let sha = hex::encode(Sha256::digest(&bytes));
        if let Some(d) = found.iter_mut().find(|d| d.sha256 == sha) {
            if !d.found_in.contains(&origin) {
                d.found_in.push(origin);
            }
            return Ok(());
        }
        let path = match path {
            Some(p) => p,
            None => {
                std::fs::create_dir_all(&store)
                    .map_err(|e| format!("cannot create {}: {e}", store.display()))?;
                let p = store.join(format!("{name}-{}.bpf.o", &sha[..12]));
                // Written aside and renamed: another run in this workspace
                // may be reading the same file (its name is its content).
                let written = tempfile::NamedTempFile::new_in(&store).and_then(|mut t| {
                    use std::io::Write as _;
                    t.write_all(&bytes)?;
                    t.persist(&p).map_err(|e| e.error)
                });
                written.map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                p
            }
        };
        found.push(Discovered {
            name,
            package: package.to_string(),
            sha256: sha,
            path,
            size: bytes.len(),
            found_in: vec![origin],
        });
        Ok(())
    };

    for (package, dir) in &build.out_dirs {
        for file in bpf_files(dir, 3) {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            add(
                stem(&file),
                package,
                bytes,
                format!("OUT_DIR of {package}: {}", file.display()),
                Some(file.clone()),
            )?;
        }
    }
    for (package, exe) in &build.executables {
        let Ok(bytes) = std::fs::read(exe) else {
            continue;
        };
        let exe_name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, e) in embedded_objects(&bytes).into_iter().enumerate() {
            let name = e.name.unwrap_or_else(|| format!("{exe_name}-{i}"));
            add(
                name,
                package,
                e.bytes,
                format!("embedded in {}", exe.display()),
                None,
            )?;
        }
    }
    let t = &build.target_dir;
    let conventional = [
        (t.join("bpf"), "cargo libbpf build"),
        (
            t.join("bpfel-unknown-none").join(&build.profile_dir),
            "aya (bpfel)",
        ),
        (
            t.join("bpfeb-unknown-none").join(&build.profile_dir),
            "aya (bpfeb)",
        ),
    ];
    for (dir, what) in conventional {
        for file in bpf_files(&dir, 1) {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            add(
                stem(&file),
                "",
                bytes,
                format!("{what}: {}", file.display()),
                Some(file.clone()),
            )?;
        }
    }
    disambiguate(&mut found);
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Two different objects with one name get their package, then a number.
fn disambiguate(found: &mut [Discovered]) {
    for i in 0..found.len() {
        let clash = found
            .iter()
            .enumerate()
            .any(|(j, d)| j != i && d.name == found[i].name);
        if clash && !found[i].package.is_empty() {
            found[i].name = format!("{}@{}", found[i].name, found[i].package);
        }
    }
    for i in 0..found.len() {
        let mut n = 1;
        while found[..i].iter().any(|d| d.name == found[i].name) {
            n += 1;
            found[i].name = format!(
                "{}#{n}",
                found[i].name.split('#').next().unwrap_or_default()
            );
        }
    }
}

/// `probe.bpf.o` → `probe`; `probe.o` → `probe`; `probe` → `probe`.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.trim_end_matches(".o")
        .trim_end_matches(".bpf")
        .to_string()
}

/// Regular files below `dir` (to `depth` levels) that are BPF ELF objects.
fn bpf_files(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() && depth > 1 {
            out.extend(bpf_files(&e.path(), depth - 1));
        } else if meta.is_file() && meta.len() <= MAX_OBJECT && starts_as_bpf(&e.path()) {
            out.push(e.path());
        }
    }
    out
}

fn starts_as_bpf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && is_bpf_elf(&head)
}
