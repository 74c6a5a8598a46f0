//! On the host: one trial per (test × kernel). The installed
//! `cargo-bpfcompat` says which cells there are and boots the kernels (see
//! [`crate::wire::kernel_tests`]); the first trial of a kernel to run has
//! it boot one guest for every selected test of that kernel, and the others
//! read its results. Under nextest (one trial per process) each trial has
//! its own guest, restored from the kernel's saved machine.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DEFAULT_TIMEOUT_SECS, KernelTest, registered};
use crate::wire::WIRE_VERSION;
use crate::wire::kernel_tests::{Plan, PlanCell, PlanRequest, PlanTest, RunRequest, RunResults};

type Shared = Arc<Mutex<BTreeMap<String, Arc<OnceLock<Result<RunResults, CliError>>>>>>;

/// One cell to run: its test and what the plan says of it.
struct Cell {
    test: &'static KernelTest,
    plan: PlanCell,
}

impl Cell {
    fn name(&self) -> String {
        format!("{}::{}", self.test.name, self.plan.kernel)
    }

    fn ignored(&self) -> bool {
        self.test.ignore || self.plan.skipped.is_some()
    }

    fn runs(&self) -> bool {
        self.plan.broken.is_none() && self.plan.skipped.is_none()
    }
}

pub(crate) fn run() -> ExitCode {
    let args = Arguments::from_args();
    let tests = registered();
    let request = PlanRequest {
        version: WIRE_VERSION,
        manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        tests: tests
            .iter()
            .map(|t| PlanTest {
                name: t.name.to_string(),
                kernels: t.kernels.map(|k| k.iter().map(|s| s.to_string()).collect()),
                matrix: t.matrix.map(str::to_string),
            })
            .collect(),
    };
    let plan: Plan = match ask_cli("plan", &request) {
        Ok(p) => p,
        Err(e) => {
            let trials = tests
                .iter()
                .map(|t| failing(t.name.to_string(), e.to_string()));
            return libtest_mimic::run(&args, trials.collect()).exit_code();
        }
    };
    if let Some(e) = plan.config_error {
        let trials = tests
            .iter()
            .map(|t| failing(t.name.to_string(), e.to_string()));
        return libtest_mimic::run(&args, trials.collect()).exit_code();
    }
    let mut trials: Vec<Trial> = plan
        .failed
        .into_iter()
        .map(|(test, why)| failing(test, why))
        .collect();
    let cells: Vec<Cell> = plan
        .cells
        .into_iter()
        .filter_map(|c| {
            let test = *tests.iter().find(|t| t.name == c.test)?;
            Some(Cell { test, plan: c })
        })
        .collect();
    // Which trials this process will run, so one boot per kernel runs them all.
    let mut selected: BTreeMap<String, Vec<&'static KernelTest>> = BTreeMap::new();
    for c in &cells {
        let t = Trial::test(c.name(), || Ok(())).with_ignored_flag(c.ignored());
        if !args.is_filtered_out(&t) && !args.is_ignored(&t) && c.runs() {
            selected
                .entry(c.plan.kernel.clone())
                .or_default()
                .push(c.test);
        }
    }
    if !args.list {
        let skipped: BTreeSet<&String> = cells
            .iter()
            .filter_map(|c| c.plan.skipped.as_ref())
            .collect();
        for s in skipped {
            eprintln!("bpfcompat: ignored trials: {s}");
        }
    }
    let shared: Shared = Arc::default();
    let selected = Arc::new(selected);
    trials.extend(cells.into_iter().map(|c| trial(c, &shared, &selected)));
    libtest_mimic::run(&args, trials).exit_code()
}

fn failing(name: String, message: String) -> Trial {
    Trial::test(name, move || Err(message.into()))
}

/// The installed CLI: `BPFCOMPAT_CLI`, else `cargo-bpfcompat` on `PATH`.
fn cli() -> PathBuf {
    std::env::var_os("BPFCOMPAT_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo-bpfcompat".into())
}

/// Runs `cargo-bpfcompat bpfcompat kernel-test <what>` with `request` on
/// its stdin; its answer. Its stderr (progress, fetches) is the test's.
fn ask_cli<Q: Serialize, A: DeserializeOwned>(what: &str, request: &Q) -> Result<A, CliError> {
    let cli = cli();
    let not_installed = |error| CliError::NotInstalled {
        cli: cli.clone(),
        error,
    };
    let mut child = Command::new(&cli)
        .args(["bpfcompat", "kernel-test", what])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(not_installed)?;
    let body = serde_json::to_vec(request).expect("requests serialize");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    // The answer is a plan or a kernel's results: bounded (a program that
    // is not the CLI could answer without end).
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::Read::read_to_end(
            &mut std::io::Read::take(out, ANSWER_LIMIT + 1),
            &mut stdout,
        );
    }
    if stdout.len() as u64 > ANSWER_LIMIT {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CliError::TooLong { cli });
    }
    let status = child.wait().map_err(not_installed)?;
    if !status.success() {
        return Err(CliError::Failed {
            what: what.to_string(),
            status,
            said: String::from_utf8_lossy(&stdout).trim().to_string(),
            cli,
        });
    }
    serde_json::from_slice(&stdout).map_err(|error| CliError::Unreadable { cli, error })
}

