//! The runner: initramfs once, then one guest per kernel on a worker pool.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::boot::Guest;
use super::boot::launch::{Heard, Launch, WarmLaunch, launch};
use super::evidence;
use super::plan::*;
use crate::cancel::Cancel;
use crate::errors::{InitramfsError, RunError, VmError};
use crate::guest::Initramfs;
use crate::kernel::{Cache, CachedKernel, Mirrors, fetch};
use crate::matrix::Pin;
use crate::outcome::{KernelOutcome, KernelRun, Note, RunOutput};
use crate::vm::{Accel, AccelPolicy, AttemptEvent, Boot, Booted, Exit, find_qemu};
use crate::wire::{JOB_DIR, JOB_FILE, Job, JobCommand, JobObject, Record, tail};

/// Console lines kept in a report (the whole console is evidence).
const CONSOLE_TAIL: usize = 40;

/// Runs the plan; per-kernel trouble ends up in the kernel's [`KernelRun`],
/// only setup trouble is an error. Once `cancel` is set, running guests are
/// stopped and kernels not yet started are marked interrupted; what finished
/// keeps its verdicts.
pub fn run(
    plan: &Plan,
    mirrors: &Mirrors,
    cache: &Cache,
    cancel: &Cancel,
    on_event: &mut dyn FnMut(Event),
) -> Result<RunOutput, RunError> {
    let qemu = find_qemu()?;
    let mut notes = Vec::new();
    // What killed runs left in the cache goes first (theirs alone: a live
    // run's work in progress is named by its PID).
    for left in cache.sweep() {
        tracing::info!("removed {}, left by a run that was killed", left.display());
    }
    let (accel, why_tcg) = AccelPolicy::new(plan.settings.accel)?;
    if let Some(reason) = why_tcg {
        notes.push(Note::UsingTcg {
            reason: reason.clone(),
        });
        on_event(Event::UsingTcg { reason });
    }
    let accel = Arc::new(accel);

    let work = crate::private::tempdir("bpfcompat-run-", None).map_err(|source| VmError::Io {
        context: "cannot create a temporary directory".into(),
        source,
    })?;
    let started = Instant::now();
    let initrd = work.path().join("initrd.cpio");
    let base = work.path().join("base.cpio");
    let job_disk = work.path().join("job.img");
    let job_on_disk = build_initramfs(
        plan,
        &initrd,
        &base,
        plan.settings.warm.then_some(&*job_disk),
    )?;
    let initramfs_ms = started.elapsed().as_millis() as u64;
    let warm = job_on_disk.then(|| super::boot::warm::WarmRun {
        cache,
        qemu: &qemu,
        qemu_version: super::boot::warm::qemu_version(&qemu),
        job_disk: job_disk.clone(),
        accel: &accel,
        cancel,
        memory_mib: plan.settings.memory_mib,
        cpus: plan.settings.cpus,
        timeout: plan.settings.timeout,
    });

    let queue = Arc::new(Mutex::new((0..plan.kernels.len()).collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new(vec![None; plan.kernels.len()]));
    let (tx, rx) = mpsc::channel::<Event>();
    std::thread::scope(|s| {
        for _ in 0..plan.settings.jobs.max(1).min(plan.kernels.len().max(1)) {
            let (queue, results, tx, accel) =
                (queue.clone(), results.clone(), tx.clone(), accel.clone());
            let (qemu, initrd, base, work, warm) =
                (&qemu, &initrd, &base, work.path(), warm.as_ref());
            s.spawn(move || {
                loop {
                    let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                    else {
                        break;
                    };
                    let ctx = Guests {
                        plan,
                        mirrors,
                        cache,
                        qemu,
                        initrd,
                        base,
                        warm,
                        work,
                        accel: &accel,
                        tx: &tx,
                        cancel,
                    };
                    let mut r = run_kernel(&ctx, &plan.kernels[i]);
                    r.timings.initramfs_ms = initramfs_ms;
                    let _ = tx.send(Event::KernelFinished {
                        run: Box::new(r.clone()),
                    });
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
        drop(tx);
        for event in rx {
            if let Event::KvmFallback { exit } = &event {
                notes.push(Note::KvmFallback {
                    exit: exit.to_string(),
                });
            }
            on_event(event);
        }
    });
    let kernels = Arc::try_unwrap(results)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    Ok(RunOutput { kernels, notes })
}

/// The agent and its libraries (`base`), and with the job and its files
/// (`out`): one archive for all kernels. With `job_disk`, the job is also
/// written there, for warm guests; whether it was (a job larger than the
/// disk runs cold).
fn build_initramfs(
    plan: &Plan,
    out: &Path,
    base: &Path,
    job_disk: Option<&Path>,
) -> Result<bool, InitramfsError> {
    let agent = Initramfs::with_init(&plan.settings.agent)?;
    let mut agent_bytes = Vec::new();
    agent.write_to(&mut agent_bytes)?;
    let mut img = Initramfs::new();
    let mut objects = Vec::new();
    for (i, o) in plan.objects.iter().enumerate() {
        let path = format!("{JOB_DIR}/objects/{i}.bpf.o");
        img.host_file(&path, &o.path, 0o644)?;
        let mut btf = std::collections::BTreeMap::new();
        for (kernel, host) in &o.btf {
            let guest = format!("{JOB_DIR}/btf/{i}-{kernel}.btf");
            img.host_file(&guest, host, 0o644)?;
            btf.insert(kernel.clone(), guest);
        }
        objects.push(JobObject {
            name: o.name.clone(),
            path,
            fixups: o.fixups.clone(),
            btf,
            trigger: o.trigger.clone(),
        });
    }
    let mut commands = Vec::new();
    for (i, c) in plan.commands.iter().enumerate() {
        let file = c
            .binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bin = format!("{JOB_DIR}/bin/{i}/{file}");
        img.executable_with_libraries_under(&bin, &c.binary, crate::wire::JOB_ROOT)?;
        let mut env = std::collections::BTreeMap::from([("BPFCOMPAT_BIN".to_string(), bin)]);
        if let Some(a) = &c.artifact {
            let guest = format!("{JOB_DIR}/artifacts/{i}.bpf.o");
            img.host_file(&guest, a, 0o644)?;
            env.insert("BPFCOMPAT_ARTIFACT".into(), guest);
        }
        commands.push(JobCommand {
            name: c.name.clone(),
            argv: c.argv.clone(),
            env,
            expect_exit: c.expect_exit,
            timeout_secs: c.timeout.as_secs().max(1),
            ready: c.ready.clone(),
            grace_ms: c.grace.as_millis() as u64,
            trigger: plan.settings.trigger.clone(),
            count_runs: plan.settings.mode == crate::wire::Mode::Fire,
            trace: plan.settings.trace_loaders,
        });
    }
    let job = Job {
        trigger: plan.settings.trigger.clone(),
        strict_maps: plan.settings.strict_maps,
        commands,
        objects,
        ..Job::new(
            plan.settings.mode,
            plan.settings.object_timeout.as_secs().max(1),
        )
    };
    img.file(
        JOB_FILE,
        0o644,
        serde_json::to_vec(&job).expect("jobs serialize"),
    );
    let mut job_bytes = Vec::new();
    img.write_to(&mut job_bytes)?;
    fits_in_memory(job_bytes.len() as u64, plan.settings.memory_mib)?;
    let on_disk = match job_disk {
        Some(disk) if job_bytes.len() as u64 <= crate::guest::job_disk::CAPACITY => {
            crate::guest::job_disk::write(disk, &job_bytes).map_err(InitramfsError::Write)?;
            true
        }
        _ => false,
    };
    // The kernel unpacks concatenated archives in turn.
    write_private(base, &agent_bytes)?;
    write_private(out, &[agent_bytes, job_bytes].concat())?;
    Ok(on_disk)
}

/// A guest unpacks its job into memory and then loads from it: a job past
/// a quarter of the guest's memory is refused before any boot (a 250 MiB
/// object in a 512 MiB guest panicked it, and took a good saved machine).
fn fits_in_memory(job_bytes: u64, memory_mib: u32) -> Result<(), InitramfsError> {
    let job_mib = job_bytes.div_ceil(1 << 20);
    match job_mib * 4 <= u64::from(memory_mib) {
        true => Ok(()),
        false => Err(InitramfsError::TooLarge {
            job_mib,
            memory_mib,
            needed_mib: job_mib * 4,
        }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), InitramfsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(InitramfsError::Write)
}

/// What every guest of a run shares: the plan, where kernels come from, the
/// one initramfs, the accelerator policy and the event channel.
struct Guests<'a> {
    plan: &'a Plan,
    mirrors: &'a Mirrors,
    cache: &'a Cache,
    qemu: &'a Path,
    /// The agent and the job, for cold guests.
    initrd: &'a Path,
    /// The agent alone, for warm guests (their job comes on the job disk).
    base: &'a Path,
    /// Set when guests are restored from saved machines.
    warm: Option<&'a super::boot::warm::WarmRun<'a>>,
    work: &'a Path,
    accel: &'a AccelPolicy,
    tx: &'a mpsc::Sender<Event>,
    cancel: &'a Cancel,
}

impl Guests<'_> {
    fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }
}

fn run_kernel(ctx: &Guests, target: &KernelTarget) -> KernelRun {
    let mut run = KernelRun::new(&target.profile.name, target.profile.required);
    run.timings.started_at = Some(crate::outcome::now_rfc3339());
    run.package = target.pin.as_ref().map(|p| p.package.clone());
    run.version = target.pin.as_ref().map(|p| p.version.clone());
    run.command_expect = ctx
        .plan
        .commands
        .iter()
        .map(|c| (c.name.clone(), c.expect_exit))
        .collect();
    if let Some(signal) = ctx.cancel.signal() {
        run.outcome = KernelOutcome::Interrupted { signal };
        return run;
    }
    let Some(pin) = &target.pin else {
        run.outcome = KernelOutcome::Infra {
            reason: "not pinned in the lock (hint: run `cargo bpfcompat kernels update`)".into(),
        };
        return run;
    };
    // In use until this kernel's guest is done: `kernels prune` leaves it.
    let _in_use = match ctx.cache.hold(&pin.entry_key()) {
        Ok(h) => h,
        Err(e) => {
            run.outcome = KernelOutcome::Infra {
                reason: e.to_string(),
            };
            return run;
        }
    };
    let fetch_started = Instant::now();
    let mut kernel = match fetch_kernel(ctx, &run.kernel, pin) {
        Ok(k) => k,
        Err(outcome) => {
            run.outcome = outcome;
            return run;
        }
    };
    run.timings.fetch_ms = fetch_started.elapsed().as_millis() as u64;
    run.release = Some(kernel.release.clone());
    if let Some(index) = ctx.cache.function_index(&pin.entry_key()) {
        run.module_targets = crate::placeholders::in_modules(&index, &ctx.plan.objects);
        ship_target_modules(ctx, &mut run, pin, &mut kernel);
    }
    if let Some(config) = &kernel.config {
        run.kernel_config = std::fs::read_to_string(config)
            .map(|t| crate::kernel::config::bpf_options(&t))
            .unwrap_or_default();
    }
    let booted = boot_kernel(ctx, &mut run, &kernel);
    let booted = match booted {
        Ok(b) => b,
        Err(e) => {
            run.outcome = KernelOutcome::Infra {
                reason: e.to_string(),
            };
            return run;
        }
    };
    run.accel = match booted.accel {
        Accel::Kvm => "kvm".into(),
        Accel::Tcg => "tcg".into(),
    };
    run.retries = booted
        .retried
        .iter()
        .map(|(n, exit)| format!("attempt {n}: {} before the agent started", exit))
        .collect();
    let boot = booted.boot;
    finish(
        &mut run,
        boot,
        ctx.plan.objects.len() + ctx.plan.commands.len(),
    );
    run
}

/// The modules that hold the run's targets on this kernel (and what they
/// need) join the guest's, as a host where the program runs has them
/// loaded. A module that cannot be had leaves its targets without a
/// verdict (`module_targets`), with the reason.
fn ship_target_modules(ctx: &Guests, run: &mut KernelRun, pin: &Pin, kernel: &mut CachedKernel) {
    let mut wanted: Vec<String> = run.module_targets.values().cloned().collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return;
    }
    let name = run.kernel.clone();
    let fetched = crate::kernel::extra_modules(
        pin,
        ctx.mirrors,
        ctx.cache,
        ctx.cancel,
        &mut |m| {
            ctx.send(Event::Fetch {
                kernel: name.clone(),
                event: m,
            })
        },
        &wanted,
    );
    match fetched {
        Ok(paths) => {
            kernel.modules.extend(paths);
            run.target_modules = wanted;
        }
        Err(e) => run.target_modules_error = Some(e.to_string()),
    }
}

/// The kernel from the cache, fetched when needed; a failure is the
/// kernel's outcome.
fn fetch_kernel(ctx: &Guests, name: &str, pin: &Pin) -> Result<CachedKernel, KernelOutcome> {
    ctx.send(Event::KernelStarted {
        kernel: name.to_string(),
    });
    fetch(pin, ctx.mirrors, ctx.cache, ctx.cancel, &mut |m| {
        ctx.send(Event::Fetch {
            kernel: name.to_string(),
            event: m,
        })
    })
    .map_err(|e| match ctx.cancel.signal() {
        // The flag is never cleared, so a cancelled download sees it set.
        Some(signal) => KernelOutcome::Interrupted { signal },
        // Only a kernel that cannot be had may be forgiven by
        // --allow-unavailable; integrity and cache trouble may not.
        None if e.is_unavailable() => KernelOutcome::Unavailable {
            reason: e.to_string(),
        },
        None => KernelOutcome::Infra {
            reason: e.to_string(),
        },
    })
}

/// Launches the kernel's guest (warm or cold, see [`super::boot::launch`])
/// until the agent runs or it gives up, keeping evidence of every boot.
fn boot_kernel(
    ctx: &Guests,
    run: &mut KernelRun,
    kernel: &CachedKernel,
) -> Result<Booted, crate::errors::VmError> {
    let name = run.kernel.clone();
    let l = Launch {
        name: &name,
        cold: Guest {
            qemu: ctx.qemu,
            kernel,
            initrd: ctx.initrd,
            memory_mib: ctx.plan.settings.memory_mib,
            cpus: ctx.plan.settings.cpus,
            env: guest_env(&name),
            timeout: ctx.plan.settings.timeout,
            retries: ctx.plan.settings.retries,
            accel: ctx.accel,
            cancel: ctx.cancel,
        },
        work: ctx.work,
        warm: ctx.warm.map(|w| WarmLaunch {
            run: w,
            base: ctx.base,
            identity: None,
            kind: "agent",
        }),
        make_cold: None,
    };
    let keep = |n: u32, boot: &Boot, run: &mut KernelRun| {
        if let Some(dir) = &ctx.plan.settings.evidence {
            match evidence::write(dir, &name, n, boot, kernel.config.as_deref()) {
                Ok(d) => run.evidence = Some(d),
                Err(error) => ctx.send(Event::EvidenceNotWritten {
                    kernel: name.clone(),
                    error,
                }),
            }
        }
    };
    let launched = launch(&l, &mut |heard| match heard {
        Heard::Run(e) => ctx.send(e),
        Heard::Restored(boot) => keep(1, boot, run),
        Heard::Attempt(AttemptEvent::Starting { n }) => ctx.send(Event::BootAttempt {
            kernel: name.clone(),
            n,
        }),
        Heard::Attempt(AttemptEvent::Ended { n, boot }) => keep(n, boot, run),
        Heard::Attempt(AttemptEvent::FellBackToTcg { exit }) => {
            ctx.send(Event::KvmFallback { exit: exit.clone() })
        }
    })?;
    run.restored = launched.restored;
    run.cold_reason = launched.cold_reason;
    Ok(launched.booted)
}

/// `key=value` kernel parameters reach the guest's init as environment:
/// the profile name, and the agent's fault-injection test hook when set.
fn guest_env(kernel: &str) -> Vec<String> {
    let mut env = vec![format!("BPFCOMPAT_KERNEL={kernel}")];
    if let Ok(fault) = std::env::var("BPFCOMPAT_AGENT_FAULT") {
        env.push(format!("BPFCOMPAT_AGENT_FAULT={fault}"));
    }
    env
}

/// Turns the final boot into the kernel's outcome and reports.
fn finish(run: &mut KernelRun, b: Boot, expected_objects: usize) {
    run.console_tail = tail(
        b.console.lines().map(str::to_string).collect(),
        CONSOLE_TAIL,
    );
    run.malformed_records = b.malformed;
    run.foreign_records = b.foreign;
    run.foreign_record_count = b.foreign_count;
    run.qemu_argv = b.argv;
    let mut agent_error = None;
    for r in b.records {
        match r {
            Record::Hello {
                kernel_release,
                kernel_btf,
                lsm,
                modules_not_loaded,
                ..
            } => {
                run.release = Some(kernel_release);
                run.kernel_btf = Some(kernel_btf);
                run.lsm = lsm;
                run.modules_not_loaded = modules_not_loaded;
            }
            Record::Object(o) => run.objects.push(*o),
            Record::Command(c) => run.commands.push(*c),
            // Test-framework records come from test binaries, not the agent.
            Record::Test { .. } => {}
            Record::Done { .. } | Record::AwaitingJob { .. } => {}
            Record::AgentError { message } => agent_error = Some(message),
            Record::NoJobDisk { device } => {
                agent_error = Some(crate::guest::init::no_job_disk_text(&device))
            }
        }
    }
    if let Some(start) = b.agent_started_ms {
        run.timings.boot_ms = start;
        let done = b.done_ms.unwrap_or(b.total_ms);
        run.timings.validate_ms = done.saturating_sub(start);
        run.timings.shutdown_ms = b.total_ms.saturating_sub(done);
    }
    let started = b.agent_started_ms.is_some();
    run.outcome = match (b.exit, started) {
        (_, true) if agent_error.is_some() => KernelOutcome::Infra {
            reason: format!("the agent failed: {}", agent_error.unwrap_or_default()),
        },
        (Exit::PoweredOff, true) if run.objects.len() + run.commands.len() == expected_objects => {
            KernelOutcome::Completed
        }
        (Exit::PoweredOff, true) => KernelOutcome::Infra {
            reason: format!(
                "the guest powered off after {} of {expected_objects} objects and commands",
                run.objects.len() + run.commands.len()
            ),
        },
        (Exit::Panic { line }, true) => KernelOutcome::Panic { line },
        (Exit::Timeout { after }, true) => KernelOutcome::Timeout {
            after_secs: after.as_secs(),
        },
        (Exit::Interrupted { signal }, _) => KernelOutcome::Interrupted { signal },
        (e, _) => KernelOutcome::Infra {
            reason: format!("{} before the agent started", e),
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_past_a_quarter_of_the_guests_memory_is_refused_before_any_boot() {
        assert!(fits_in_memory(20 << 20, 512).is_ok());
        assert!(fits_in_memory(128 << 20, 512).is_ok());
        let e = fits_in_memory(250 << 20, 512).unwrap_err().to_string();
        assert!(
            e.contains("250 MiB") && e.contains("--memory to at least 1000"),
            "{e}"
        );
    }
    use crate::wire::ObjectReport;

    fn boot(exit: Exit, records: Vec<Record>, started: bool) -> Boot {
        Boot {
            exit,
            console: "line 1\nline 2\n".into(),
            records,
            malformed: Vec::new(),
            foreign: Vec::new(),
            foreign_count: 0,
            argv: Vec::new(),
            agent_started_ms: started.then_some(2000),
            done_ms: started.then_some(2500),
            total_ms: 2600,
        }
    }

    fn hello() -> Record {
        Record::Hello {
            kernel_release: "6.1.0-9-cloud-amd64".into(),
            kernel_btf: true,
            lsm: Some("capability,bpf".into()),
            uptime_ms: 1900,
            modules_not_loaded: Vec::new(),
        }
    }

    fn object(name: &str) -> Record {
        Record::Object(Box::new(ObjectReport {
            object: name.into(),
            ..ObjectReport::default()
        }))
    }

    fn finished(b: Boot, expected: usize) -> KernelRun {
        let mut run = KernelRun::new("debian-12-6.1", true);
        finish(&mut run, b, expected);
        run
    }

    #[test]
    fn a_whole_job_completes_with_its_timings() {
        let run = finished(boot(Exit::PoweredOff, vec![hello(), object("a")], true), 1);
        assert_eq!(run.outcome, KernelOutcome::Completed);
        assert_eq!(run.release.as_deref(), Some("6.1.0-9-cloud-amd64"));
        assert_eq!(run.kernel_btf, Some(true));
        assert_eq!(run.lsm.as_deref(), Some("capability,bpf"));
        assert_eq!(
            (
                run.timings.boot_ms,
                run.timings.validate_ms,
                run.timings.shutdown_ms
            ),
            (2000, 500, 100)
        );
        assert_eq!(run.console_tail, ["line 1", "line 2"]);
    }

    #[test]
    fn a_short_job_a_panic_and_a_dead_guest_are_told_apart() {
        let short = finished(boot(Exit::PoweredOff, vec![hello(), object("a")], true), 2);
        assert!(
            matches!(&short.outcome, KernelOutcome::Infra { reason } if reason.contains("1 of 2")),
            "{:?}",
            short.outcome
        );
        let line = "Kernel panic - not syncing: x".to_string();
        let panic = finished(
            boot(Exit::Panic { line: line.clone() }, vec![hello()], true),
            1,
        );
        assert_eq!(panic.outcome, KernelOutcome::Panic { line });
        let dead = finished(boot(Exit::PoweredOff, vec![], false), 1);
        assert!(
            matches!(&dead.outcome, KernelOutcome::Infra { reason } if reason.contains("before the agent started")),
            "{:?}",
            dead.outcome
        );
        let stopped = finished(
            boot(
                Exit::Interrupted { signal: 15 },
                vec![hello(), object("a")],
                true,
            ),
            2,
        );
        assert_eq!(stopped.outcome, KernelOutcome::Interrupted { signal: 15 });
        assert_eq!(stopped.objects.len(), 1, "finished objects are kept");
    }
}
