//! Downloading a pinned kernel package into the cache.

use std::io::{Read, Write};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cache::{EntryProblem, Meta, sha256_file};
use super::package::extract;
use crate::cancel::Cancel;
use crate::errors::FetchError;
use crate::guest::modules::GUEST_MODULES;
use crate::kernel::{Cache, CachedKernel, Mirrors};
use crate::matrix::{OwnKernel, OwnSource, PackagePin, Pin};

/// What a fetch is doing, for progress displays (nothing on a cache hit).
#[derive(Debug, Clone, PartialEq)]
pub enum FetchEvent {
    /// A package download starts.
    Downloading {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// Its size in bytes, as the lock pins it.
        bytes: u64,
    },
    /// Another part of a download arrived (at most one event per MiB).
    Received {
        /// The package.
        package: String,
        /// Bytes so far.
        received: u64,
        /// Its size in bytes, as the lock pins it.
        total: u64,
    },
    /// A damaged cache entry is removed and fetched again.
    Refetching {
        /// The entry.
        entry: std::path::PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

impl FetchEvent {
    /// Whether a person reading a log wants this line (every MiB of a
    /// download is for progress bars, not logs).
    pub fn is_milestone(&self) -> bool {
        !matches!(self, FetchEvent::Received { .. })
    }
}

impl std::fmt::Display for FetchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchEvent::Downloading {
                package,
                version,
                bytes,
            } => write!(
                f,
                "downloading {package} {version} ({:.1} MB)",
                *bytes as f64 / 1e6
            ),
            FetchEvent::Received {
                package,
                received,
                total,
            } => write!(
                f,
                "{package}: {:.1} of {:.1} MB",
                *received as f64 / 1e6,
                *total as f64 / 1e6
            ),
            FetchEvent::Refetching { entry, reason } => write!(
                f,
                "cache entry {} is damaged ({reason}); fetching it again",
                entry.display()
            ),
        }
    }
}

/// A mirror that sends nothing for this long is abandoned
/// (`BPFCOMPAT_HTTP_IDLE_SECS` overrides it).
const IDLE: Duration = Duration::from_secs(30);

/// A transfer slower than this on average, once [`RATE_GRACE`] has passed,
/// is abandoned: a mirror trickling a byte a second is never idle.
const MIN_RATE: u64 = 8 << 10;
/// How long a transfer may take before its rate is judged.
const RATE_GRACE: Duration = Duration::from_secs(60);

fn idle_limit() -> Duration {
    std::env::var("BPFCOMPAT_HTTP_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(IDLE)
}

/// One HTTP client for the process, with explicit time limits so a dead
/// network fails instead of hanging a CI job.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(900)))
            .user_agent(concat!("bpfcompat/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
}

/// The most a release file (InRelease, Release, repomd.xml) may be, read
/// before its signature is checked.
pub(crate) const RELEASE_LIMIT: u64 = 16 << 20;
/// How [`http_bytes`]'s error for a body past its limit begins (the one
/// error a caller must not take for a missing file).
pub(crate) const TOO_LARGE: &str = "the mirror sent more than";
/// The most a signature file may be.
pub(crate) const SIGNATURE_LIMIT: u64 = 1 << 20;
/// The most a compressed package index may be.
pub(crate) const INDEX_LIMIT: u64 = 256 << 20;

/// The whole body of `url`, at most `limit` bytes (`what` names the limit
/// in the error).
pub(crate) fn http_bytes(url: &str, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    http_get(url)?
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > limit {
        return Err(format!(
            "{TOO_LARGE} {} MiB for {what}, the most one may be: refused",
            limit >> 20
        ));
    }
    Ok(body)
}

/// Decompressed text of an index, within a size fitted to what came in:
/// 64 times the compressed size plus 64 MiB, at most 1 GiB (a real
/// `Packages` or `primary.xml` grows 5 to 20 times), so a small archive
/// cannot inflate into memory without end.
pub(crate) fn inflate(reader: impl Read, compressed: usize) -> std::io::Result<String> {
    inflate_within(reader, compressed, inflated_limit(compressed))
}

fn inflated_limit(compressed: usize) -> u64 {
    (compressed as u64 * 64 + (64 << 20)).min(1 << 30)
}

fn inflate_within(reader: impl Read, compressed: usize, limit: u64) -> std::io::Result<String> {
    let mut text = String::new();
    reader.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "it inflates past {} MiB from {compressed} bytes: refused as a decompression bomb",
            limit >> 20
        )));
    }
    Ok(text)
}

