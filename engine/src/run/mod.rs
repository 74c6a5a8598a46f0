//! Scheduling: every kernel of a run gets one guest that validates every
//! object; up to `jobs` guests run at once. The runner never prints: it emits
//! [`Event`]s and returns [`RunOutput`](crate::outcome::RunOutput), and
//! reporters do the rest. [`boot`] is the one place a guest is started, cold
//! or restored warm, also used by the `#[kernel_test]` harness.

pub(crate) mod boot;
mod evidence;
mod plan;
mod schedule;

pub use crate::objects::ObjectInput;
pub use boot::warm::{SavedMachine, remove_machine, saved_machines};
pub use boot::{Guest, boot_guest};
pub use plan::{CommandInput, Event, KernelTarget, Plan, Settings};
pub use schedule::run;
