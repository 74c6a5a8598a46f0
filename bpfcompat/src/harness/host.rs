//! On the host: one trial per (test × kernel); the first trial of a kernel
//! to run boots one guest for every selected test of that kernel, and the
//! others read its results. Under nextest (one trial per process) each trial
//! has its own guest, restored from the kernel's saved machine (see
//! [`super::boot`]).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};

use super::boot::boot_kernel;
use super::{KernelTest, registered};
use crate::config::{Config, find_config};
use crate::kernel::{Cache, Mirrors};
use crate::matrix::{Matrix, Pin};
use crate::vm::{Boot, Exit};
use crate::wire::{Record, tail};

/// What one boot of a kernel said about each of its tests.
#[derive(Debug, Clone)]
struct KernelResults {
    release: String,
    kernel_btf: Option<bool>,
    tests: BTreeMap<String, (bool, Option<String>)>,
    /// Each test's part of the console (from its mark to the next).
    consoles: BTreeMap<String, Vec<String>>,
    /// Why tests without a result have none (panic, timeout, …) and the console.
    ended: String,
}

type Shared = Arc<Mutex<BTreeMap<String, Arc<OnceLock<Result<KernelResults, String>>>>>>;

/// One cell to run: its test, kernel and the kernel's pin.
struct Cell {
    test: &'static KernelTest,
    kernel: String,
    pin: Option<Pin>,
    /// Why this cell cannot run at all (an unknown or unpinned kernel, or an
    /// unavailable required one): its trial fails with this.
    broken: Option<String>,
    /// Why this cell is skipped (an unavailable kernel the project allows).
    skipped: Option<String>,
}

impl Cell {
    fn name(&self) -> String {
        format!("{}::{}", self.test.name, self.kernel)
    }

    fn ignored(&self) -> bool {
        self.test.ignore || self.skipped.is_some()
    }

    fn runs(&self) -> bool {
        self.broken.is_none() && self.skipped.is_none()
    }
}

