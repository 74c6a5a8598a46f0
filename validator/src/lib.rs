//! bpfcompat's validator: loads and attaches BPF objects with libbpf and
//! reports, per program and map, what the kernel said.
//!
//! It runs in two places: as the guest agent (the `/init` of every guest, see
//! [`agent`]) and on the host as a pre-load gate. Both produce the same
//! [`bpfcompat_engine::wire::ObjectReport`], judged by the same classifier.

pub mod agent;
mod alternatives;
mod attach;
mod aya_loader;
mod capture;
mod cgroup;
mod clsact;
mod command;
mod complexity;
mod declared;
mod evidence;
mod fire;
mod fixups;
mod host;
mod loader;
mod options;
mod pair;
mod pinning;
mod sizing;
mod struct_ops;
mod sys;
mod validate;

pub use declared::{OpenError, declared};
pub use host::{
    HostError, HostVerdict, cleanup, missing_privileges, validate_all_on_host,
    validate_configured_on_host, validate_on_host,
};
pub use loader::{validate_object, validate_source};
pub use options::{Options, Site, Source};