/// GET `url` as a reader; the error is a one-line description. A body that
/// stops arriving for [`idle_limit`] fails the read with `TimedOut`: ureq's
/// own limits bound only the whole body, which for a kernel package is long.
pub(crate) fn http_get(url: &str) -> Result<impl Read + use<>, String> {
    let body = agent()
        .get(url)
        .call()
        .map(|r| r.into_body().into_reader())
        .map_err(|e| e.to_string())?;
    Ok(IdleReader::spawn(body, idle_limit()).at_least(MIN_RATE, RATE_GRACE))
}

/// Reads on a helper thread and hands chunks over a bounded channel, so the
/// reader can give up on a stalled peer. The helper ends by itself when the
/// connection errors or closes (ureq bounds it too).
struct IdleReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    idle: Duration,
    /// The slowest average rate (bytes/s) accepted after a grace period.
    min_rate: Option<(u64, Duration)>,
    started: std::time::Instant,
    received: u64,
}

impl IdleReader {
    fn spawn(mut body: impl Read + Send + 'static, idle: Duration) -> IdleReader {
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let sent = match body.read(&mut buf) {
                    Ok(n) => tx.send(Ok(buf[..n].to_vec())).is_ok() && n > 0,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        false
                    }
                };
                if !sent {
                    break;
                }
            }
        });
        IdleReader {
            rx,
            chunk: Vec::new(),
            at: 0,
            idle,
            min_rate: None,
            started: std::time::Instant::now(),
            received: 0,
        }
    }

    /// Abandons the transfer once, after `grace`, it averages under `rate`.
    fn at_least(mut self, rate: u64, grace: Duration) -> IdleReader {
        self.min_rate = Some((rate, grace));
        self
    }
}

