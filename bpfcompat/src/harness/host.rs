//! On the host: one trial per (test × kernel); the first trial of a kernel
//! to run boots one guest for every selected test of that kernel, and the
//! others read its results. Under nextest (one trial per process) each trial
//! boots its own guest.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};

use super::{KernelTest, registered};
use crate::cancel::Cancel;
use crate::config::{Config, find_config};
use crate::errors::InitramfsError;
use crate::guest::Initramfs;
use crate::kernel::{Cache, Mirrors, fetch};
use crate::matrix::{Matrix, Pin};
use crate::run::{Guest, boot_guest};
use crate::vm::{AccelChoice, AccelPolicy, AttemptEvent, Boot, Exit, find_qemu};
use crate::wire::{JOB_FILE, Job, Mode, Record, tail};

/// What one boot of a kernel said about each of its tests.
#[derive(Debug, Clone)]
struct KernelResults {
    release: String,
    tests: BTreeMap<String, (bool, Option<String>)>,
    /// Why tests without a result have none (panic, timeout, …) and the console.
    ended: String,
}

type Shared = Arc<Mutex<BTreeMap<String, Arc<OnceLock<Result<KernelResults, String>>>>>>;

/// One cell to run: its test, kernel and the kernel's pin.
struct Cell {
    test: &'static KernelTest,
    kernel: String,
    pin: Option<Pin>,
    unavailable: Option<String>,
}

impl Cell {
    fn name(&self) -> String {
        format!("{}::{}", self.test.name, self.kernel)
    }

