//! Compiles every `fixtures/*.bpf.c` with clang into `$OUT_DIR/fixtures/`,
//! and the complexity fixture once per loop length.

use std::path::PathBuf;
use std::process::Command;

/// The loop lengths the complexity fixture is built with.
const COMPLEXITY_BUILDS: [u32; 2] = [100, 10_000];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("fixtures");
    std::fs::create_dir_all(&out).unwrap();
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-changed=fixtures");
    // Some fixtures are, or include, the example's sources.
    println!("cargo:rerun-if-changed=../examples/probes/src/bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
    let mut sources: Vec<_> = std::fs::read_dir("fixtures")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in sources {
        let stem = src
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".bpf.c", "");
        let obj = out.join(format!("{stem}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {clang} ({e}): install clang and libbpf-dev to build the fixture BPF programs")
            });
        assert!(status.success(), "{clang} failed on {}", src.display());
    }
    // One program, two lengths: `complexity/<N>/walk.bpf.o`.
    for n in COMPLEXITY_BUILDS {
        let dir = out.join("complexity").join(n.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new(&clang)
            .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
            .arg(format!("-DITERATIONS={n}"))
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-c")
            .arg("fixtures/complexity/walk.bpf.c")
            .arg("-o")
            .arg(dir.join("walk.bpf.o"))
            .status()
            .expect("clang runs");
        assert!(status.success(), "{clang} failed on the complexity fixture");
    }
    println!("cargo:rustc-env=BPFCOMPAT_FIXTURES={}", out.display());
}