impl Read for IdleReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() {
            if let Some((rate, grace)) = self.min_rate {
                let took = self.started.elapsed();
                if took > grace && self.received < rate * took.as_secs() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the mirror is too slow: {} bytes in {}s, under {} KiB/s",
                            self.received,
                            took.as_secs(),
                            rate >> 10
                        ),
                    ));
                }
            }
            match self.rx.recv_timeout(self.idle) {
                Ok(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    (self.chunk, self.at) = (chunk, 0)
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the mirror stalled: nothing arrived for {}s",
                            self.idle.as_secs()
                        ),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Returns the cached kernel for `pin`, downloading and extracting it first
/// when needed. A damaged cache entry is replaced; one this user cannot read
/// is an error that says so. `progress` hears about a download before it
/// starts (it is not called on a cache hit). `cancel` stops a download.
pub fn fetch(
    pin: &Pin,
    mirrors: &Mirrors,
    cache: &Cache,
    cancel: &Cancel,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<CachedKernel, FetchError> {
    let key = pin.entry_key();
    let unreadable = |source| FetchError::Io {
        context: format!(
            "the cache entry {} is not readable",
            cache.entry_dir(&key).display()
        ),
        source,
    };
    match cache.lookup(&key) {
        Ok(Some(k)) => {
            tracing::debug!(
                "{} {}: cache hit, {}",
                pin.package,
                pin.version,
                cache.entry_dir(&key).display()
            );
            return Ok(k);
        }
        Err(EntryProblem::Unreadable(source)) => return Err(unreadable(source)),
        Ok(None) | Err(EntryProblem::Damaged(_)) => {}
    }
    let _lock = cache.lock(&key)?;
    let dir = cache.entry_dir(&key);
    match cache.lookup(&key) {
        Ok(Some(k)) => return Ok(k), // another run fetched it while we waited
        Ok(None) => {}
        Err(EntryProblem::Unreadable(source)) => return Err(unreadable(source)),
        Err(EntryProblem::Damaged(reason)) => {
            progress(FetchEvent::Refetching {
                entry: dir.clone(),
                reason,
            });
            std::fs::remove_dir_all(&dir).map_err(|source| FetchError::Io {
                context: format!("cannot remove damaged cache entry {}", dir.display()),
                source,
            })?;
        }
    }
    let base = match &pin.own {
        Some(_) => "",
        None => mirrors.get(&pin.archive)?,
    };
    tracing::debug!(
        "{} {}: not cached, fetching from {base}",
        pin.package,
        pin.version
    );
    let kernels = cache.kernels_dir()?;
    let staging = crate::private::tempdir(".staging-", Some(&kernels)).map_err(io(format!(
        "cannot create a directory in {}",
        kernels.display()
    )))?;
    let mut filling = Filling {
        kernels: &kernels,
        staging: staging.path(),
        cancel,
        progress,
    };
    let meta = fill_entry(pin, base, &mut filling)?;
    crate::private::write_file(
        &staging.path().join("meta.json"),
        &serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )
    .map_err(io("cannot write meta.json".into()))?;
    let staged = staging.keep();
    std::fs::rename(&staged, &dir)
        .map_err(io(format!("cannot move the entry to {}", dir.display())))?;
    cache
        .lookup(&key)
        .map_err(|problem| FetchError::Io {
            context: format!("fresh cache entry {} is unusable", dir.display()),
            source: std::io::Error::other(problem.to_string()),
        })?
        .ok_or_else(|| unreachable_entry(&dir))
}

/// The module files for `modules` of a cached kernel (each with every
/// module it needs, dependencies first, none of the guest modules), for
/// targets the kernel has in a module: taken from the kernel's packages,
/// downloaded again, on the first need and kept in its entry. Fails for a
/// kernel without a function index, a module it does not know, or an own
/// kernel (its modules are the profile's `modules_dir`).
pub fn extra_modules(
    pin: &Pin,
    mirrors: &Mirrors,
    cache: &Cache,
    cancel: &Cancel,
    progress: &mut dyn FnMut(FetchEvent),
    modules: &[String],
) -> Result<Vec<std::path::PathBuf>, FetchError> {
    let key = pin.entry_key();
    let unknown = |what: String| FetchError::Io {
        context: what,
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    let index = cache
        .function_index(&key)
        .ok_or_else(|| unknown(format!("{}: no function index", pin.name)))?;
    let mut order: Vec<String> = Vec::new();
    for m in modules {
        let with = index.with_dependencies(m).ok_or_else(|| {
            unknown(format!(
                "{}: module `{m}` or one it needs is not indexed",
                pin.name
            ))
        })?;
        for d in with {
            if !order.contains(&d) && !GUEST_MODULES.contains(&d.as_str()) {
                order.push(d);
            }
        }
    }
    let dir = cache.entry_dir(&key).join(super::contents::EXTRA_MODULES);
    let path = |m: &str| dir.join(format!("{m}.ko"));
    let missing: std::collections::BTreeSet<String> = order
        .iter()
        .filter(|m| !path(m).is_file())
        .cloned()
        .collect();
    if !missing.is_empty() {
        if pin.own.is_some() {
            return Err(unknown(format!(
                "{}: an own kernel's modules come from its modules_dir",
                pin.name
            )));
        }
        let _lock = cache.lock(&key)?;
        let base = mirrors.get(&pin.archive)?;
        let entry = cache.entry_dir(&key);
        // The entry is complete and in place: the modules go straight into
        // it, each whole or absent (see `Picker::modules`).
        let mut filling = Filling {
            kernels: &cache.kernels_dir()?,
            staging: &entry,
            cancel,
            progress,
        };
        let mut picker = super::contents::Picker::modules(&entry, missing);
        for p in std::iter::once(&image_package(pin)).chain(&pin.modules) {
            let package = download_pinned(p, base, &mut filling)?;
            super::package::offer_all(package.path(), &mut picker)
                .map_err(io(format!("cannot extract modules from {}", p.package)))?;
        }
    }
    if let Some(m) = order.iter().find(|m| !path(m).is_file()) {
        return Err(unknown(format!(
            "{}: module `{m}` is not in the kernel's packages",
            pin.name
        )));
    }
    Ok(order.iter().map(|m| path(m)).collect())
}

/// The pin's image package, as its other packages are pinned.
fn image_package(pin: &Pin) -> PackagePin {
    PackagePin {
        package: pin.package.clone(),
        version: pin.version.clone(),
        filename: pin.filename.clone(),
        size: pin.size,
        sha256: pin.sha256.clone(),
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> FetchError {
    move |source| FetchError::Io { context, source }
}

/// A cache entry being filled: downloads go to temporary files in
/// `kernels`, extracted files to `staging`, and `progress` hears of each.
struct Filling<'a> {
    kernels: &'a std::path::Path,
    staging: &'a std::path::Path,
    cancel: &'a Cancel,
    progress: &'a mut dyn FnMut(FetchEvent),
}

/// Downloads the pinned packages from the mirror at `base`, checks their
/// digests and extracts the kernel, its config and its guest modules into
/// `staging`.
fn fill_entry(pin: &Pin, base: &str, f: &mut Filling) -> Result<Meta, FetchError> {
    let staging = f.staging;
    let image = image_package(pin);
    let package = match &pin.own {
        Some(own) => return own_entry(pin, own, f),
        None => download_pinned(&image, base, f)?,
    };
    let extracted =
        extract(package.path(), staging).map_err(io(format!("cannot extract {}", pin.package)))?;
    let release = extracted.release.ok_or_else(|| FetchError::NoImage {
        package: pin.package.clone(),
    })?;
    let (mut has_config, mut modules) = (extracted.has_config, extracted.modules);
    let mut functions = extracted.functions;
    for m in &pin.modules {
        let package = download_pinned(m, base, f)?;
        let found = extract(package.path(), staging)
            .map_err(io(format!("cannot extract {}", m.package)))?;
        has_config |= found.has_config;
        modules.extend(found.modules);
        functions.merge(found.functions);
    }
    modules.sort_by_key(|m| GUEST_MODULES.iter().position(|g| g == m));
    modules.dedup();
    let indexed = functions
        .read_image_btf(&staging.join("vmlinuz"))
        .and_then(|()| functions.write(staging))
        .map_err(io("cannot write the kernel's function index".into()))?;
    let mut meta = meta(pin, release, has_config, modules, staging)?;
    meta.indexed = indexed;
    Ok(meta)
}

/// The entry's description, once `staging` holds its vmlinuz.
fn meta(
    pin: &Pin,
    release: String,
    has_config: bool,
    modules: Vec<String>,
    staging: &std::path::Path,
) -> Result<Meta, FetchError> {
    let vmlinuz_sha256 = sha256_file(&staging.join("vmlinuz"))
        .map_err(io("cannot read the extracted vmlinuz".into()))?;
    let vmlinuz_blake3 = super::cache::blake3_file(&staging.join("vmlinuz"))
        .map_err(io("cannot read the extracted vmlinuz".into()))?;
    Ok(Meta {
        package: pin.package.clone(),
        version: pin.version.clone(),
        release,
        vmlinuz_sha256,
        vmlinuz_blake3: Some(vmlinuz_blake3),
        has_config,
        layout: super::cache::LAYOUT,
        modules,
        indexed: false,
    })
}

/// A profile's own kernel: a local file or a URL, checked against its
/// digest, then a `.deb` (extracted as an archive's) or a `vmlinuz` taken
/// as it is, with the configuration the profile names.
fn own_entry(pin: &Pin, own: &OwnKernel, f: &mut Filling) -> Result<Meta, FetchError> {
    let (kernels, staging, cancel) = (f.kernels, f.staging, f.cancel);
    let mut file = tempfile::Builder::new()
        .prefix(&crate::private::leftover_prefix(".download-"))
        .tempfile_in(kernels)
        .map_err(io(format!("cannot create a file in {}", kernels.display())))?;
    let (what, actual) = match &own.from {
        OwnSource::File(path) => {
            let src =
                std::fs::File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
            let mut hasher = Sha256::new();
            let mut tee = HashingWriter(file.as_file_mut(), &mut hasher);
            // Read within the limit it was pinned under (the file may have
            // grown since).
            std::io::copy(&mut src.take(crate::safe::KERNEL_FILE_LIMIT), &mut tee)
                .map_err(io(format!("cannot copy {} into the cache", path.display())))?;
            (path.display().to_string(), hex::encode(hasher.finalize()))
        }
        OwnSource::Url(url) => {
            (f.progress)(FetchEvent::Downloading {
                package: pin.package.clone(),
                version: url.clone(),
                bytes: 0,
            });
            (
                url.clone(),
                download(
                    url,
                    file.as_file_mut(),
                    cancel,
                    crate::safe::KERNEL_FILE_LIMIT,
                    &mut |_| {},
                )?,
            )
        }
    };
    if pin.sha256 != actual {
        return Err(FetchError::Checksum {
            url: what,
            expected: pin.sha256.to_string(),
            actual,
        });
    }
    let mut head = [0u8; 8];
    let n = std::io::Read::read(
        &mut file.reopen().map_err(io(format!("cannot read {what}")))?,
        &mut head,
    )
    .map_err(io(format!("cannot read {what}")))?;
    let is_package =
        head[..n].starts_with(b"!<arch>\n") || head[..n].starts_with(super::rpm::MAGIC);
    let (release, mut has_config, modules) = if is_package {
        let e = extract(file.path(), staging).map_err(io(format!("cannot extract {what}")))?;
        let release = e.release.ok_or_else(|| FetchError::NoImage {
            package: what.clone(),
        })?;
        (release, e.has_config, e.modules)
    } else {
        let release = bzimage_release(file.path()).ok_or_else(|| FetchError::NoImage {
            package: format!(
                "{what} (neither a .deb, an .rpm nor a bzImage with a version string)"
            ),
        })?;
        std::fs::copy(file.path(), staging.join("vmlinuz"))
            .map_err(io("cannot copy the vmlinuz into the cache".into()))?;
        (release, false, Vec::new())
    };
    if let Some(config) = &own.config {
        std::fs::copy(config, staging.join("config"))
            .map_err(io(format!("cannot read {}", config.display())))?;
        has_config = true;
    }
    // The modules directory's, offered as a package's would be.
    let mut picker = super::contents::Picker::new(staging);
    for (name, path) in &own.modules {
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let mut file =
            std::fs::File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
        picker
            .offer(&format!("lib/modules/own/kernel/{file_name}"), &mut file)
            .map_err(io(format!("cannot copy module {name} into the cache")))?;
    }
    let mut modules = modules;
    modules.extend(picker.finish().modules);
    modules.sort_by_key(|m| GUEST_MODULES.iter().position(|g| g == m));
    modules.dedup();
    meta(pin, release, has_config, modules, staging)
}

/// Writes through to a file while hashing.
struct HashingWriter<'a>(&'a mut std::fs::File, &'a mut Sha256);

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The release of an x86 bzImage: the boot protocol's `kernel_version`
/// field (at 0x20e) points at the version string, 0x200 before its value.
fn bzimage_release(path: &std::path::Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let offset = u16::from_le_bytes([*bytes.get(0x20e)?, *bytes.get(0x20f)?]) as usize + 0x200;
    let text = bytes.get(offset..offset.checked_add(256)?.min(bytes.len()))?;
    let version = text.split(|b| *b == b' ' || *b == 0).next()?;
    let release = std::str::from_utf8(version).ok()?.to_string();
    crate::safe::check_version(&release).ok()?;
    Some(release)
}

/// One pinned package, downloaded into a temporary file in the cache and
/// checked against its digest.
fn download_pinned(
    p: &PackagePin,
    base: &str,
    f: &mut Filling,
) -> Result<tempfile::NamedTempFile, FetchError> {
    let (kernels, cancel, progress) = (f.kernels, f.cancel, &mut *f.progress);
    let url = format!("{base}/{}", p.filename);
    progress(FetchEvent::Downloading {
        package: p.package.clone(),
        version: p.version.clone(),
        bytes: p.size,
    });
    let mut deb = tempfile::Builder::new()
        .prefix(&crate::private::leftover_prefix(".download-"))
        .tempfile_in(kernels)
        .map_err(io(format!("cannot create a file in {}", kernels.display())))?;
    let mut reported = 0;
    // A pinned size is the package's; a pin without one (0) gets the most a
    // kernel file may be.
    let limit = match p.size {
        0 => crate::safe::KERNEL_FILE_LIMIT,
        n => n,
    };
    let actual = download(&url, deb.as_file_mut(), cancel, limit, &mut |received| {
        if received >= reported + (1 << 20) || received == p.size {
            reported = received;
            progress(FetchEvent::Received {
                package: p.package.clone(),
                received,
                total: p.size,
            });
        }
    })?;
    if p.sha256 != actual {
        return Err(FetchError::Checksum {
            url,
            expected: p.sha256.to_string(),
            actual,
        });
    }
    Ok(deb)
}

fn unreachable_entry(dir: &std::path::Path) -> FetchError {
    FetchError::Io {
        context: format!("cache entry {} vanished", dir.display()),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// Streams `url` into `out`, returning the sha256 of what arrived. Network
/// trouble is a [`FetchError::Download`]; trouble writing the cache (a full
/// disk) is [`FetchError::Io`], which no flag forgives.
fn download(
    url: &str,
    out: &mut std::fs::File,
    cancel: &Cancel,
    limit: u64,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<String, FetchError> {
    let fail = |message: String| FetchError::Download {
        url: url.to_string(),
        message,
    };
    let write_fail = |source| FetchError::Io {
        context: format!("cannot write the download of {url} into the cache"),
        source,
    };
    let mut body = http_get(url).map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut received = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if cancel.is_cancelled() {
            return Err(FetchError::Cancelled);
        }
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        received += n as u64;
        if received > limit {
            return Err(fail(format!(
                "it sent more than the {limit} bytes it may be (the pinned size, or the most a kernel file may be): refused"
            )));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(write_fail)?;
        on_bytes(received);
    }
    out.flush().map_err(write_fail)?;
    out.sync_all().map_err(write_fail)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that sends one chunk, then nothing: stalled.
    struct Stall(bool);
    impl Read for Stall {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if std::mem::replace(&mut self.0, true) {
                std::thread::sleep(Duration::from_secs(3600));
            }
            out[..3].copy_from_slice(b"abc");
            Ok(3)
        }
    }

    /// A body that never stalls and never hurries: a byte every 5 ms.
    struct Trickle;
    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_millis(5));
            out[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn a_trickling_body_fails_once_its_rate_is_judged() {
        let mut r = IdleReader::spawn(Trickle, Duration::from_secs(5))
            .at_least(64 << 10, Duration::from_millis(300));
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("too slow"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(!got.is_empty());
    }

    #[test]
    fn an_index_that_inflates_without_end_is_refused() {
        use std::io::Write;
        // 3 MB inflating to 3 GiB (a 4 MiB bomb here, against a 1 MiB limit).
        assert_eq!(inflated_limit(3 << 20) >> 20, 256);
        assert_eq!(inflated_limit(100 << 20), 1 << 30);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let e = inflate_within(flate2::read::GzDecoder::new(&bomb[..]), bomb.len(), 1 << 20)
            .unwrap_err();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
        // A real index grows far less.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"Package: linux-image\nVersion: 1\n").unwrap();
        let small = gz.finish().unwrap();
        assert!(inflate(flate2::read::GzDecoder::new(&small[..]), small.len()).is_ok());
    }

    #[test]
    fn a_stalled_body_fails_after_the_idle_limit() {
        let mut r = IdleReader::spawn(Stall(false), Duration::from_millis(200));
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let started = std::time::Instant::now();
        let err = r.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("stalled"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_whole_body_reads_through() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut r = IdleReader::spawn(std::io::Cursor::new(data.clone()), Duration::from_secs(5));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }
}