/// The most a CLI's answer may be.
const ANSWER_LIMIT: u64 = 64 << 20;

/// Why the installed CLI gave no answer.
#[derive(Debug)]
enum CliError {
    /// This test binary's own path is unknown.
    NoBinary(std::io::Error),
    /// It could not be run.
    NotInstalled { cli: PathBuf, error: std::io::Error },
    /// It answered without end.
    TooLong { cli: PathBuf },
    /// It failed, and said this.
    Failed {
        cli: PathBuf,
        what: String,
        status: std::process::ExitStatus,
        said: String,
    },
    /// Its answer is of another release.
    Unreadable {
        cli: PathBuf,
        error: serde_json::Error,
    },
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::NoBinary(e) => write!(f, "cannot find this test binary: {e}"),
            CliError::NotInstalled { cli, error } => write!(
                f,
                "cannot run {} ({error}): #[bpfcompat::kernel_test] boots kernels with the installed cargo-bpfcompat\n  (hint: `cargo install --locked cargo-bpfcompat` of the same release as bpfcompat, or set BPFCOMPAT_CLI to its path)",
                cli.display()
            ),
            CliError::TooLong { cli } => write!(
                f,
                "{} answered more than {} MiB: not the bpfcompat CLI's answer",
                cli.display(),
                ANSWER_LIMIT >> 20
            ),
            CliError::Failed {
                cli,
                what,
                status,
                said,
            } => write!(
                f,
                "{} bpfcompat kernel-test {what} failed ({status}): {said}",
                cli.display()
            ),
            CliError::Unreadable { cli, error } => write!(
                f,
                "{} answered what this bpfcompat cannot read ({error}) (hint: use the cargo-bpfcompat of the same release as the `bpfcompat` your tests depend on)",
                cli.display()
            ),
        }
    }
}

/// The trial of one cell: the first trial of a kernel boots it for every
/// selected test of that kernel; the others read its results.
fn trial(
    c: Cell,
    shared: &Shared,
    selected: &Arc<BTreeMap<String, Vec<&'static KernelTest>>>,
) -> Trial {
    let (name, ignored) = (c.name(), c.ignored());
    let (shared, selected) = (shared.clone(), selected.clone());
    Trial::test(name, move || {
        if let Some(why) = &c.plan.broken {
            return Err(why.clone().into());
        }
        let cell = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(c.plan.kernel.clone())
            .or_default()
            .clone();
        let tests = selected
            .get(&c.plan.kernel)
            .cloned()
            .unwrap_or_else(|| vec![c.test]);
        let result = cell.get_or_init(|| {
            let binary = std::env::current_exe().map_err(CliError::NoBinary)?;
            let request = RunRequest {
                version: WIRE_VERSION,
                matrix: c.plan.matrix.clone(),
                kernel: c.plan.kernel.clone(),
                binary,
                tests: tests
                    .iter()
                    .map(|t| {
                        let secs = match t.timeout_secs {
                            0 => DEFAULT_TIMEOUT_SECS,
                            n => n,
                        };
                        (t.name.to_string(), secs)
                    })
                    .collect(),
                binaries: tests
                    .iter()
                    .flat_map(|t| t.bins.iter())
                    .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
            };
            ask_cli("run", &request)
        });
        verdict(c.test, &c.plan.kernel, result)
    })
    .with_ignored_flag(ignored)
}

