//! Every error the engine returns, one type per failing operation.
//!
//! Messages are lower-case fragments; where the user can fix something, a
//! `(hint: …)` says how. The CLI renders the chain once and maps it to exit 1.

use std::path::PathBuf;

use thiserror::Error;

/// Loading or selecting a kernel matrix failed.
#[derive(Debug, Error)]
pub enum MatrixError {
    /// The matrix or lock file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("malformed matrix {origin}: {message}")]
    Parse {
        /// Which file.
        origin: String,
        /// toml's message, with line and column.
        message: String,
    },
    /// The TOML parsed but a profile makes no sense.
    #[error("invalid matrix {origin}, kernel `{profile}`: {message}")]
    Invalid {
        /// Which file.
        origin: String,
        /// Which profile.
        profile: String,
        /// What is wrong.
        message: String,
    },
    /// `--kernel NAME` names no profile of the matrix.
    #[error("unknown kernel `{name}` in {origin}{suggestion}\n  (hint: known kernels are {known})")]
    UnknownKernel {
        /// The name given.
        name: String,
        /// Which matrix.
        origin: String,
        /// The names it has.
        known: String,
        /// `: did you mean …?`, or where the catalogue has it; or nothing.
        suggestion: String,
    },
    /// `--matrix NAME` is neither a shipped matrix nor a file.
    #[error(
        "no matrix `{name}`: neither a shipped matrix nor a file\n  (hint: the shipped matrices are {shipped}; or give the path of a TOML matrix)"
    )]
    UnknownMatrix {
        /// The name given.
        name: String,
        /// The shipped matrices.
        shipped: String,
    },
}

/// No mirror is known for an archive.
#[derive(Debug, Error, Clone)]
#[error(
    "no mirror for the `{archive}` archive\n  (hint: set {var} to the archive's base URL, the one an apt source line would name)"
)]
pub struct MirrorError {
    /// The archive key.
    pub archive: String,
    /// The variable that would configure it.
    pub var: String,
}

/// Resolving a profile against the archive indexes failed.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// The archive has no mirror.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// The index could not be downloaded.
    #[error(
        "cannot download the package index {url}: {message}\n  (hint: check the network and the mirror variable)"
    )]
    Index {
        /// The index URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The index holds a matching stanza that cannot be pinned safely.
    #[error(
        "the package index {url} is unusable: {message}\n  (hint: the mirror serves a damaged or hostile index; use another mirror)"
    )]
    BadIndex {
        /// The index URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The index is not signed by a key trusted for its archive.
    #[error("the package index {url} is not signed by a trusted key: {message}\n  (hint: {hint})")]
    Signature {
        /// The signed file's URL.
        url: String,
        /// What is wrong, naming the keys that were tried.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// No package matches the pattern in any source.
    #[error("no package matches `{pattern}` in {sources}")]
    NoMatch {
        /// The profile's pattern.
        pattern: String,
        /// Where we looked.
        sources: String,
    },
}

/// Getting a pinned kernel into the cache failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// The profile is not in the lock.
    #[error(
        "kernel `{name}` is not pinned in {lock}\n  (hint: run `cargo bpfcompat kernels update`)"
    )]
    NotPinned {
        /// The profile.
        name: String,
        /// Which lock.
        lock: String,
    },
    /// The archive has no mirror and the kernel is not cached.
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    /// Download failed.
    #[error(
        "cannot download {url}: {message}\n  (hint: check the network; a run with the kernel already cached needs none)"
    )]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The downloaded bytes are not the pinned ones.
    #[error(
        "{url} has sha256 {actual}, the lock pins {expected}\n  (hint: the mirror serves another file under that name; run `cargo bpfcompat kernels update` if the archive re-issued it)"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// Pinned digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// The package holds no kernel image.
    #[error("{package} holds no vmlinuz (looked in boot/ and usr/lib/modules/*/)")]
    NoImage {
        /// The package.
        package: String,
    },
    /// A cache or extraction I/O error.
    #[error("{context}: {source}{}", io_hint(source))]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted during the download.
    #[error("interrupted")]
    Cancelled,
}

impl FetchError {
    /// Whether `--allow-unavailable` may forgive this: only a kernel that
    /// cannot be had (no mirror, archive unreachable). A digest mismatch, a
    /// package without an image or a cache that cannot be written means the
    /// tool cannot be trusted to have done its job, whatever the flags.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            FetchError::Mirror(_) | FetchError::Download { .. } => true,
            FetchError::NotPinned { .. }
            | FetchError::Checksum { .. }
            | FetchError::NoImage { .. }
            | FetchError::Io { .. }
            | FetchError::Cancelled => false,
        }
    }
}

/// There is no private place for the kernel cache.
#[derive(Debug, Error)]
pub enum CacheError {
    /// None of the variables that locate it is set.
    #[error(
        "no cache directory: BPFCOMPAT_CACHE, XDG_CACHE_HOME and HOME are all unset\n  (hint: set BPFCOMPAT_CACHE to a directory only you can write, e.g. BPFCOMPAT_CACHE=$PWD/.bpfcompat-cache)"
    )]
    NoLocation,
    /// The cache directory is another user's, or others may write in it:
    /// what they plant there would be booted, restored and trusted.
    #[error(
        "the cache directory {path} is {why}: another user could plant kernels and saved machines there\n  (hint: {fix}, or set BPFCOMPAT_CACHE to a directory only you can write)"
    )]
    Unsafe {
        /// The directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
        /// The command that fixes it.
        fix: String,
    },
}

