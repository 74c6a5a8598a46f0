//! Warm guests: a kernel's guest is booted once until its agent awaits a
//! job, saved to the kernel cache, and every later guest of that kernel
//! restores the saved machine and reads its job from the job disk.
//!
//! A saved machine is keyed by everything that shapes it: the kernel's
//! cache entry (image and modules), the initramfs (agent, libraries,
//! modules), the QEMU binary and its version, the accelerator, memory,
//! vCPUs and the kernel command line. Its digest is recorded beside it and
//! checked before each restore; a damaged or missing file, a machine that
//! cannot be saved or a restore that fails all end in a cold boot, and a
//! bad file is replaced. Each restore starts from the pristine saved state:
//! nothing a guest does is written back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cancel::Cancel;
use crate::guest::job_disk;
use crate::kernel::{Cache, CachedKernel, Lock};
use crate::vm::snapshot::NotSaved;
use crate::vm::{Accel, AccelPolicy, Boot, BootSpec, Exit, boot, snapshot};
use crate::wire::Record;

/// Bumped when the saved machine's contract changes (job disk, records).
const FORMAT: &str = "warm-1";

/// The longest a machine may take to get ready to be saved.
const SAVE_LIMIT: Duration = Duration::from_secs(120);

/// What every warm guest of a run shares.
pub(crate) struct WarmRun<'a> {
    pub cache: &'a Cache,
    pub qemu: &'a Path,
    /// `qemu --version`, part of every key.
    pub qemu_version: String,
    /// The run's job disk, written once.
    pub job_disk: PathBuf,
    pub accel: &'a AccelPolicy,
    pub cancel: &'a Cancel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
}

/// How a warm guest went.
pub(crate) enum Warm {
    /// It restored and ran: its boot and accelerator.
    Restored(Boot, Accel),
    /// Boot cold: why not warm (said in the run's notes).
    Cold(String),
}

/// `qemu --version`'s first line; empty when it cannot say within
/// [`VERSION_LIMIT`] (its whole process group is then killed: a wrapper
/// that never answers must not hang the run).
pub(crate) fn qemu_version(qemu: &Path) -> String {
    version_within(qemu, VERSION_LIMIT)
}

fn version_within(qemu: &Path, limit: Duration) -> String {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    // What the wrapper left behind holding stdout would block the read below.
    let mark = crate::process_group::Mark::new();
    let Ok(mut child) = std::process::Command::new(qemu)
        .arg("--version")
        .env(crate::process_group::Mark::VAR, mark.value())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
    else {
        return String::new();
    };
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                crate::process_group::kill(&child);
                mark.kill_strays();
                let _ = child.wait();
                return String::new();
            }
        }
    }
    crate::process_group::kill(&child);
    mark.kill_strays();
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(4096).read_to_string(&mut out);
    }
    out.lines().next().unwrap_or("").to_string()
}

/// The longest `qemu --version` may take.
const VERSION_LIMIT: Duration = Duration::from_secs(10);

/// Whether the kernel may read a job disk: virtio PCI and block built in
/// or shipped as guest modules; without its config, the guest will tell.
fn has_job_disk(kernel: &CachedKernel) -> bool {
    let shipped = |m: &str| {
        kernel
            .modules
            .iter()
            .any(|p| p.file_stem().is_some_and(|s| s == m))
    };
    let Some(config) = kernel
        .config
        .as_deref()
        .and_then(|c| std::fs::read_to_string(c).ok())
    else {
        return true;
    };
    let built_in = |opt: &str| config.lines().any(|l| l == format!("{opt}=y"));
    (built_in("CONFIG_VIRTIO_BLK") || shipped("virtio_blk"))
        && (built_in("CONFIG_VIRTIO_PCI") || shipped("virtio_pci"))
}

/// One kernel's warm guest: what it runs and what tells its machine apart.
pub(crate) struct WarmGuest<'a> {
    /// The initramfs without the job (init, libraries, the kernel's modules).
    pub initrd: &'a Path,
    /// What the saved machine holds besides the kernel: the digest of the
    /// initramfs for the agent; for a test binary, of everything in it but
    /// the binary, which each job brings anew.
    pub identity: String,
    /// Who saves machines of this kind (`agent`, `harness`): one machine
    /// per kernel profile, accelerator and kind is kept.
    pub kind: &'a str,
    /// `key=value` kernel parameters.
    pub env: &'a [String],
    /// The kernel profile.
    pub name: &'a str,
}