/// The trial's verdict from its kernel's results. An expected failure
/// passes and says on stderr what it failed with; a failure gives the cause
/// libbpf's words show (code, the kernel's words, the fix) when a rule
/// names it, and the test's own error.
fn verdict(
    test: &KernelTest,
    kernel: &str,
    result: &Result<RunResults, CliError>,
) -> Result<(), Failed> {
    let r = result
        .as_ref()
        .map_err(|e| Failed::from(format!("on {kernel}: {e}")))?;
    let expected = test.expect_fail.iter().find(|(k, _)| *k == kernel);
    if let Some((_, Some(want))) = expected
        && !super::CODES.contains(want)
    {
        return Err(format!(
            "expect_fail names `{want}` for {kernel}, which is no failure code (docs/verdicts.md lists them, e.g. UNSUPPORTED_HELPER)"
        )
        .into());
    }
    let on = format!("on {kernel} ({})", r.release);
    let Some(t) = r.tests.get(test.name) else {
        return Err(format!("{on}: no result: {}", r.ended).into());
    };
    match (t.passed, expected) {
        (true, None) => Ok(()),
        (true, Some(_)) => Err(format!(
            "{on}: expected to fail (expect_fail lists {kernel}), but it passed: remove {kernel} from expect_fail"
        )
        .into()),
        (false, None) => Err(format!("{on}: {}", t.cause).into()),
        (false, Some((_, want))) => {
            let why = t.cause.replace('\n', " ");
            // A panic (an assertion), a hang or a crash is the test's own
            // failure, never an expected one.
            let message = t.message.as_deref().unwrap_or("failed");
            let own = ["panicked:", "timed out", "the test process"]
                .iter()
                .any(|p| message.starts_with(p));
            let matches = match want {
                Some(want) => t.code.as_deref() == Some(*want),
                None => true,
            };
            if own || !matches {
                let wanted = match want {
                    Some(w) => format!("with {w}"),
                    None => "with an error of the loader's, not a panic".to_string(),
                };
                let got = match (&t.code, t.kernel_spoke) {
                    _ if own => format!("its own {message}"),
                    (Some(code), _) => code.clone(),
                    (None, true) => "the kernel's words but no code they decide".to_string(),
                    (None, false) => {
                        "no cause the kernel's words name (the test's own error)".to_string()
                    }
                };
                return Err(format!(
                    "{on}: expected to fail {wanted} (expect_fail), but it failed with {got}: {why}"
                )
                .into());
            }
            eprintln!(
                "bpfcompat: {}::{kernel} failed as expected {on}: {why}",
                test.name
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::kernel_tests::TestResult;

    fn results(passed: bool, error: &str, code: Option<&str>) -> Result<RunResults, CliError> {
        let test = TestResult {
            passed,
            message: Some(error.to_string()),
            cause: error.to_string(),
            kernel_spoke: code.is_some(),
            code: code.map(str::to_string),
        };
        Ok(RunResults {
            release: "5.10.0-46-cloud-amd64".into(),
            tests: BTreeMap::from([("t".to_string(), test)]),
            ended: String::new(),
        })
    }

    fn test(expect_fail: &'static [(&'static str, Option<&'static str>)]) -> &'static KernelTest {
        Box::leak(Box::new(KernelTest {
            name: "t",
            run: || crate::harness::Outcome::Pass,
            kernels: None,
            matrix: None,
            expect_fail,
            ignore: false,
            timeout_secs: 0,
            bins: &[],
        }))
    }

    #[test]
    fn an_expected_failure_must_be_the_loaders_and_of_the_named_cause() {
        const K: &str = "debian-11-5.10";
        let helper = results(
            false,
            "Invalid argument (os error 22)",
            Some("UNSUPPORTED_HELPER"),
        );
        let panic = results(false, "panicked: assertion failed: x == 1", None);
        let named = test(&[(K, Some("UNSUPPORTED_HELPER"))]);
        assert!(verdict(named, K, &helper).is_ok());
        let err = verdict(named, K, &panic).unwrap_err();
        assert!(
            format!("{err:?}").contains("expected to fail with UNSUPPORTED_HELPER"),
            "{err:?}"
        );
        let other = test(&[(K, Some("CORE_RELOCATION"))]);
        let err = verdict(other, K, &helper).unwrap_err();
        assert!(
            format!("{err:?}").contains("failed with UNSUPPORTED_HELPER"),
            "{err:?}"
        );
        // A plain list: any error of the loader's (aya's have no libbpf
        // words), never a panic, even one after libbpf spoke.
        let plain = test(&[(K, None)]);
        assert!(verdict(plain, K, &helper).is_ok());
        let aya = results(false, "the BPF_PROG_LOAD syscall failed", None);
        assert!(verdict(plain, K, &aya).is_ok());
        assert!(verdict(plain, K, &panic).is_err());
        let panic_after_libbpf = results(
            false,
            "panicked: unwrap on an Err",
            Some("UNSUPPORTED_HELPER"),
        );
        assert!(verdict(plain, K, &panic_after_libbpf).is_err());
        assert!(verdict(named, K, &panic_after_libbpf).is_err());
        let typo = test(&[(K, Some("UNSUPORTED_HELPER"))]);
        let err = verdict(typo, K, &helper).unwrap_err();
        assert!(format!("{err:?}").contains("no failure code"), "{err:?}");
    }
}
