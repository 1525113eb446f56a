//! One side of a comparison, whatever it is: a snapshot collection (all of it, or a row range)
//! or a live collection. Every side streams its records in pages and its ids sorted on disk; a
//! live side also fetches records by id, which is what lets the other side be streamed past it.

use std::ops::Range;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

use super::VerifyError;
use crate::chroma::{Client, CollectionInfo};
use crate::error::{Error, Result};
use crate::record::RecordPage;
use crate::snapshot::CollectionEntry;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::Snapshot;
use crate::spill::{Merged, SortedKeys};

/// Where one side's records come from.
#[derive(Clone)]
pub enum Side {
    /// A snapshot collection; only the rows of `rows` when given (a shard's share).
    Snapshot { snap: Box<Snapshot>, entry: Box<CollectionEntry>, rows: Option<Range<u64>> },
    /// A collection on a server.
    Server { client: Arc<Client>, info: Arc<CollectionInfo> },
}

/// Pages of records arriving from a reader task; errors come through the channel.
pub type Pages = (Receiver<Result<RecordPage>>, JoinHandle<()>);

impl Side {
    pub fn snapshot(snap: &Snapshot, entry: &CollectionEntry) -> Self {
        Self::snapshot_rows(snap, entry, None)
    }

    /// Rows `rows` of a snapshot collection (all when `None`).
    pub fn snapshot_rows(snap: &Snapshot, entry: &CollectionEntry, rows: Option<Range<u64>>) -> Self {
        Side::Snapshot { snap: Box::new(snap.clone()), entry: Box::new(entry.clone()), rows }
    }

    pub fn server(client: &Client, info: &CollectionInfo) -> Self {
        Side::Server { client: Arc::new(client.clone()), info: Arc::new(info.clone()) }
    }

    pub fn name(&self) -> &str {
        match self {
            Side::Snapshot { entry, .. } => &entry.name,
            Side::Server { info, .. } => &info.name,
        }
    }

    pub fn is_server(&self) -> bool {
        matches!(self, Side::Server { .. })
    }

    /// Records per page when reading whole records from this side (a server's answer budget).
    pub fn page_rows(&self, dim: Option<usize>) -> usize {
        match self {
            Side::Snapshot { .. } => 1000,
            Side::Server { client, .. } => client.read_page_rows(1000, 32 << 20, dim),
        }
    }

    /// Every record (of the row range, for a snapshot side) in pages of `rows`: a snapshot in part
    /// order, read on a blocking thread; a server by listing its ids and fetching them.
    pub fn pages(&self, rows: usize) -> Pages {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordPage>>(4);
        let task = match self.clone() {
            Side::Snapshot { snap, entry, rows: range } => tokio::task::spawn_blocking(move || {
                let mut page = RecordPage::default();
                for b in snap.collection_rows(&entry, range.unwrap_or(0..entry.count)) {
                    let b = match b {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e.into()));
                            return;
                        }
                    };
                    for r in BatchView::new(&b).records() {
                        if page.is_empty() {
                            page = RecordPage::with_capacity(r.embedding.len(), rows);
                        }
                        page.push(r);
                        if page.len() >= rows && tx.blocking_send(Ok(std::mem::take(&mut page))).is_err() {
                            return;
                        }
                    }
                }
                if !page.is_empty() {
                    let _ = tx.blocking_send(Ok(page));
                }
            }),
            Side::Server { client, info } => tokio::spawn(async move {
                let listing = client.id_page_rows(30_000);
                let ids = client
                    .id_pages(&info, listing)
                    .map_ok(|ids| futures::stream::iter(ids.into_iter().map(Ok::<_, crate::chroma::ChromaError>)))
                    .try_flatten()
                    .try_chunks(rows)
                    .map_err(|e| Error::from(e.1))
                    .map_ok(|ids| fetch(client.clone(), info.clone(), ids))
                    .try_buffered(3);
                let mut ids = std::pin::pin!(ids);
                while let Some(page) = ids.next().await {
                    let stop = page.is_err();
                    if tx.send(page).await.is_err() || stop {
                        return;
                    }
                }
            }),
        };
        (rx, task)
    }

    /// Fetches whole records by id (a server side only; unknown ids are left out).
    pub async fn fetch(&self, ids: Vec<String>) -> Result<RecordPage> {
        match self {
            Side::Server { client, info } => fetch(client.clone(), info.clone(), ids).await,
            Side::Snapshot { .. } => Err(VerifyError::Reader("a snapshot is not read by id".into()).into()),
        }
    }

    /// Every id of this side, sorted on disk ([`crate::spill`]).
    pub async fn sorted_ids(&self) -> Result<Merged> {
        match self.clone() {
            Side::Snapshot { snap, entry, rows } => tokio::task::spawn_blocking(move || -> Result<Merged> {
                let mut sorted = SortedKeys::new(None);
                for b in snap.collection_rows(&entry, rows.unwrap_or(0..entry.count)) {
                    for r in BatchView::new(&b?).records() {
                        sorted.push(r.id.as_bytes()).map_err(VerifyError::Spill)?;
                    }
                }
                Ok(sorted.finish().map_err(VerifyError::Spill)?)
            })
            .await
            .map_err(|e| VerifyError::Reader(e.to_string()))?,
            Side::Server { client, info } => {
                let mut sorted = SortedKeys::new(None);
                let mut pages = std::pin::pin!(client.id_pages(&info, client.id_page_rows(30_000)));
                while let Some(ids) = pages.try_next().await? {
                    tokio::task::block_in_place(|| ids.into_iter().try_for_each(|id| sorted.push(id.as_bytes())))
                        .map_err(VerifyError::Spill)?;
                }
                Ok(sorted.finish().map_err(VerifyError::Spill)?)
            }
        }
    }
}

/// Whole records of `ids` from a live collection, checked for short arrays and missing
/// embeddings.
pub async fn fetch(client: Arc<Client>, info: Arc<CollectionInfo>, ids: Vec<String>) -> Result<RecordPage> {
    if ids.is_empty() {
        return Ok(RecordPage::default());
    }
    let body = client.fetch_records(&info, &ids).await?;
    let parsed = client.parse_records_off_thread(body, &info.name).await?;
    let fail = |why: String| Error::from(VerifyError::ReadBack { collection: info.name.clone(), why });
    if let Some(why) = parsed.short_arrays {
        return Err(fail(format!("cannot read records back: {why}")));
    }
    if let Some(id) = parsed.missing_embedding.first() {
        return Err(fail(format!("record {id:?} has no embedding on the server")));
    }
    Ok(parsed.page)
}
