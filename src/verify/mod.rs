//! `verify --against`: proves that a live server holds what a snapshot holds, collection by
//! collection (counts, settings, the id set, the records digest, every record), telling Chroma's
//! documented write drift apart from real differences. `load` ends with the same check.

pub mod compare;
pub mod drift;
pub mod merge;
pub mod report;
pub mod source;
pub mod walk;

pub use compare::compare;
pub use report::{Comparison, DEFAULT_LISTED, RecordDifference};

use crate::chroma::Client;
use crate::error::Result;
use crate::snapshot::reader::Snapshot;

/// What can fail while reading a collection back (the comparison's findings are not errors).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The server's answer cannot be compared.
    #[error("collection {collection:?}: {why}")]
    ReadBack { collection: String, why: String },
    /// An id list could not be sorted on disk (in `TMPDIR`).
    #[error("sorting ids in a temporary file (TMPDIR): {0}")]
    Spill(std::io::Error),
    /// The thread streaming the snapshot died.
    #[error("snapshot reader failed: {0}")]
    Reader(String),
}

impl VerifyError {
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::FAILED
    }
}

/// `verify DIR --against URL`: compares the chosen snapshot collections (all by default) with the
/// live collections they were loaded into.
pub async fn verify_against(
    snapshot: std::sync::Arc<dyn crate::snapshot::store::Store>,
    connect: &crate::chroma::ConnectOptions,
    selection: &crate::select::Selection,
    listed: usize,
) -> Result<Vec<Comparison>> {
    let snap = Snapshot::open_store(snapshot)?;
    let pairs = crate::load::select(&snap, selection)?;
    let client = Client::connect(connect).await?;
    let mut out = Vec::new();
    for (entry, dst) in pairs {
        let info = client.get_collection(&dst).await?;
        out.push(compare(&snap, entry, &client, &info, listed, false).await?);
    }
    Ok(out)
}