pub(crate) fn run() -> ExitCode {
    let args = Arguments::from_args();
    // Defaults from the project's configuration (bpfcompat.toml or Cargo
    // metadata), read as strictly as the CLI reads it: a broken file fails
    // every trial with its error instead of being ignored.
    let config = match std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|d| find_config(std::path::Path::new(&d)))
        .transpose()
    {
        Ok(c) => c.flatten(),
        Err(e) => {
            let trials = registered()
                .iter()
                .map(|t| failing(t.name.to_string(), format!("bpfcompat configuration: {e}")))
                .collect();
            return libtest_mimic::run(&args, trials).exit_code();
        }
    };
    let (cells, mut trials) = plan(config.as_ref());
    // Which trials this process will run, so one boot per kernel runs them all.
    let mut selected: BTreeMap<String, Vec<&'static KernelTest>> = BTreeMap::new();
    for c in &cells {
        let t = Trial::test(c.name(), || Ok(())).with_ignored_flag(c.ignored());
        if !args.is_filtered_out(&t) && !args.is_ignored(&t) && c.runs() {
            selected.entry(c.kernel.clone()).or_default().push(c.test);
        }
    }
    if !args.list {
        let skipped: BTreeSet<&String> = cells.iter().filter_map(|c| c.skipped.as_ref()).collect();
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

/// Every (test × kernel) cell; a test whose matrix cannot be loaded is one
/// failing trial instead.
fn plan(config: Option<&Config>) -> (Vec<Cell>, Vec<Trial>) {
    let mirrors = Mirrors::discover();
    let cache = Cache::discover();
    let default_matrix = match config.and_then(|c| c.matrix.as_ref().map(|m| (c, m))) {
        Some((_, m)) if crate::matrix::SHIPPED.contains(&m.as_str()) => m.clone(),
        Some((c, m)) => c.resolve(std::path::Path::new(m)).display().to_string(),
        None => "default".into(),
    };
    let configured_kernels = config.and_then(|c| c.kernels.clone());
    let mut matrices: BTreeMap<String, Result<Matrix, String>> = BTreeMap::new();
    let (mut cells, mut failed) = (Vec::new(), Vec::new());
    for t in registered() {
        let matrix_name = t
            .matrix
            .map_or_else(|| default_matrix.clone(), str::to_string);
        let m = matrices
            .entry(matrix_name.clone())
            .or_insert_with(|| Matrix::load(&matrix_name).map_err(|e| e.to_string()));
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                failed.push(failing(t.name.to_string(), format!("{}: {e}", t.name)));
                continue;
            }
        };
        let kernels: Vec<String> = match (t.kernels, &configured_kernels) {
            (Some(k), _) => k.iter().map(|s| s.to_string()).collect(),
            (None, Some(k)) => k.clone(),
            (None, None) => m.kernels.iter().map(|k| k.name.clone()).collect(),
        };
        let allow_unavailable = config.is_some_and(|c| c.allow_unavailable);
        for k in kernels {
            let pin = m.lock.get(&k).cloned();
            let required = match config.and_then(|c| c.required.as_ref()) {
                Some(required) => required.contains(&k),
                None => m.profile(&k).is_some_and(|p| p.required),
            };
            let unavailable = match (&pin, m.profile(&k)) {
                (_, None) => None,
                (None, _) => None,
                // Present is enough here: listing trials must not hash
                // every kernel (the trial's fetch checks the entry).
                (Some(p), _) => match cache.as_ref().map(|c| c.has(&p.entry_key())) {
                    Err(e) => Some(e.to_string()),
                    Ok(true) => None,
                    Ok(_) if p.own.is_some() => None,
                    Ok(_) => mirrors.get(&p.archive).err().map(|e| e.to_string()),
                },
            };
            let known: Vec<&str> = m.kernels.iter().map(|k| k.name.as_str()).collect();
            let (broken, skipped) = match (&pin, m.profile(&k), unavailable) {
                (_, None, _) => (
                    Some(format!(
                        "kernel `{k}` (in the kernels of `{}`) is not in the matrix {}; its kernels: {}",
                        t.name,
                        m.origin,
                        known.join(", ")
                    )),
                    None,
                ),
                (None, _, _) => (
                    Some(format!(
                        "kernel `{k}` is not pinned\n  (hint: run `cargo bpfcompat kernels update`)"
                    )),
                    None,
                ),
                (_, _, Some(why)) if required && !allow_unavailable => (
                    Some(format!(
                        "kernel {k} is required but cannot be had: {why}\n  (or set `allow_unavailable = true` in the project's bpfcompat configuration to skip it)"
                    )),
                    None,
                ),
                (_, _, Some(why)) => (None, Some(why.replace('\n', " "))),
                _ => (None, None),
            };
            cells.push(Cell {
                test: t,
                kernel: k,
                pin,
                broken,
                skipped,
            });
        }
    }
    (cells, failed)
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
        if let Some(why) = &c.broken {
            return Err(why.clone().into());
        }
        let cell = shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(c.kernel.clone())
            .or_default()
            .clone();
        let tests = selected
            .get(&c.kernel)
            .cloned()
            .unwrap_or_else(|| vec![c.test]);
        let result = cell.get_or_init(|| {
            let b = boot_kernel(&c.kernel, c.pin.as_ref(), &tests)?;
            Ok(results(&b.boot, &b.release))
        });
        verdict(c.test, &c.kernel, result)
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
    result: &Result<KernelResults, String>,
) -> Result<(), Failed> {
    let r = result
        .as_ref()
        .map_err(|e| Failed::from(format!("on {kernel}: {e}")))?;
    let expected = test.expect_fail.iter().find(|(k, _)| *k == kernel);
    if let Some((_, Some(want))) = expected
        && serde_json::from_value::<crate::classify::Code>(want.to_string().into()).is_err()
    {
        return Err(format!(
            "expect_fail names `{want}` for {kernel}, which is no failure code (docs/verdicts.md lists them, e.g. UNSUPPORTED_HELPER)"
        )
        .into());
    }
    let on = format!("on {kernel} ({})", r.release);
    match (r.tests.get(test.name), expected) {
        (Some((true, _)), None) => Ok(()),
        (Some((false, msg)), Some((_, want))) => {
            let why = cause(r, test.name, msg.as_deref()).replace('\n', " ");
            let got = classified(r, test.name, msg.as_deref());
            // A panic (an assertion), a hang or a crash is the test's own
            // failure, never an expected one.
            let own = msg.as_deref().is_some_and(|m| {
                ["panicked:", "timed out", "the test process"]
                    .iter()
                    .any(|p| m.starts_with(p))
            });
            match (got, want) {
                (Some(Some(got)), Some(want)) if got.as_str() == *want && !own => {}
                (_, None) if !own => {}
                (got, want) => {
                    let wanted = match want {
                        Some(w) => format!("with {w}"),
                        None => "with an error of the loader's, not a panic".to_string(),
                    };
                    let got = match got {
                        _ if own => format!("its own {}", msg.as_deref().unwrap_or("failure")),
                        Some(Some(code)) => code.as_str().to_string(),
                        Some(None) => "the kernel's words but no code they decide".to_string(),
                        None => "no cause the kernel's words name (a panic, an assertion, the test's own error)".to_string(),
                    };
                    return Err(format!(
                        "{on}: expected to fail {wanted} (expect_fail), but it failed with {got}: {why}"
                    )
                    .into());
                }
            }
            eprintln!(
                "bpfcompat: {}::{kernel} failed as expected {on}: {why}",
                test.name
            );
            Ok(())
        }
        (Some((true, _)), Some(_)) => Err(format!(
            "{on}: expected to fail (expect_fail lists {kernel}), but it passed: remove {kernel} from expect_fail"
        )
        .into()),
        (Some((false, msg)), None) => {
            Err(format!("{on}: {}", cause(r, test.name, msg.as_deref())).into())
        }
        (None, _) => Err(format!("{on}: no result: {}", r.ended).into()),
    }
}

