//! One module per subcommand.

pub mod kernels;
pub mod test;
