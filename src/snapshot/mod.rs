//! The snapshot on disk: a directory with `manifest.json` and Parquet part files.
//!
//! This layer never speaks HTTP; it turns record pages into hashed part files and back.
//! It is the only code that opens, reads, writes, hashes and syncs snapshot files, and it does so
//! through one storage seam, [`store::Store`] (a local directory today; an object store later).

pub mod convert;
pub mod digest;
pub mod location;
pub mod manifest;
pub mod outdir;
pub mod reader;
pub mod schema;
pub mod sidefile;
pub mod store;
pub mod validate;
pub mod verify;
pub mod writer;

use std::path::{Path, PathBuf};

pub use digest::{FileHash, RecordsDigest};
pub use manifest::{CollectionEntry, Manifest, PartEntry, Source};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a snapshot: it has no manifest.json", dir.display())]
    NotASnapshot { dir: PathBuf },
    #[error("{}: not a valid manifest: {why}", path.display())]
    BadManifest { path: PathBuf, why: String },
    #[error("{}: format_version {found} is newer than this chroma-snap understands ({supported}); upgrade chroma-snap", path.display())]
    NewerFormat { path: PathBuf, found: u64, supported: u32 },
    #[error("collection {collection:?}: part path {path:?} {why}")]
    BadPartPath { collection: String, path: String, why: String },
    #[error("{}: {why}", path.display())]
    BadPart { path: PathBuf, why: String },
    #[error("{}: {source}", path.display())]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{0}")]
    Refused(String),
    #[error("{given}: {why}")]
    BadLocation { given: String, why: String },
    /// An object store failed; `why` is one line without secrets.
    #[error("{location}: {why}")]
    Remote { location: String, kind: store::RemoteFailure, why: String },
    #[error("{}: not a regular file ({kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: larger than {}, the limit for this file", path.display(), store::bounded::human(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{} already holds a snapshot (manifest.json); choose another --out or remove it first", dir.display())]
    Occupied { dir: PathBuf },
    #[error("{} is not empty and holds no snapshot; refusing to write into it", dir.display())]
    Foreign { dir: PathBuf },
    #[error("another run is writing into {} (locked through {}); wait for it to finish or choose another --out", dir.display(), lock.display())]
    Busy { dir: PathBuf, lock: PathBuf },
    #[error("--out {} overlaps the input snapshot {}: the output would damage the input; choose a directory outside it", out.display(), input.display())]
    Overlap { out: PathBuf, input: PathBuf },
}

impl SnapshotError {
    /// The message without the file it names, for callers that name the part themselves.
    pub fn detail(&self) -> String {
        match self {
            Self::BadPart { why, .. } => why.clone(),
            Self::Parquet { source, .. } => source.to_string(),
            Self::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}
