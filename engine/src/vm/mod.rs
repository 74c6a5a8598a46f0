//! QEMU: choosing the accelerator, building the command line, and owning one
//! guest's process from spawn to exit.

mod accel;
mod args;
mod attempts;
mod process;
pub mod snapshot;
mod supervisor;

pub use accel::{Accel, AccelChoice, probe_kvm};
pub use args::{BootSpec, kernel_cmdline, qemu_args};
pub(crate) use attempts::KVM_LIVENESS;
pub use attempts::{AccelPolicy, AttemptEvent, Attempts, Booted, boot_until_init};
pub use process::{Boot, Exit, boot, find_qemu};
