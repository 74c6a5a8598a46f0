//! What a workspace's own loader does with an object's global variables,
//! read from its Rust sources. A libbpf-cargo skeleton reads `.bss` and
//! `.data` through an mmap after load only where the loader's code asks for
//! them; a loader that never does is not broken by a kernel that cannot
//! mmap arrays (before 5.5), so the skeleton contract does not apply to it.

use std::io::Read;
use std::path::Path;

/// libbpf-cargo's accessors of a skeleton's mmap-ed globals, for `.bss`,
/// `.data` and custom `.data.*`/`.bss.*` sections: `maps.bss_data`,
/// `maps.data_custom_data` (0.24 and later), `bss()`, `data_mut()`,
/// `data_custom()` before. Broad on purpose: a match elsewhere (a map named
/// `my_data`, another type's `data()`) only keeps the contract on, the safe
/// side; a miss would drop it for a loader that needs it.
static ACCESSORS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"maps\s*\.\s*\w*(bss|data)\w*|\.\s*(bss|data)\w*\s*\(")
        .expect("the accessor pattern compiles")
});

/// Source files read at most, and bytes of each.
const FILES: usize = 5_000;
const FILE_LIMIT: u64 = 1 << 20;

/// Whether the Rust sources of the package at `dir` read a skeleton's
/// globals after load; `None` when it has no Rust source to read.
pub fn reads_globals_after_load(dir: &Path) -> Option<bool> {
    let mut files = Vec::new();
    rust_files(dir, 0, &mut files);
    if files.is_empty() {
        return None;
    }
    let mut text = String::new();
    Some(files.iter().any(|f| {
        text.clear();
        let read =
            std::fs::File::open(f).and_then(|h| h.take(FILE_LIMIT).read_to_string(&mut text));
        read.is_ok() && ACCESSORS.is_match(&text)
    }))
}

/// The `.rs` files below `dir` (regular files, links not followed; build
/// output and hidden directories skipped), at most [`FILES`].
fn rust_files(dir: &Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if out.len() >= FILES {
            return;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth < 8 && name != "target" && !name.starts_with('.') {
            rust_files(&e.path(), depth + 1, out);
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loader_that_never_reads_globals_after_load_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(reads_globals_after_load(dir.path()), None);
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("main.rs"),
            "fn main() { let skel = open.load(); skel.attach(); }",
        )
        .unwrap();
        assert_eq!(reads_globals_after_load(dir.path()), Some(false));
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(
            src.join("bin/counts.rs"),
            "fn main() { let n = skel.maps.bss_data.as_deref().unwrap().count; }",
        )
        .unwrap();
        assert_eq!(reads_globals_after_load(dir.path()), Some(true));
        // Every accessor form: custom sections, the older methods.
        for code in [
            "skel.maps.data_counters_data",
            "skel.bss_mut().hits += 1",
            "let d = skel.data_custom();",
            "skel . maps . bss_data",
        ] {
            std::fs::write(src.join("bin/counts.rs"), code).unwrap();
            assert_eq!(reads_globals_after_load(dir.path()), Some(true), "{code}");
        }
        std::fs::write(
            src.join("bin/counts.rs"),
            "fn main() { let ok = skel.links; }",
        )
        .unwrap();
        assert_eq!(reads_globals_after_load(dir.path()), Some(false));
        // Build output is not the loader's source.
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("src")).unwrap();
        std::fs::write(other.path().join("src/lib.rs"), "pub fn f() {}").unwrap();
        std::fs::create_dir_all(other.path().join("target/debug")).unwrap();
        std::fs::write(other.path().join("target/debug/skel.rs"), "bss_data").unwrap();
        assert_eq!(reads_globals_after_load(other.path()), Some(false));
    }
}
