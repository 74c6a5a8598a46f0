//! Distro kernels: where their archives are, which package a profile pins,
//! and how a pinned package becomes a cached `vmlinuz`.

mod cache;
pub mod config;
pub(crate) mod deb;
mod debversion;
mod fetch;
pub(crate) mod index;
mod mirror;

pub use cache::{Cache, CachedKernel};
pub use deb::GUEST_MODULES;
pub use debversion::compare as compare_versions;
pub use fetch::{FetchEvent, fetch};
pub use index::{Candidate, resolve};
pub use mirror::{Mirrors, mirror_var};
