//! Scheduling: every kernel of a run gets one guest that validates every
//! object; up to `jobs` guests run at once. The runner never prints: it emits
//! [`Event`]s and returns [`RunOutput`], and reporters do the rest.

mod evidence;
mod plan;
mod schedule;

pub use plan::{CommandInput, Event, KernelTarget, ObjectInput, Plan, Settings};
pub use schedule::run;
