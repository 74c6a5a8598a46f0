//! How much a validation costs on top of booting a kernel at all.
//!
//! On one kernel (`BPFCOMPAT_BENCH_KERNEL`, default `debian-12-6.1`), each
//! measured `BPFCOMPAT_BENCH_RUNS` times (default 3, median kept):
//! - the floor: the kernel booting a busybox `/init` that powers off at once;
//! - the floor with the kernel's guest modules appended to the initramfs and
//!   loaded before power-off (what every guest pays for them; target <= 1.10x);
//! - one object validated by bpfcompat (guest time: boot, validate, shutdown);
//! - sixteen objects validated in the same boot;
//! - warm: the kernel's saved machine restored (its restore alone, and one
//!   and sixteen objects), after one run that saved it.
//!
//! It prints the ratios against their targets (one object <= 1.25x the floor,
//! sixteen objects <= 1.5x one object, a warm restore <= 0.3x the floor)
//! and this host process's peak RSS
//! (target < 200 MB). The engine runs in this process, so that RSS is the
//! host side of a run. Run: `cargo bench -p cargo-bpfcompat --bench guest_overhead`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bpfcompat_engine::guest::Initramfs;
use bpfcompat_engine::kernel::{Cache, Mirrors, fetch};
use bpfcompat_engine::matrix::Matrix;
use bpfcompat_engine::run::{KernelTarget, ObjectInput, Plan, Settings};
use bpfcompat_engine::vm::{Accel, AccelChoice, BootSpec, boot, find_qemu, probe_kvm};

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let kernel = std::env::var("BPFCOMPAT_BENCH_KERNEL").unwrap_or_else(|_| "debian-12-6.1".into());
    let runs: usize = std::env::var("BPFCOMPAT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        eprintln!(
            "guest_overhead: /bin/busybox is missing (apt-get install busybox-static); nothing measured"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let objects = compile_objects(work.path(), 16);
    let matrix = Matrix::load("default").unwrap();
    let profile = matrix
        .profile(&kernel)
        .unwrap_or_else(|| panic!("no kernel {kernel}"))
        .clone();
    let pin = matrix.lock.get(&kernel).cloned();
    let cached = fetch(
        pin.as_ref().unwrap(),
        &Mirrors::discover(),
        &Cache::discover().unwrap(),
        &bpfcompat_engine::cancel::Cancel::new(),
        &mut |m| eprintln!("{m}"),
    )
    .unwrap();
    let accel = if probe_kvm().is_ok() {
        Accel::Kvm
    } else {
        Accel::Tcg
    };

    // The floor, and the floor with the guest modules loaded.
    let qemu = find_qemu().unwrap();
    let busybox_boot = |name: &str, init: String, modules: &[PathBuf]| {
        let base = work.path().join(format!("{name}.base.cpio"));
        let mut img = Initramfs::new();
        img.host_file("/bin/busybox", busybox, 0o755).unwrap();
        img.file("/init", 0o755, init.into_bytes());
        img.write_to(std::fs::File::create(&base).unwrap()).unwrap();
        let initrd = if modules.is_empty() {
            base
        } else {
            let initrd = work.path().join(format!("{name}.cpio"));
            Initramfs::with_modules(&base, modules, &initrd).unwrap();
            initrd
        };
        median(
            (0..runs)
                .map(|_| {
                    let b = busybox_boot_once(&qemu, &cached.vmlinuz, &initrd, accel);
                    // `lsmod` lists each module the guest loaded on the console.
                    for m in modules.iter().filter_map(|m| m.file_stem()) {
                        let m = m.to_string_lossy();
                        let listed = b
                            .console
                            .lines()
                            .any(|l| l.split_whitespace().next() == Some(&*m));
                        assert!(listed, "{m} did not load:\n{}", b.console);
                    }
                    b.total_ms
                })
                .collect(),
        )
    };
    let poweroff = "/bin/busybox poweroff -f\n";
    let floor = busybox_boot("floor", format!("#!/bin/busybox sh\n{poweroff}"), &[]);
    // Twice over, as the agent retries: dependencies differ by release
    // (virtio needs virtio_ring on 6.1, not on 5.10).
    let insmods: String = cached
        .modules
        .iter()
        .chain(&cached.modules)
        .filter_map(|m| m.file_name())
        .map(|n| {
            format!(
                "/bin/busybox insmod {}/{} 2>/dev/null\n",
                bpfcompat_engine::guest::MODULES_DIR,
                n.to_string_lossy()
            )
        })
        .chain([
            "/bin/busybox mkdir -p /proc\n/bin/busybox mount -t proc proc /proc\n".to_string(),
            "/bin/busybox lsmod\n".to_string(),
        ])
        .collect();
    let with_modules = busybox_boot(
        "modules",
        format!("#!/bin/busybox sh\n{insmods}{poweroff}"),
        &cached.modules,
    );

    let target = KernelTarget { profile, pin };
    // Guest time (restore or boot, validate, shutdown) and the restore or
    // boot alone.
    let guest_ms = |objs: &[ObjectInput], warm: bool| {
        let runs: Vec<(u64, u64)> = (0..runs)
            .map(|_| {
                let plan = Plan {
                    kernels: vec![target.clone()],
                    objects: objs.to_vec(),
                    commands: Vec::new(),
                    settings: Settings {
                        accel: if accel == Accel::Kvm {
                            AccelChoice::Kvm
                        } else {
                            AccelChoice::Tcg
                        },
                        jobs: 1,
                        memory_mib: 512,
                        cpus: 1,
                        timeout: Duration::from_secs(300),
                        object_timeout: Duration::from_secs(120),
                        mode: bpfcompat_engine::wire::Mode::Attach,
                        trigger: None,
                        strict_maps: false,
                        trace_loaders: true,
                        retries: 2,
                        agent: PathBuf::from(env!("CARGO_BIN_EXE_bpfcompat-agent")),
                        evidence: None,
                        warm,
                    },
                };
                let out = bpfcompat_engine::run::run(
                    &plan,
                    &Mirrors::discover(),
                    &Cache::discover().unwrap(),
                    &bpfcompat_engine::cancel::Cancel::new(),
                    &mut |_| {},
                )
                .unwrap();
                let k = &out.kernels[0];
                assert_eq!(k.objects.len(), objs.len(), "{:?}", k.outcome);
                assert_eq!(k.restored, warm, "{:?}", k.cold_reason);
                let t = &k.timings;
                (t.boot_ms + t.validate_ms + t.shutdown_ms, t.boot_ms)
            })
            .collect();
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    };
    let (one, _) = guest_ms(&objects[..1], false);
    let (sixteen, _) = guest_ms(&objects, false);
    // Saves the machine (not measured), then restores it.
    let _ = guest_ms(&objects[..1], true);
    let (warm_one, restore) = guest_ms(&objects[..1], true);
    let (warm_sixteen, _) = guest_ms(&objects, true);
    let rss_mb = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(f64::NAN);

    let r1 = one as f64 / floor as f64;
    let r16 = sixteen as f64 / one as f64;
    println!(
        "kernel {kernel} ({}), accel {accel:?}, guest 512 MiB, 1 vCPU, median of {runs}",
        cached.release
    );
    println!("floor (busybox init, power off)   {floor:>6} ms");
    let rm = with_modules as f64 / floor as f64;
    println!(
        "floor with {} guest modules        {with_modules:>6} ms   {rm:.2}x floor      (target <= 1.10x) {}",
        cached.modules.len(),
        verdict(rm <= 1.10)
    );
    println!(
        "one object                        {one:>6} ms   {r1:.2}x floor      (target <= 1.25x) {}",
        verdict(r1 <= 1.25)
    );
    println!(
        "sixteen objects                   {sixteen:>6} ms   {r16:.2}x one object (target <= 1.50x) {}",
        verdict(r16 <= 1.5)
    );
    let rr = restore as f64 / floor as f64;
    println!(
        "warm: restore                     {restore:>6} ms   {rr:.2}x floor      (target <= 0.30x) {}",
        verdict(rr <= 0.3)
    );
    println!(
        "warm: one object                  {warm_one:>6} ms   {:.2}x floor, {:.2}x cold",
        warm_one as f64 / floor as f64,
        warm_one as f64 / one as f64
    );
    println!(
        "warm: sixteen objects             {warm_sixteen:>6} ms   {:.2}x cold sixteen",
        warm_sixteen as f64 / sixteen as f64
    );
    println!(
        "host peak RSS                     {rss_mb:>6.1} MB                     (target < 200 MB) {}",
        verdict(rss_mb < 200.0)
    );
}

