//! The user's Cargo workspace: building it and finding the BPF objects the
//! build produced. Its configuration is read by [`bpfcompat_engine::config`].

mod build;
mod built;
mod discover;
mod loader_source;

pub use build::{BuildOutput, CargoArgs, build_workspace};
pub use built::built_objects;
pub use discover::{Discovered, discover};
pub use loader_source::reads_globals_after_load;
