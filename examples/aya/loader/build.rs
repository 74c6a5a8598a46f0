//! Puts the aya objects where aya-build would: in OUT_DIR, for the loader to
//! embed. They are the committed ones (examples/aya/objects), built by
//! scripts/build-aya-objects, so this crate builds with stable Rust alone.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for name in ["template", "bare", "bloom", "btfmap", "taskbtf"] {
        let from = format!("../objects/{name}.bpf.o");
        println!("cargo:rerun-if-changed={from}");
        std::fs::copy(&from, out.join(name)).unwrap();
    }
}