/// One busybox boot (its `total_ms`: from spawn until QEMU exited).
fn busybox_boot_once(
    qemu: &Path,
    kernel: &Path,
    initrd: &Path,
    accel: Accel,
) -> bpfcompat_engine::vm::Boot {
    let spec = BootSpec {
        kernel: kernel.to_path_buf(),
        initrd: initrd.to_path_buf(),
        accel,
        memory_mib: 512,
        cpus: 1,
        extra_cmdline: vec![],
        job_disk: None,
        monitor: None,
        incoming: None,
    };
    let cancel = bpfcompat_engine::cancel::Cancel::new();
    boot(qemu, &spec, Duration::from_secs(120), None, &cancel).unwrap()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Sixteen objects: the ringbuf and kprobe fixtures, alternating.
fn compile_objects(dir: &Path, n: usize) -> Vec<ObjectInput> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut built = Vec::new();
    for name in ["ringbuf", "kprobe"] {
        let out = dir.join(format!("{name}.bpf.o"));
        let status = std::process::Command::new("clang")
            .args([
                "-g",
                "-O2",
                "-target",
                "bpf",
                "-D__TARGET_ARCH_x86",
                "-I/usr/include/x86_64-linux-gnu",
                "-c",
            ])
            .arg(fixtures.join(format!("{name}.bpf.c")))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("clang runs");
        assert!(status.success());
        built.push(out);
    }
    (0..n)
        .map(|i| ObjectInput::plain(format!("obj{i:02}.bpf.o"), built[i % 2].clone()))
        .collect()
}
