//! Booting a kernel for a test binary's trials: the binary is the guest's
//! `/init` and the job names the tests to run. A warm guest restores the
//! kernel's saved harness machine (whose `/init` is the build that saved
//! it) and is sent this build on the job disk; a cold one boots with this
//! build in its initramfs.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::guest::{Initramfs, job_disk};
use crate::kernel::{Cache, CachedKernel, Mirrors, fetch};
use crate::matrix::Pin;
use crate::run::boot::launch::{Heard, Launch, WarmLaunch, launch};
use crate::run::boot::warm::{WarmRun, qemu_version};
use crate::run::{Event, Guest};
use crate::vm::{AccelChoice, AccelPolicy, AttemptEvent, Boot, find_qemu};
use crate::wire::{JOB_FILE, JOB_PROGRAM, JOB_ROOT, Job, Mode, SHIP_DIR, WIRE_VERSION};

/// Guest memory and vCPUs of a test guest.
const MEMORY_MIB: u32 = 512;
const CPUS: u32 = 1;

/// A kernel's guest after the tests ran.
pub(super) struct Booted {
    pub boot: Boot,
    /// The kernel's release as the cache knows it (the guest's hello says
    /// it too).
    pub release: String,
}

/// Boots `kernel` with the test binary `binary` as `/init` for `tests`
/// (each with its limit in seconds): warm unless `BPFCOMPAT_COLD` is set or
/// the saved machine cannot be had (said on stderr), else cold.
pub(super) fn boot_kernel(
    kernel: &str,
    pin: Option<&Pin>,
    binary: &Path,
    tests: &[(String, u64)],
    shipped: &[(String, std::path::PathBuf)],
) -> Result<Booted, String> {
    let pin = pin.ok_or("not pinned")?;
    let cache = Cache::discover().map_err(|e| e.to_string())?;
    // In use until the guest is done: `kernels prune` leaves it.
    let _in_use = cache.hold(&pin.entry_key()).map_err(|e| e.to_string())?;
    let image = fetch(
        pin,
        &Mirrors::discover(),
        &cache,
        &Cancel::new(),
        &mut |m| {
            if m.is_milestone() {
                eprintln!("bpfcompat: {kernel}: {m}");
            }
        },
    )
    .map_err(|e| e.to_string())?;
    let qemu = find_qemu().map_err(|e| e.to_string())?;
    let work = crate::private::tempdir("bpfcompat-test-", None).map_err(|e| e.to_string())?;
    let g = TestGuest {
        kernel,
        image: &image,
        qemu: &qemu,
        work: work.path(),
        timeout: timeout(tests),
        env: vec![format!("BPFCOMPAT_KERNEL={kernel}")],
        job: job(tests),
        shipped,
    };
    let init = Initramfs::with_init(binary).map_err(|e| e.to_string())?;
    Ok(Booted {
        boot: launch_guest(&g, &cache, &init)?,
        release: image.release.clone(),
    })
}

/// What a test guest is, warm or cold.
struct TestGuest<'a> {
    kernel: &'a str,
    image: &'a CachedKernel,
    qemu: &'a Path,
    work: &'a Path,
    timeout: Duration,
    env: Vec<String>,
    /// `/job/job.json`.
    job: Vec<u8>,
    /// Binaries shipped for the tests, by name.
    shipped: &'a [(String, std::path::PathBuf)],
}

/// Adds the shipped binaries to a job's archive: `/job/ship/<name>`, their
/// libraries below the job's root. A name is a file name, nothing more.
fn ship(img: &mut Initramfs, shipped: &[(String, std::path::PathBuf)]) -> Result<(), String> {
    for (name, path) in shipped {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("`{name}` is no binary name"));
        }
        img.executable_with_libraries_under(&format!("{SHIP_DIR}/{name}"), path, JOB_ROOT)
            .map_err(|e| format!("cannot ship {name}: {e}"))?;
    }
    Ok(())
}