/// Runs the kernel's guest warm: restores its saved machine (saving it
/// first when there is none) with the run's job disk.
pub(crate) fn run_warm(
    w: &WarmRun,
    kernel: &CachedKernel,
    g: &WarmGuest,
    on: &dyn Fn(crate::run::Event),
) -> Warm {
    // KVM not yet seen running in this process (every process under
    // nextest): the save or the restore is watched for life, as a cold
    // boot would be, and a guest that ran proves KVM for the process.
    let (accel, unproven) = match w.accel.settled() {
        Some(a) => (a, false),
        None => (w.accel.current(), true),
    };
    if !has_job_disk(kernel) {
        return Warm::Cold("the kernel has no virtio block driver for the job disk".into());
    }
    let name = g.name;
    let spec = BootSpec {
        kernel: kernel.vmlinuz.clone(),
        initrd: g.initrd.to_path_buf(),
        accel,
        memory_mib: w.memory_mib,
        cpus: w.cpus,
        extra_cmdline: g.env.to_vec(),
        job_disk: Some(w.job_disk.clone()),
        monitor: None,
        incoming: None,
    };
    let key = match key(w, kernel, &spec, &g.identity) {
        Ok(k) => k,
        Err(e) => return Warm::Cold(format!("cannot key the saved machine: {e}")),
    };
    let dir = match w.cache.snapshots_dir() {
        Ok(d) => d,
        Err(e) => return Warm::Cold(e.to_string()),
    };
    let state = dir.join(format!("{key}.state"));
    let digest_file = dir.join(format!("{key}.blake3"));
    // One saver per machine; restorers wait for it.
    let _lock = match w.cache.lock_in(&dir, &key) {
        Ok(l) => l,
        Err(e) => return Warm::Cold(e.to_string()),
    };
    // A machine that cannot be saved (the kernel cannot read the job disk)
    // is remembered, so later runs do not pay a boot to find out again.
    let unsavable = dir.join(format!("{key}.cold"));
    match still_unsavable(&unsavable) {
        Some(why) => return Warm::Cold(why),
        None => {
            let _ = std::fs::remove_file(&unsavable);
        }
    }
    if !intact(&state, &digest_file) {
        let _ = std::fs::remove_file(&state);
        on(crate::run::Event::Saving {
            kernel: name.to_string(),
        });
        // Unproven KVM: a guest that does not get ready soon is taken to
        // hang, and the cold boot that follows decides about KVM.
        let limit = match unproven {
            true => crate::vm::KVM_LIVENESS,
            false => SAVE_LIMIT,
        };
        if let Err(e) = save(w, &spec, &dir, &state, &digest_file, limit).and_then(|()| {
            keep_only(&dir, &key, &owner(name, accel, g.kind, kernel)).map_err(NotSaved::Failed)
        }) {
            let why = format!("the machine could not be saved: {e}");
            // A kernel that can never read a job disk is remembered.
            if let NotSaved::NoJobDisk { .. } = e {
                let marked = format!("{COLD_MARK} {why}");
                let _ = write_side(&unsavable, marked.as_bytes());
            }
            return Warm::Cold(why);
        }
    }
    // Opened under the lock, as verified: a run that replaces or prunes
    // the file from now on cannot change what this guest restores.
    let saved = match std::fs::File::open(&state) {
        Ok(f) => std::sync::Arc::new(f),
        Err(e) => return Warm::Cold(format!("cannot open the saved machine: {e}")),
    };
    drop(_lock);
    on(crate::run::Event::Restoring {
        kernel: name.to_string(),
    });
    let restore = BootSpec {
        incoming: Some(saved),
        ..spec
    };
    let liveness = unproven.then_some(crate::vm::KVM_LIVENESS);
    match boot(w.qemu, &restore, w.timeout, liveness, w.cancel) {
        // The agent ran but would not take this job (it says why): the
        // machine is good, the job is what failed; it stays.
        Ok(b) if !said_hello(&b) && refused(&b).is_some() => Warm::Cold(format!(
            "the restored agent refused the job: {}",
            refused(&b).unwrap_or_default()
        )),
        // A restore that ended before the agent spoke (QEMU refused the
        // machine, the guest powered off or panicked): the machine is not
        // trusted again (unless KVM itself is what does not run here). Run
        // out of time or stopped, it is not shown bad: it stays.
        Ok(b) if !said_hello(&b) && !matches!(b.exit, Exit::Interrupted { .. }) => {
            let shown_bad = !matches!(b.exit, Exit::Timeout { .. } | Exit::NoProgress { .. });
            if shown_bad
                && !unproven
                && let Ok(Some(lock)) = Lock::take(&dir, &key, false)
            {
                let _ = remove_files(&dir, &key).and_then(|()| lock.remove());
            }
            Warm::Cold(format!("the restored machine did not run ({})", b.exit))
        }
        // A machine of another kernel (a file copied under this key): its
        // records are that kernel's, never this one's. It goes, and the
        // kernel boots cold.
        Ok(b)
            if !kernel.release.is_empty()
                && hello_release(&b).is_some_and(|r| r != kernel.release) =>
        {
            if let Ok(Some(lock)) = Lock::take(&dir, &key, false) {
                let _ = remove_files(&dir, &key).and_then(|()| lock.remove());
            }
            Warm::Cold(format!(
                "the saved machine runs kernel {}, not {}'s {}: it was deleted",
                hello_release(&b).unwrap_or_default(),
                name,
                kernel.release
            ))
        }
        Ok(b) => {
            if unproven {
                w.accel.mark_verified();
            }
            Warm::Restored(b, accel)
        }
        Err(e) => Warm::Cold(e.to_string()),
    }
}