/// What the kernel's words on the test's console say: `None` when there
/// are none (libbpf never spoke: a panic, an assertion), else the code they
/// decide, if any.
fn classified(
    r: &KernelResults,
    test: &str,
    error: Option<&str>,
) -> Option<Option<crate::classify::Code>> {
    let console = r.consoles.get(test).map(Vec::as_slice).unwrap_or(&[]);
    crate::classify::classify_log(
        console,
        error.unwrap_or("failed"),
        r.kernel_btf,
        Some(&r.release),
    )
    .map(|v| v.code)
}

/// Why a test failed: the classified cause when libbpf's words on the
/// console name one, then the test's own error; the test's console when
/// it timed out or died.
fn cause(r: &KernelResults, test: &str, error: Option<&str>) -> String {
    let error = error.unwrap_or("failed");
    let console = r.consoles.get(test).map(Vec::as_slice).unwrap_or(&[]);
    let mut out =
        match crate::classify::classify_log(console, error, r.kernel_btf, Some(&r.release)) {
            Some(v) => {
                let mut s = match v.code {
                    Some(code) => format!("{code}: {}", v.message),
                    None => format!("the verifier said: {}", v.message),
                };
                if let Some(fix) = v.remediation {
                    s.push_str(&format!("\n  fix: {fix}"));
                }
                s.push_str(&format!("\n  the test said: {error}"));
                s
            }
            None => error.to_string(),
        };
    let died = error.starts_with("timed out") || error.starts_with("the test process");
    if died && !console.is_empty() {
        let end = tail(console.to_vec(), 25).join("\n  ");
        out.push_str(&format!("\n  console during the test (end):\n  {end}"));
    }
    out
}

/// The console cut at the guest's marks: each test's lines, by name.
fn consoles_by_test(console: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in console.lines() {
        if let Some(at) = line.find(super::CONSOLE_MARK) {
            let name = line[at + super::CONSOLE_MARK.len()..].trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some(name) = &current {
            out.entry(name.clone()).or_default().push(line.to_string());
        }
    }
    out
}

/// What one boot said about each test, and why the others have no result.
fn results(b: &Boot, release: &str) -> KernelResults {
    let mut results = KernelResults {
        release: release.to_string(),
        kernel_btf: None,
        tests: BTreeMap::new(),
        consoles: consoles_by_test(&b.console),
        ended: String::new(),
    };
    for r in &b.records {
        match r {
            Record::Hello {
                kernel_release,
                kernel_btf,
                ..
            } => {
                results.release = kernel_release.clone();
                results.kernel_btf = Some(*kernel_btf);
            }
            Record::Test {
                name,
                passed,
                message,
                ..
            } => {
                results
                    .tests
                    .insert(name.clone(), (*passed, message.clone()));
            }
            _ => {}
        }
    }
    let console = tail(b.console.lines().map(str::to_string).collect(), 25).join("\n  ");
    results.ended = match &b.exit {
        Exit::Panic { line } => {
            format!("the kernel panicked ({line})\n  console (end):\n  {console}")
        }
        Exit::Timeout { after } => format!(
            "the guest ran past {}s\n  console (end):\n  {console}",
            after.as_secs()
        ),
        Exit::QemuFailed { status, stderr } => format!("QEMU failed ({status}): {}", stderr.trim()),
        _ if b.agent_started_ms.is_none() => {
            format!("the guest never started the tests\n  console (end):\n  {console}")
        }
        _ => format!("the guest ended early\n  console (end):\n  {console}"),
    };
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(passed: bool, error: &str, console: &[&str]) -> Result<KernelResults, String> {
        Ok(KernelResults {
            release: "5.10.0-46-cloud-amd64".into(),
            kernel_btf: Some(true),
            tests: BTreeMap::from([("t".to_string(), (passed, Some(error.to_string())))]),
            consoles: BTreeMap::from([(
                "t".to_string(),
                console.iter().map(|l| l.to_string()).collect(),
            )]),
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
        }))
    }

    /// libbpf's words for a helper the kernel lacks.
    const NO_HELPER: &[&str] = &[
        "libbpf: prog 'p': BPF program load failed: Invalid argument",
        "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --",
        "unknown func bpf_loop#181",
        "-- END PROG LOAD LOG --",
        "libbpf: prog 'p': failed to load: -22",
    ];

    #[test]
    fn an_expected_failure_must_be_the_kernels_and_of_the_named_cause() {
        const K: &str = "debian-11-5.10";
        let helper = results(false, "Invalid argument (os error 22)", NO_HELPER);
        let panic = results(false, "panicked: assertion failed: x == 1", &[]);
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
        let aya = results(false, "the BPF_PROG_LOAD syscall failed", &[]);
        assert!(verdict(plain, K, &aya).is_ok());
        assert!(verdict(plain, K, &panic).is_err());
        let panic_after_libbpf = results(false, "panicked: unwrap on an Err", NO_HELPER);
        assert!(verdict(plain, K, &panic_after_libbpf).is_err());
        assert!(verdict(named, K, &panic_after_libbpf).is_err());
        let typo = test(&[(K, Some("UNSUPORTED_HELPER"))]);
        let err = verdict(typo, K, &helper).unwrap_err();
        assert!(format!("{err:?}").contains("no failure code"), "{err:?}");
    }
}
