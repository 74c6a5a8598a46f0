//! Verdicts: from an agent's [`ObjectReport`](crate::wire::ObjectReport)
//! and how its guest ended to one [`Cell`] per object and kernel, with a
//! failure code, the kernel's own words and a remediation.
//!
//! Structured evidence decides first (the kernel's feature probes, the helper
//! IDs a program calls, unresolved kfuncs, errno, which libbpf step failed);
//! text is read only where nothing structured exists, and a failure no rule
//! explains is UNKNOWN with the raw evidence, never a guess.

mod cell;
mod codes;
mod from_log;
mod from_trace;
mod rules;

pub use crate::releases::{helper_name, helper_since};
pub use cell::{Cell, Finding, ProgramState, Stage, Status, cells_for_kernel};
pub use codes::Code;
pub use from_log::{LogVerdict, classify_log};
pub use from_trace::{Kernel, explain_trace};
