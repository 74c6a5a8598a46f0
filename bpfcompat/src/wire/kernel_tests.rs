//! A `#[kernel_test]` binary on the host and `cargo-bpfcompat`: the test
//! binary asks which (test × kernel) cells to run (`kernel-test plan`) and
//! has the CLI boot a kernel with itself as `/init` (`kernel-test run`), one
//! JSON document each way on stdin and stdout. The binary stays thin; the
//! CLI fetches kernels, boots them and reads the kernel's words.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which cells the test binary's tests make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanRequest {
    /// [`super::WIRE_VERSION`] of the test binary's `bpfcompat`.
    pub version: u32,
    /// The test's package (`CARGO_MANIFEST_DIR`), where its bpfcompat
    /// configuration is looked for.
    pub manifest_dir: Option<PathBuf>,
    /// The registered tests.
    pub tests: Vec<PlanTest>,
}

/// One registered test, as its attribute says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanTest {
    /// The function's name.
    pub name: String,
    /// Its kernels, when it names them.
    pub kernels: Option<Vec<String>>,
    /// Its matrix, when it names one.
    pub matrix: Option<String>,
}

/// The cells to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// The project's configuration could not be read: every test fails so.
    pub config_error: Option<String>,
    /// One per (test × kernel).
    pub cells: Vec<PlanCell>,
    /// Tests that make no cells (their matrix cannot be loaded): the test
    /// and why.
    pub failed: Vec<(String, String)>,
}

/// One (test × kernel).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanCell {
    /// The test.
    pub test: String,
    /// The kernel profile.
    pub kernel: String,
    /// The matrix it comes from (a shipped name or a file), for the run.
    pub matrix: String,
    /// Why it cannot run (unknown, unpinned, a required kernel that cannot
    /// be had): its trial fails with this.
    pub broken: Option<String>,
    /// Why it is skipped (an unavailable kernel the project allows).
    pub skipped: Option<String>,
}

/// Boot `kernel` with `binary` as `/init` for `tests`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRequest {
    /// [`super::WIRE_VERSION`] of the test binary's `bpfcompat`.
    pub version: u32,
    /// The matrix of the kernel (from [`PlanCell::matrix`]).
    pub matrix: String,
    /// The kernel profile.
    pub kernel: String,
    /// The test binary.
    pub binary: PathBuf,
    /// The tests to run, in order, each with its limit in seconds.
    pub tests: Vec<(String, u64)>,
    /// Binaries to ship into the guest (with their shared libraries), by
    /// name: `/job/ship/<name>` there ([`super::SHIP_DIR`]).
    #[serde(default)]
    pub binaries: Vec<(String, PathBuf)>,
}

/// What one boot said about each of its tests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunResults {
    /// The guest's `uname -r`.
    pub release: String,
    /// Each test's result, by name.
    pub tests: BTreeMap<String, TestResult>,
    /// Why tests without a result have none (a panic, the guest's limit),
    /// with the end of the console.
    pub ended: String,
}

/// One test's result in a guest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestResult {
    /// It returned `()` or `Ok`.
    pub passed: bool,
    /// Its error or panic, as the guest said it.
    pub message: Option<String>,
    /// Why it failed, in words: the code, the kernel's words and the fix
    /// where libbpf's or the verifier's lines on the console name them, then
    /// the test's own error (and the console's end if it died).
    pub cause: String,
    /// Whether libbpf or the verifier spoke during the test.
    pub kernel_spoke: bool,
    /// The code those words decide, if any (`UNSUPPORTED_HELPER`).
    pub code: Option<String>,
}