/// The release the restored guest's init said hello from.
fn hello_release(b: &Boot) -> Option<String> {
    b.records.iter().find_map(|r| match r {
        Record::Hello { kernel_release, .. } => Some(kernel_release.clone()),
        _ => None,
    })
}

fn said_hello(b: &Boot) -> bool {
    b.records.iter().any(|r| matches!(r, Record::Hello { .. }))
}

/// What the restored agent said when it could not take its job.
fn refused(b: &Boot) -> Option<String> {
    b.records.iter().find_map(|r| match r {
        Record::AgentError { message } => Some(message.clone()),
        _ => None,
    })
}

/// Boots the machine until the agent awaits its job and saves it.
fn save(
    w: &WarmRun,
    spec: &BootSpec,
    dir: &Path,
    state: &Path,
    digest_file: &Path,
    limit: Duration,
) -> Result<(), NotSaved> {
    // A saved machine is about the guest's memory: on a disk without room
    // for it the save would fail half-way ("Broken pipe") on every run.
    let needed = u64::from(spec.memory_mib) << 20;
    if let Some(free) = free_bytes(dir)
        && free < needed + (64 << 20)
    {
        return Err(NotSaved::Failed(format!(
            "the cache's disk is full: {} MiB free, a saved machine needs about {} MiB (free space, or set BPFCOMPAT_CACHE to a larger disk)",
            free >> 20,
            needed >> 20
        )));
    }
    let tmp = crate::private::tempdir(".saving-", Some(dir))
        .map_err(|e| NotSaved::Failed(e.to_string()))?;
    // An empty job disk: the saved agent must still be waiting.
    let empty = tmp.path().join("empty.img");
    crate::private::create_file(&empty)
        .and_then(|f| f.set_len(job_disk::DISK_BYTES))
        .map_err(|e| NotSaved::Failed(e.to_string()))?;
    let saving = BootSpec {
        monitor: Some(tmp.path().join("qmp")),
        job_disk: Some(empty),
        ..spec.clone()
    };
    let out = tmp.path().join("state");
    // A guest that never gets ready must not cost a whole guest's limit
    // twice (the cold boot that follows has its own).
    let limit = w.timeout.min(limit);
    snapshot::save(w.qemu, &saving, &out, limit, w.cancel)?;
    let digest = crate::kernel::blake3_file(&out).map_err(|e| NotSaved::Failed(e.to_string()))?;
    write_side(digest_file, digest.as_bytes()).map_err(|e| NotSaved::Failed(e.to_string()))?;
    std::fs::rename(&out, state).map_err(|e| NotSaved::Failed(e.to_string()))
}

