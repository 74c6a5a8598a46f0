//! Scheduling: every kernel of a run gets one guest that validates every
//! object; up to `jobs` guests run at once. The runner never prints: it emits
//! [`Event`]s and returns [`RunOutput`], and reporters do the rest.

mod evidence;
mod imp;
mod types;

pub use imp::run;
pub use types::{CommandInput, Event, KernelTarget, ObjectInput, Plan, Settings};