    fn ignored(&self) -> bool {
        self.test.ignore || self.unavailable.is_some()
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
        if !args.is_filtered_out(&t) && !args.is_ignored(&t) && c.unavailable.is_none() {
            selected.entry(c.kernel.clone()).or_default().push(c.test);
        }
    }
    if !args.list {
        let skipped: BTreeSet<&String> = cells
            .iter()
            .filter_map(|c| c.unavailable.as_ref())
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

/// Every (test × kernel) cell; a test whose matrix cannot be loaded is one
/// failing trial instead.
fn plan(config: Option<&Config>) -> (Vec<Cell>, Vec<Trial>) {
    let mirrors = Mirrors::discover();
    let cache = Cache::discover();
    let default_matrix = match config.and_then(|c| c.matrix.as_ref().map(|m| (c, m))) {
        Some((_, m)) if m == "default" => m.clone(),
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
        for k in kernels {
            let pin = m.lock.get(&k).cloned();
            let unavailable = match (&pin, m.profile(&k)) {
                (_, None) => Some(format!("kernel `{k}` is not in the matrix {}", m.origin)),
                (None, _) => Some(format!(
                    "kernel `{k}` is not pinned (run `cargo bpfcompat kernels update`)"
                )),
                (Some(p), _) => match cache.as_ref().map(|c| c.lookup(&p.entry_key())) {
                    Err(e) => Some(e.to_string().replace('\n', " ")),
                    Ok(Ok(Some(_))) => None,
                    Ok(_) => mirrors
                        .get(&p.archive)
                        .err()
                        .map(|e| e.to_string().replace('\n', " ")),
                },
            };
            cells.push(Cell {
                test: t,
                kernel: k,
                pin,
                unavailable,
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
        if let Some(why) = &c.unavailable {
            return Err(format!("kernel {} unavailable: {why}", c.kernel).into());
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
        let result = cell.get_or_init(|| boot_kernel(&c.kernel, c.pin.as_ref(), &tests));
        verdict(c.test, &c.kernel, result)
    })
    .with_ignored_flag(ignored)
}

/// The trial's verdict from its kernel's results.
fn verdict(
    test: &KernelTest,
    kernel: &str,
    result: &Result<KernelResults, String>,
) -> Result<(), Failed> {
    let r = result
        .as_ref()
        .map_err(|e| Failed::from(format!("on {kernel}: {e}")))?;
    let expect_fail = test.expect_fail.contains(&kernel);
    match (r.tests.get(test.name), expect_fail) {
        (Some((true, _)), false) | (Some((false, _)), true) => Ok(()),
        (Some((true, _)), true) => Err(format!(
            "on {kernel} ({}): expected to fail (expect_fail lists {kernel}), but it passed: remove {kernel} from expect_fail",
            r.release
        )
        .into()),
        (Some((false, msg)), false) => Err(format!(
            "on {kernel} ({}): {}",
            r.release,
            msg.as_deref().unwrap_or("failed")
        )
        .into()),
        (None, _) => Err(format!("on {kernel} ({}): no result: {}", r.release, r.ended).into()),
    }
}

/// The process's accelerator policy (`auto`), decided once and shared by
/// every trial, so a KVM fallback happens and is said once.
fn accel_policy() -> &'static AccelPolicy {
    static POLICY: OnceLock<AccelPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let (policy, why_tcg) =
            AccelPolicy::new(AccelChoice::Auto).expect("auto never refuses to choose");
        if let Some(reason) = why_tcg {
            eprintln!("bpfcompat: using TCG (software emulation): {reason}");
        }
        policy
    })
}

/// Boots `kernel` with this binary as init and runs `tests` there.
fn boot_kernel(
    kernel: &str,
    pin: Option<&Pin>,
    tests: &[&KernelTest],
) -> Result<KernelResults, String> {
    let pin = pin.ok_or("not pinned")?;
    let cache = Cache::discover().map_err(|e| e.to_string())?;
    let image = fetch(
        pin,
        &Mirrors::discover(),
        &cache,
        &Cancel::new(),
        &mut |m| eprintln!("bpfcompat: {kernel}: {m}"),
    )
    .map_err(|e| e.to_string())?;
    let qemu = find_qemu().map_err(|e| e.to_string())?;
    let work = tempfile::Builder::new()
        .prefix("bpfcompat-test-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut initrd = work.path().join("initrd.cpio");
    guest_image(tests)
        .and_then(|img| img.write_private(&initrd))
        .map_err(|e| e.to_string())?;
    if !image.modules.is_empty() {
        let own = work.path().join("initrd-modules.cpio");
        Initramfs::with_modules(&initrd, &image.modules, &own).map_err(|e| e.to_string())?;
        initrd = own;
    }
    let timeout: u64 = 90
        + tests
            .iter()
            .map(|t| match t.timeout_secs {
                0 => 60,
                n => n,
            })
            .sum::<u64>();
    let guest = Guest {
        qemu: &qemu,
        kernel: &image,
        initrd: &initrd,
        work: work.path(),
        label: "guest",
        memory_mib: 512,
        cpus: 1,
        env: vec![format!("BPFCOMPAT_KERNEL={kernel}")],
        timeout: Duration::from_secs(timeout),
        retries: 2,
        accel: accel_policy(),
        cancel: &Cancel::new(),
    };
    let b = boot_guest(&guest, &mut |e| {
        if let AttemptEvent::FellBackToTcg { exit } = e {
            eprintln!(
                "bpfcompat: KVM does not work here ({exit}); falling back to TCG (software emulation)"
            );
        }
    })
    .map_err(|e| e.to_string())?
    .boot;
    Ok(results(&b, &image.release))
}

/// This binary as the guest's `/init`, with a job naming the tests to run.
fn guest_image(tests: &[&KernelTest]) -> Result<Initramfs, InitramfsError> {
    // /proc/self/exe still reads when the file was replaced by a rebuild.
    let mut img = Initramfs::with_init(std::path::Path::new("/proc/self/exe"))?;
    let job = Job {
        tests: tests.iter().map(|t| t.name.to_string()).collect(),
        ..Job::new(Mode::Load, 0)
    };
    img.file(
        JOB_FILE,
        0o644,
        serde_json::to_vec(&job).expect("jobs serialize"),
    );
    Ok(img)
}

/// What one boot said about each test, and why the others have no result.
fn results(b: &Boot, release: &str) -> KernelResults {
    let mut results = KernelResults {
        release: release.to_string(),
        tests: BTreeMap::new(),
        ended: String::new(),
    };
    for r in &b.records {
        match r {
            Record::Hello { kernel_release, .. } => results.release = kernel_release.clone(),
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
