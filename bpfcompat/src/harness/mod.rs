//! The test framework behind `#[bpfcompat::kernel_test]` and
//! `bpfcompat::main!()`: every (test × kernel) is a libtest-mimic trial named
//! `test::kernel`, so `cargo test -- 6.1`, `--exact` and `cargo nextest run`
//! select cells as usual.
//!
//! The test binary is its own guest agent: booted as a guest's `/init` it
//! mounts what BPF needs, runs only the test bodies its job names (the
//! [`crate::wire::Job`] in its initramfs), reports each on the result port
//! and powers off.

mod guest;
mod host;

use std::fmt::Debug;
use std::process::ExitCode;

/// A registered `#[kernel_test]` (built by the attribute; not written by hand).
#[derive(Debug)]
pub struct KernelTest {
    /// The function's name.
    pub name: &'static str,
    /// Runs the body.
    pub run: fn() -> Outcome,
    /// The kernels to run on (default: the project's configured `kernels`,
    /// else every kernel of the matrix).
    pub kernels: Option<&'static [&'static str]>,
    /// The matrix (default: the project's configured matrix, else the shipped one).
    pub matrix: Option<&'static str>,
    /// Kernels where the test must fail (passing there is a failure), each
    /// with the code the kernel's words must name (`None`: any code; an
    /// unclassified failure, a panic or an assertion, is never expected).
    pub expect_fail: &'static [(&'static str, Option<&'static str>)],
    /// Not run unless asked for (`--ignored`).
    pub ignore: bool,
    /// Limit for the body in seconds (0: the default, 60).
    pub timeout_secs: u64,
    /// Binaries shipped into the guest for the test: name and host path
    /// (see [`crate::shipped`]).
    pub bins: &'static [(&'static str, &'static str)],
}

inventory::collect!(KernelTest);

/// A test's limit when it names none.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// The console line the guest prints before each test body, followed by
/// the test's name.
pub const CONSOLE_MARK: &str = "bpfcompat: test ";

/// The failure codes an `expect_fail` may name (the CLI's classifier has
/// one for each; docs/verdicts.md says what each means).
pub const CODES: &[&str] = &[
    "MISSING_BTF",
    "CORE_RELOCATION",
    "MISSING_KFUNC",
    "MISSING_ATTACH_TARGET",
    "UNSUPPORTED_MAP_TYPE",
    "UNSUPPORTED_PROG_TYPE",
    "UNSUPPORTED_ATTACH_TYPE",
    "UNSUPPORTED_HELPER",
    "UNSUPPORTED_FEATURE",
    "KERNEL_CONFIG",
    "VERIFIER_REJECTED",
    "VERIFIER_LIMIT",
    "GPL_ONLY",
    "PERMISSION",
    "MAP_CONTRACT",
    "ATTACH_FAILED",
];

/// How a test body ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It returned `()` or `Ok`.
    Pass,
    /// It returned `Err` (the error's `Debug`, which shows anyhow's chain).
    Fail(String),
}

impl Outcome {
    /// The outcome of what a test body returned.
    pub fn from_return<T: IntoOutcome>(value: T) -> Outcome {
        value.into_outcome()
    }
}

/// What a `#[kernel_test]` body may return.
pub trait IntoOutcome {
    /// The outcome it means.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Outcome {
        Outcome::Pass
    }
}

impl<E: Debug> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(format!("{e:?}")),
        }
    }
}

/// The tests registered in this binary, by name.
fn registered() -> Vec<&'static KernelTest> {
    let mut v: Vec<&KernelTest> = inventory::iter::<KernelTest>.into_iter().collect();
    v.sort_by_key(|t| t.name);
    v
}

/// The `main` of a `harness = false` test target (see [`crate::main!`]).
pub fn main() -> ExitCode {
    // In a guest, the run of this binary for one test body (PID 1 of a
    // namespace of its own).
    if let Ok(name) = std::env::var(guest::RUN_TEST) {
        guest::run_body(&name);
    }
    // Only a guest runs a test binary as PID 1.
    if std::process::id() == 1 {
        guest::run();
    }
    host::run()
}
