//! End-to-end tests: real QEMU, real distro kernels, real libbpf, fixture
//! objects compiled with clang, and the example project. One binary; each
//! module is one area of the product. Helpers shared by the modules live in
//! the crate's library (`bpfcompat_e2e`).

mod archives;
mod aya;
mod bisect;
mod ci_files;
mod complexity;
mod harness;
mod host_gate;
mod kernels;
mod loader_choices;
mod loaders;
mod oci;
mod packaging;
mod reports;
mod smoke;
mod warm;
mod workspace;
