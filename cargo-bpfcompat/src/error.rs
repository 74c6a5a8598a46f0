//! The one error type of the CLI: every way a command can fail before it
//! has a verdict, each mapped to its exit code in one exhaustive match.

use bpfcompat_engine::errors::{
    CacheError, ConfigError, MatrixError, ObjectError, ResolveError, RunError,
};
use bpfcompat_engine::oci::OciError;
use validator::{HostError, OpenError};

use crate::exit::Code;

/// Why a command could not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The matrix or lock is wrong, or a kernel name is unknown.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The project's configuration cannot be read or names what is not there.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An object is missing, damaged or no BPF object.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// There is no private place for the kernel cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The run could not start (QEMU, KVM, the initramfs).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The pre-load gate cannot load BPF here.
    #[error(transparent)]
    Host(#[from] HostError),
    /// An `oci://` artifact could not be pulled or holds no BPF object.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// A profile's package index cannot be read or has no match.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// libbpf cannot open an object to read what it declares.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Bad input found while resolving a command (configuration, a report
    /// path, a baseline, the workspace build), in words with a hint.
    #[error("{0}")]
    Input(String),
    /// An I/O error with no better context.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Input(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::Input(message.to_string())
    }
}

impl Error {
    /// Every failure to produce a verdict is the tool's (exit 1): bad input,
    /// setup, or infrastructure. Verdicts and signals have their own codes.
    pub fn exit_code(&self) -> Code {
        match self {
            Error::Matrix(_)
            | Error::Config(_)
            | Error::Object(_)
            | Error::Cache(_)
            | Error::Run(_)
            | Error::Host(_)
            | Error::Open(_)
            | Error::Oci(_)
            | Error::Resolve(_)
            | Error::Input(_)
            | Error::Io(_) => Code::ToolFailure,
        }
    }
}