/// A hint for the I/O errors people can act on: a full disk and a file
/// another user owns are not network problems.
pub(crate) fn io_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::StorageFull => {
            "\n  (hint: the disk is full: free space, or set BPFCOMPAT_CACHE to a directory on another disk)".into()
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "\n  (hint: this user (uid {}) may not use that file: fix its owner or mode, or set BPFCOMPAT_CACHE to a directory you own)",
            nix::unistd::getuid()
        ),
        _ => String::new(),
    }
}

/// Building a guest's initramfs failed.
#[derive(Debug, Error)]
pub enum InitramfsError {
    /// A file to ship could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A shared library the agent needs was not found.
    #[error("{} needs {library}, which is in none of {searched}", binary.display())]
    MissingLibrary {
        /// The binary or library that needs it.
        binary: PathBuf,
        /// The DT_NEEDED name.
        library: String,
        /// The directories searched.
        searched: String,
    },
    /// A binary is not an ELF file we can ship.
    #[error("{} is not a loadable ELF executable: {message}", path.display())]
    BadElf {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The job does not fit in the guests' memory.
    #[error(
        "the job (the objects, binaries and files sent into each guest) is {job_mib} MiB: a guest of {memory_mib} MiB cannot hold it and still load it (at most a quarter of its memory)\n  (hint: raise --memory to at least {needed_mib}, or send fewer or smaller files)"
    )]
    TooLarge {
        /// The job's size.
        job_mib: u64,
        /// The guests' memory.
        memory_mib: u32,
        /// The memory that would do.
        needed_mib: u64,
    },
    /// Writing the archive failed.
    #[error("cannot write the initramfs: {0}")]
    Write(#[source] std::io::Error),
}

/// Starting or running QEMU failed (not a verdict: the tool could not work).
#[derive(Debug, Error)]
pub enum VmError {
    /// No QEMU binary.
    #[error(
        "{binary} not found\n  (hint: install QEMU, e.g. `apt-get install qemu-system-x86`, or set BPFCOMPAT_QEMU)"
    )]
    QemuMissing {
        /// The binary looked for.
        binary: String,
    },
    /// `--accel kvm` was asked for but KVM cannot be used.
    #[error("KVM is not usable here: {reason}\n  (hint: use `--accel tcg` or `--accel auto`)")]
    KvmUnusable {
        /// Why.
        reason: String,
    },
    /// Spawning or talking to QEMU failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A user-supplied object is not a BPF object we can validate.
#[derive(Debug, Error)]
pub enum ObjectError {
    /// Missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not ELF at all.
    #[error("{} is not an ELF file\n  (hint: pass the compiled object, e.g. the output of `clang -target bpf -c x.bpf.c -o x.bpf.o`)", path.display())]
    NotElf {
        /// The file.
        path: PathBuf,
    },
    /// Not a regular file (a FIFO, a device, a directory).
    #[error("{} is {kind}, not a file\n  (hint: pass the compiled object file)", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than any BPF object.
    #[error("{} has {size} bytes, more than the {limit} a BPF object may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The most a BPF object may have.
        limit: u64,
    },
    /// A BPF ELF file whose structure is damaged (truncated, overwritten).
    #[error("{} is a damaged BPF object: {message}\n  (hint: rebuild it; a truncated copy or a stripped object cannot be loaded)", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ELF, but not for the BPF machine.
    #[error("{} is an ELF file but not a BPF object ({machine}; BPF is 247)\n  (hint: compile with `clang -target bpf`)", path.display())]
    NotBpf {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        machine: String,
    },
}

/// A run could not start (before any guest booted); per-kernel trouble is
/// reported in the kernel's result instead.
#[derive(Debug, Error)]
pub enum RunError {
    /// QEMU or KVM problem.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The initramfs could not be built.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
}

/// The project's configuration cannot be read or names what is not there.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a configuration.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        source: toml::de::Error,
    },
    /// Configured twice in one manifest.
    #[error("{}: bpfcompat is configured in both [workspace.metadata.bpfcompat] and [package.metadata.bpfcompat]; keep one", manifest.display())]
    Twice {
        /// The `Cargo.toml`.
        manifest: PathBuf,
    },
    /// A kernel the matrix does not have.
    #[error(
        "{origin}{line}: `{key}` names kernel `{kernel}`, which the matrix does not have\n  (hint: known kernels are {known})"
    )]
    UnknownKernel {
        /// The configuration file.
        origin: String,
        /// `, line N` where the name is.
        line: String,
        /// The key that names it.
        key: String,
        /// The kernel.
        kernel: String,
        /// The matrix's kernels.
        known: String,
    },
    /// An object table for no object of the workspace.
    #[error(
        "{origin}{line}: [objects.{name}] names no BPF object of this workspace\n  (hint: `cargo bpfcompat list` shows the objects found: {found})"
    )]
    UnknownObject {
        /// The configuration file.
        origin: String,
        /// `, line N` where the table is.
        line: String,
        /// The table's name.
        name: String,
        /// The workspace's objects.
        found: String,
    },
    /// An `[[objects.X.on]]` that selects no kernel.
    #[error(
        "{origin}: [[objects.{name}.on]] number {number} selects no kernel\n  (hint: give `kernels = [\"debian-11-5.10\"]` or `release = \"<5.8\"`)"
    )]
    SelectsNothing {
        /// The configuration file.
        origin: String,
        /// The object's table.
        name: String,
        /// Which `on` table, from 1.
        number: usize,
    },
    /// A path that leaves the configuration's directory.
    #[error("{}: {message}", origin.display())]
    Outside {
        /// The configuration file.
        origin: PathBuf,
        /// What is wrong with the path.
        message: String,
    },
}
