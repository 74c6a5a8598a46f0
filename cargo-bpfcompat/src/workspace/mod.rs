//! The user's Cargo workspace: building it, finding the BPF objects the build
//! produced, and reading its bpfcompat configuration.

mod build;
mod config;
mod discover;

pub use build::{BuildOutput, CargoArgs, build_workspace};
pub use config::load_config;
pub use discover::discover;
