//! The snapshot on disk: a directory with `manifest.json` and Parquet part files.
//!
//! This layer never speaks HTTP; it turns record pages into hashed part files and back.

pub mod convert;
pub mod digest;
pub mod manifest;
pub mod outdir;
pub mod reader;
pub mod schema;
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
}

impl SnapshotError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}
