//! The one public error type, and the exit code each kind of failure maps to.

use crate::chroma::ChromaError;
use crate::export::error::ExportError;
use crate::fromdir::error::FromDirError;
use crate::limits::LimitsError;
use crate::load::error::LoadError;
use crate::select::SelectError;
use crate::snapshot::SnapshotError;
use crate::transform::error::TransformError;
use crate::verify::VerifyError;

/// Exit codes (documented in the README).
pub mod exit {
    pub const OK: u8 = 0;
    /// The operation failed: server, network, disk.
    pub const FAILED: u8 = 1;
    /// Bad usage or bad input: arguments, spec, a damaged or foreign snapshot.
    pub const INPUT: u8 = 2;
    /// A check ran and found differences: verify, read-back after load.
    pub const MISMATCH: u8 = 3;
    /// The transform's quality gate was not met.
    pub const GATE: u8 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Chroma(#[from] ChromaError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Export(Box<ExportError>),
    #[error(transparent)]
    FromDir(Box<FromDirError>),
    #[error(transparent)]
    Load(Box<LoadError>),
    #[error(transparent)]
    Transform(Box<TransformError>),
    /// A `--limits` file that cannot be read or parsed.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    Verify(Box<VerifyError>),
    /// `--collection` / `--exclude` that cannot be resolved.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// Arguments or input that can never work as given.
    #[error("{0}")]
    Input(String),
    /// The operation could not be completed.
    #[error("{0}")]
    Failed(String),
    /// A comparison found differences.
    #[error("{0}")]
    Mismatch(String),
    /// The transform's quality gate was not met.
    #[error("{0}")]
    Gate(String),
}

/// Step errors are boxed: they carry their context (ids, server answers) and stay off the happy
/// path's stack.
macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Export(ExportError),
    FromDir(FromDirError),
    Load(LoadError),
    Transform(TransformError),
    Verify(VerifyError)
);

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Chroma(ChromaError::BadUrl { .. } | ChromaError::BadHeader(_)) => exit::INPUT,
            Error::Chroma(_) | Error::Failed(_) => exit::FAILED,
            Error::Snapshot(SnapshotError::Io { .. } | SnapshotError::Busy { .. }) => exit::FAILED,
            Error::Snapshot(SnapshotError::Remote { kind, .. }) if !kind.is_input() => exit::FAILED,
            Error::Snapshot(_) | Error::Input(_) | Error::Select(_) | Error::Limits(_) => exit::INPUT,
            Error::Export(e) => e.exit_code(),
            Error::FromDir(e) => e.exit_code(),
            Error::Load(e) => e.exit_code(),
            Error::Verify(e) => e.exit_code(),
            Error::Transform(e) => e.exit_code(),
            Error::Mismatch(_) => exit::MISMATCH,
            Error::Gate(_) => exit::GATE,
        }
    }

    /// Whether rerunning the same command later might succeed.
    pub fn is_retryable(&self) -> bool {
        use crate::snapshot::store::RemoteFailure::{Failed, Unreachable};
        matches!(self, Error::Chroma(e) if e.is_retryable())
            || matches!(self, Error::Snapshot(SnapshotError::Remote { kind: Failed | Unreachable, .. }))
    }
}
