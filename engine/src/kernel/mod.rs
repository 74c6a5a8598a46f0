//! Distro kernels: where their archives are, which package a profile pins,
//! and how a pinned package becomes a cached `vmlinuz`.

pub(crate) mod apt;
mod cache;
pub mod config;
pub(crate) mod contents;
pub(crate) mod deb;
mod fetch;
pub(crate) mod functions;
mod image_btf;
pub(crate) mod index;
mod mirror;
pub(crate) mod package;
pub(crate) mod repodata;
pub(crate) mod rpm;
pub(crate) mod trust;
mod versions;

pub use crate::guest::modules::GUEST_MODULES;
pub use cache::{Cache, CachedKernel, Entry, InUse};
pub(crate) use cache::{Lock, blake3_file};
pub use fetch::{FetchEvent, extra_modules, fetch};
pub use functions::Index as FunctionIndex;
pub use index::{Candidate, resolve, series};
pub use mirror::{Mirrors, mirror_var};
pub use trust::{Trust, keyring_var};
pub use versions::compare as compare_versions;