/// `BPFCOMPAT_COLD=1`: every guest boots from scratch (as `--cold`).
fn cold_asked() -> bool {
    std::env::var_os("BPFCOMPAT_COLD").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The guest's limit: boot, then each test's own.
fn timeout(tests: &[(String, u64)]) -> Duration {
    Duration::from_secs(90 + tests.iter().map(|(_, secs)| secs).sum::<u64>())
}

/// The job naming the tests to run.
fn job(tests: &[(String, u64)]) -> Vec<u8> {
    let job = Job {
        tests: tests.iter().map(|(name, _)| name.clone()).collect(),
        ..Job::new(Mode::Load, 0)
    };
    serde_json::to_vec(&job).expect("jobs serialize")
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

/// Launches the test guest (see [`crate::run::boot::launch`]): warm unless
/// `BPFCOMPAT_COLD` is set or the saved machine cannot be had (said on
/// stderr), else cold with this build as `/init`, the job and the kernel's
/// modules in the initramfs.
fn launch_guest(g: &TestGuest, cache: &Cache, init: &Initramfs) -> Result<Boot, String> {
    let cold_initrd = g.work.join("initrd.cpio");
    let make_cold = || {
        let mut img = init.clone();
        img.file(JOB_FILE, 0o644, g.job.clone());
        ship(&mut img, g.shipped)?;
        img.write_private(&cold_initrd).map_err(|e| e.to_string())
    };
    let cancel = Cancel::new();
    let warm = match cold_asked() {
        true => None,
        false => match warm_parts(g, cache, init, &cancel) {
            Ok(parts) => Some(parts),
            Err(why) => {
                eprintln!("bpfcompat: {}: booting cold: {why}", g.kernel);
                None
            }
        },
    };
    let l = Launch {
        name: g.kernel,
        cold: Guest {
            qemu: g.qemu,
            kernel: g.image,
            initrd: &cold_initrd,
            memory_mib: MEMORY_MIB,
            cpus: CPUS,
            env: g.env.clone(),
            timeout: g.timeout,
            retries: 2,
            accel: accel_policy(),
            cancel: &cancel,
        },
        work: g.work,
        warm: warm.as_ref().map(|(run, base, identity)| WarmLaunch {
            run,
            base,
            identity: Some(identity.clone()),
            kind: "harness",
        }),
        make_cold: Some(&make_cold),
    };
    let launched = launch(&l, &mut |heard| match heard {
        Heard::Run(Event::Saving { kernel }) => {
            eprintln!("bpfcompat: {kernel}: saving its machine for warm guests")
        }
        Heard::Run(Event::Cold { kernel, reason }) => {
            eprintln!("bpfcompat: {kernel}: booting cold: {reason}")
        }
        Heard::Attempt(AttemptEvent::FellBackToTcg { exit }) => eprintln!(
            "bpfcompat: KVM does not work here ({exit}); falling back to TCG (software emulation)"
        ),
        _ => {}
    })
    .map_err(|e| e.to_string())?;
    Ok(launched.booted.boot)
}

/// What restoring the kernel's saved harness machine takes: the run's warm
/// settings with this build and the job on a job disk, the machine's
/// initramfs (any build's: it holds this build's libraries and the
/// kernel's modules, and each job brings the binary itself) and its
/// identity.
fn warm_parts<'a>(
    g: &TestGuest<'a>,
    cache: &'a Cache,
    init: &Initramfs,
    cancel: &'a Cancel,
) -> Result<(WarmRun<'a>, std::path::PathBuf, String), String> {
    let base = g.work.join("base.cpio");
    init.write_private(&base).map_err(|e| e.to_string())?;
    let mut init = init.clone();
    let binary = init.take("/init").ok_or("the initramfs has no /init")?;
    let mut rest = Vec::new();
    init.write_to(&mut rest).map_err(|e| e.to_string())?;
    // BLAKE3: test binaries are debug builds, where sha256 is slow.
    let mut identity = blake3::Hasher::new();
    identity.update(
        format!(
            "harness {} wire {WIRE_VERSION}\n",
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    identity.update(&rest);
    for m in &g.image.modules {
        identity.update(&std::fs::read(m).map_err(|e| format!("{}: {e}", m.display()))?);
    }
    let identity = identity.finalize().to_hex().to_string();
    let mut job = Initramfs::new();
    job.file(JOB_FILE, 0o644, g.job.clone());
    job.file(JOB_PROGRAM, 0o755, binary);
    ship(&mut job, g.shipped)?;
    let mut archive = Vec::new();
    job.write_to(&mut archive).map_err(|e| e.to_string())?;
    let disk = g.work.join("job.img");
    job_disk::write(&disk, &archive).map_err(|e| e.to_string())?;
    let run = WarmRun {
        cache,
        qemu: g.qemu,
        qemu_version: qemu_version(g.qemu),
        job_disk: disk,
        accel: accel_policy(),
        cancel,
        memory_mib: MEMORY_MIB,
        cpus: CPUS,
        timeout: g.timeout,
    };
    Ok((run, base, identity))
}
