//! One module per subcommand.

pub mod bisect;
pub mod check;
pub mod kernel_test;
pub mod kernels;
pub mod list;
pub mod report;
pub mod survey;
pub mod test;