/// Who a saved machine is for: `<profile> <accel> <kind> <kernel entry>`.
fn owner(profile: &str, accel: Accel, kind: &str, kernel: &CachedKernel) -> String {
    let entry = kernel
        .vmlinuz
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{profile} {accel:?} {kind} {entry}")
}

/// Records who a saved machine is for (`<profile> <accel> <kind>`) and removes
/// the other machines saved for it (an earlier build of the agent, another
/// QEMU): one machine per kernel profile and accelerator is kept.
fn keep_only(dir: &Path, key: &str, owner: &str) -> Result<(), String> {
    write_side(&dir.join(format!("{key}.owner")), owner.as_bytes()).map_err(|e| e.to_string())?;
    // The same profile, accelerator and kind: the kernel entry may differ.
    let same = |who: &str| who.split(' ').take(3).eq(owner.split(' ').take(3));
    for (other, who, _) in saved_in(dir) {
        // One in use (saved or being restored from) is left for a later run.
        if same(&who)
            && other != key
            && let Ok(Some(lock)) = Lock::take(dir, &other, false)
        {
            let _ = remove_files(dir, &other).and_then(|()| lock.remove());
        }
    }
    Ok(())
}

/// Writes a saved machine's side file (digest, owner, why it cannot be
/// saved): a private temporary renamed over it, so a link planted at its
/// name is replaced, never followed.
fn write_side(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::private::leftover_prefix(".side-"))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// The bytes free for this user on `dir`'s filesystem.
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// What a `.cold` file begins with: the build that found the machine
/// unsavable (another build may save it).
const COLD_MARK: &str = concat!("bpfcompat ", env!("CARGO_PKG_VERSION"), ":");

