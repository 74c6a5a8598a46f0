//! validator
pub mod agent {
    //! tmp
    /// tmp
    pub fn is_guest_agent() -> bool { false }
    /// tmp
    pub fn run_as_init() -> ! { loop {} }
    /// tmp
    pub fn run_child_if_requested() -> Option<std::process::ExitCode> { None }
}
