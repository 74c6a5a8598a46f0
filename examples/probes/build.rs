//! Compiles every `src/bpf/*.bpf.c` and generates its skeleton with
//! libbpf-cargo (the skeletons embed the objects in every binary that uses them).

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: &[&str] = &[
    "ringbuf",
    "bounded_loop",
    "fentry",
    "task_state",
    "task_state_guarded",
];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args(["-I/usr/include/x86_64-linux-gnu", "-D__TARGET_ARCH_x86"])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/common.h");
}
