//! Fixture BPF objects for the end-to-end tests, compiled by `build.rs`.

use std::path::PathBuf;

/// The compiled fixture `<name>.bpf.o`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("BPFCOMPAT_FIXTURES")).join(format!("{name}.bpf.o"))
}
