//! What can go wrong in an export once the server answers: each variant names the collection and
//! the records concerned, and says which exit-code class it belongs to.

use crate::error::exit;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An offset page whose arrays do not line up, so its rows cannot be matched to ids.
    #[error(
        "collection {collection:?}: records {start}..{end}: {why}; rows cannot be matched to ids (export without --paging offset to name them)"
    )]
    UnmatchedRows { collection: String, start: usize, end: usize, why: String },
    /// A record whose embedding length differs from the records before it.
    #[error("collection {collection:?}: record {id:?} has {found} dimensions, earlier records have {expected}")]
    Dimension { collection: String, id: String, found: usize, expected: usize },
    /// Records the server holds without an embedding.
    #[error("collection {collection:?}: {} records have no embedding and cannot be exported: {}", ids.len(), preview(ids))]
    NoEmbedding { collection: String, ids: Vec<String> },
    /// The collection's id list could not be kept in (or read back from) its spill file.
    #[error("collection {collection:?}: id list spill file in {dir}: {source}")]
    Spill { collection: String, dir: String, source: std::io::Error },
    /// A `--where` / `--where-document` filter the server refused, before anything was written.
    #[error("collection {collection:?}: the server refused the filter {filter}: {why}; nothing was written")]
    Filter { collection: String, filter: String, why: String },
    /// The source changed while it was read, and `--strict` forbids it.
    #[error("{0}; --strict: no snapshot written")]
    ChangedStrict(Change),
}

impl ExportError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportError::Filter { .. } => exit::INPUT,
            _ => exit::FAILED,
        }
    }
}

/// How a collection changed while it was exported.
#[derive(Debug, Clone)]
pub struct Change {
    pub collection: String,
    pub before: u64,
    pub after: u64,
    pub written: u64,
    /// Listed ids that were gone when their page was fetched.
    pub vanished: Vec<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "collection {:?} changed during the export: {} records before, {} after, {} written",
            self.collection, self.before, self.after, self.written
        )?;
        if !self.vanished.is_empty() {
            write!(f, ", {} listed ids vanished ({})", self.vanished.len(), preview(&self.vanished))?;
        }
        Ok(())
    }
}

/// The first ten ids, quoted, and how many more.
pub fn preview(ids: &[String]) -> String {
    let shown: Vec<String> = ids.iter().take(10).map(|s| format!("{s:?}")).collect();
    let more = if ids.len() > 10 { format!(" and {} more", ids.len() - 10) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}
