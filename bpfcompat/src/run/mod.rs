//! Scheduling: every kernel of a run gets one guest that validates every
//! object; up to `jobs` guests run at once. The runner never prints: it emits
//! [`Event`]s and returns [`RunOutput`](crate::outcome::RunOutput), and
//! reporters do the rest. [`boot_guest`] is the one boot path, also used by
//! the `#[kernel_test]` harness.

mod boot;
mod evidence;
mod plan;
mod schedule;
pub(crate) mod warm;

pub use boot::{Guest, boot_guest};
pub use plan::{CommandInput, Event, KernelTarget, ObjectInput, Plan, Settings};
pub use schedule::run;
pub use warm::{SavedMachine, remove_machine, saved_machines};