/// How long a machine found unsavable is left cold before it is tried again.
const COLD_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a kernel's machine is known unsavable: a `.cold` file this build
/// wrote within [`COLD_FOR`]; anything else (planted, stale, another
/// build's) is not believed, so it cannot force cold boots for ever.
fn still_unsavable(path: &Path) -> Option<String> {
    let text = read_side(path)?;
    let why = text.strip_prefix(COLD_MARK)?.trim().to_string();
    let age = std::fs::symlink_metadata(path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()?;
    (age < COLD_FOR).then_some(why)
}

/// Reads a side file: a regular file, not through a link, at most 4 KiB.
fn read_side(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Removes a saved machine's files, its lock held.
fn remove_files(dir: &Path, key: &str) -> std::io::Result<()> {
    for ext in ["state", "blake3", "owner", "cold"] {
        match std::fs::remove_file(dir.join(format!("{key}.{ext}"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The saved machines of a directory: key, owner and size in bytes (an
/// error where the machine's state is gone).
fn saved_in(dir: &Path) -> Vec<(String, String, std::io::Result<u64>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Only names this module wrote: a digest.
        let Some(key) = name
            .strip_suffix(".owner")
            .filter(|k| crate::safe::Sha256Hex::try_from(k.to_string()).is_ok())
        else {
            continue;
        };
        let owner = read_side(&e.path()).unwrap_or_default();
        // None: an owner left without its state (a save that failed
        // half-way, a machine found bad) is no machine.
        let bytes = std::fs::metadata(dir.join(format!("{key}.state"))).map(|m| m.len());
        out.push((key.to_string(), owner.trim().to_string(), bytes));
    }
    out
}

/// A machine saved for warm guests.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedMachine {
    /// The kernel profile.
    pub profile: String,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Whose guest it holds: `agent` (`cargo bpfcompat test`) or `harness`
    /// (`#[kernel_test]`).
    pub kind: String,
    /// The kernel cache entry it boots (absent for machines of an earlier
    /// release, which `cache prune` removes).
    pub entry: Option<String>,
    /// Its size on disk.
    pub bytes: u64,
    key: String,
}

/// The machines saved for warm guests in `cache`.
pub fn saved_machines(cache: &Cache) -> Vec<SavedMachine> {
    saved_in(&cache.root().join("snapshots"))
        .into_iter()
        .filter_map(|(key, owner, bytes)| {
            // Only machines that exist are listed.
            let bytes = bytes.ok()?;
            let mut words = owner.split(' ');
            Some(SavedMachine {
                profile: words.next()?.to_string(),
                accel: words.next()?.to_ascii_lowercase(),
                kind: words.next().unwrap_or("agent").to_string(),
                entry: words.next().map(str::to_string),
                bytes,
                key,
            })
        })
        .collect()
}

/// Removes a saved machine (under its lock: a run saving it finishes first).
pub fn remove_machine(cache: &Cache, m: &SavedMachine) -> std::io::Result<()> {
    let dir = cache.root().join("snapshots");
    let lock = cache
        .lock_in(&dir, &m.key)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    remove_files(&dir, &m.key)?;
    lock.remove()
}

/// Whether the saved machine is there with the digest recorded beside it.
fn intact(state: &Path, digest_file: &Path) -> bool {
    let Some(recorded) = read_side(digest_file) else {
        return false;
    };
    crate::kernel::blake3_file(state).is_ok_and(|d| d == recorded.trim())
}

/// The key of a saved machine: the digest of everything that shapes it.
fn key(
    w: &WarmRun,
    kernel: &CachedKernel,
    spec: &BootSpec,
    identity: &str,
) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut part = |name: &str, value: &[u8]| {
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    part("format", FORMAT.as_bytes());
    // The cache entry is named by the digests of the kernel's packages.
    let entry = kernel.vmlinuz.parent().unwrap_or(Path::new(""));
    part("kernel", entry.to_string_lossy().as_bytes());
    part("vmlinuz", kernel.vmlinuz_digest.as_bytes());
    part("initrd", identity.as_bytes());
    part("qemu", w.qemu.to_string_lossy().as_bytes());
    part("qemu-version", w.qemu_version.as_bytes());
    let meta = std::fs::metadata(w.qemu)?;
    part("qemu-size", &meta.len().to_le_bytes());
    part("accel", format!("{:?}", spec.accel).as_bytes());
    part("memory", &spec.memory_mib.to_le_bytes());
    part("cpus", &spec.cpus.to_le_bytes());
    part("cmdline", crate::vm::kernel_cmdline(spec).as_bytes());
    part("disk", &job_disk::DISK_BYTES.to_le_bytes());
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qemu_that_never_says_its_version_does_not_hang_the_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let answers = dir.path().join("answers");
        std::fs::write(&answers, "#!/bin/sh\necho 'QEMU emulator version 7.2.22'\n").unwrap();
        let hangs = dir.path().join("hangs");
        std::fs::write(&hangs, "#!/bin/sh\nsleep 600\n").unwrap();
        for p in [&answers, &hangs] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(qemu_version(&answers), "QEMU emulator version 7.2.22");
        assert_eq!(version_within(&hangs, Duration::from_millis(200)), "");
    }

    #[test]
    fn only_this_builds_recent_cold_mark_keeps_a_machine_cold() {
        let dir = tempfile::tempdir().unwrap();
        let cold = dir.path().join("k.cold");
        write_side(&cold, format!("{COLD_MARK} no job disk").as_bytes()).unwrap();
        assert_eq!(still_unsavable(&cold).as_deref(), Some("no job disk"));
        // Planted (or another build's): not believed.
        write_side(&cold, b"forced cold for ever").unwrap();
        assert_eq!(still_unsavable(&cold), None);
        // This build's, but old: tried again.
        write_side(&cold, format!("{COLD_MARK} no job disk").as_bytes()).unwrap();
        let old = std::time::SystemTime::now() - COLD_FOR - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&cold)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(still_unsavable(&cold), None);
    }

    #[test]
    fn side_files_replace_a_planted_link_and_are_never_read_through_one() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let owner = dir.path().join("k.owner");
        std::os::unix::fs::symlink(&victim, &owner).unwrap();
        assert_eq!(read_side(&owner), None, "not read through the link");
        write_side(&owner, b"debian-12-6.1 Tcg agent e").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&owner).unwrap().is_file());
        assert_eq!(
            read_side(&owner).as_deref(),
            Some("debian-12-6.1 Tcg agent e")
        );
    }
}
