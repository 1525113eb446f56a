//! What can go wrong reading a data directory: each variant names the file (and the table) it
//! could not read, so one line tells the user what is damaged.

use std::path::PathBuf;

use crate::error::exit;
use crate::export::error::preview;

#[derive(Debug, thiserror::Error)]
pub enum FromDirError {
    #[error("{}: not a Chroma data directory: {why}", dir.display())]
    NotADirectory { dir: PathBuf, why: String },
    #[error("{}{}: {why}", file.display(), table.as_ref().map(|t| format!(", table {t}")).unwrap_or_default())]
    Sqlite { file: PathBuf, table: Option<String>, why: String },
    #[error("{}: unknown Chroma schema version ({found}; this chroma-snap knows up to {known}); no snapshot written", file.display())]
    UnknownSchema { file: PathBuf, found: String, known: String },
    #[error("collection {collection:?}: {}: {why}", file.display())]
    Segment { collection: String, file: PathBuf, why: String },
    #[error(
        "{}: {why}; stop the server first, or pass --force to read a copy whose server is gone",
        dir.display()
    )]
    InUse { dir: PathBuf, why: String },
    #[error("collection {name:?} not found in {} (tenant {tenant:?}, database {database:?})", dir.display())]
    NoCollection { dir: PathBuf, name: String, tenant: String, database: String },
    #[error("collection {collection:?}: record {id:?} has {found} dimensions, earlier records have {expected}")]
    Dimension { collection: String, id: String, found: usize, expected: usize },
    #[error(
        "collection {collection:?}: {} records have no vector in the index nor the log: {}; --strict: no snapshot written",
        ids.len(),
        preview(ids)
    )]
    MissingVectors { collection: String, ids: Vec<String> },
}

impl FromDirError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FromDirError::MissingVectors { .. } => exit::FAILED,
            _ => exit::INPUT,
        }
    }
}
