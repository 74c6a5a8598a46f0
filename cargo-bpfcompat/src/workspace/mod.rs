//! The user's Cargo workspace: building it and finding the BPF objects the
//! build produced. Its configuration is read by [`bpfcompat_engine::config`].

mod build;
mod discover;

pub use build::{BuildOutput, CargoArgs, build_workspace};
pub use discover::discover;
