//! Sends one batch: a 413 or a connection dropped on a large body splits it in halves and carries
//! on; a permanent refusal is narrowed down to the first record the server refuses.

use std::future::Future;
use std::pin::Pin;

use super::body::{Encoding, encode};
use super::error::LoadError;
use super::journal::WriteOp;
use crate::chroma::{ChromaError, Client, CollectionInfo};
use crate::error::Result;
use crate::record::RecordPage;

/// Bodies above this size are split rather than retried when the connection keeps dropping
/// (the 1.x server drops uploads beyond its 40 MiB limit instead of answering 413).
pub const SPLIT_ON_DROP_BYTES: usize = 8 << 20;

pub struct Target<'a> {
    pub client: &'a Client,
    pub info: &'a CollectionInfo,
    pub op: WriteOp,
    pub encoding: Encoding,
}

/// Sends batch `index` of `page` (whose body is `body`, already encoded).
pub fn send<'a>(
    t: &'a Target<'a>,
    page: RecordPage,
    body: Vec<u8>,
    index: u64,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let first = page.ids.first().cloned().unwrap_or_default();
        let collection = t.info.name.clone();
        let what = format!("collection {collection:?}, batch {index} ({} records from id {first:?})", page.len());
        let size = body.len();
        match t.client.post_records(t.info, t.op.as_str(), bytes::Bytes::from(body), &what).await {
            Ok(()) => Ok(()),
            Err(ChromaError::TooLarge { .. }) if page.len() > 1 => {
                tracing::info!("{what}: too large for the server ({size} bytes); splitting it");
                halves(t, page, index).await
            }
            Err(ChromaError::RetriesExhausted { .. }) if page.len() > 1 && size > SPLIT_ON_DROP_BYTES => {
                tracing::warn!("{what}: the server keeps dropping a {size}-byte body; splitting it");
                halves(t, page, index).await
            }
            Err(ChromaError::Rejected { status, .. }) if page.len() > 1 && matches!(status, 400 | 422) => {
                tracing::debug!("{what}: refused ({status}); narrowing down the record");
                halves(t, page, index).await
            }
            Err(ChromaError::Rejected { status, message, .. }) => {
                Err(LoadError::Refused { collection, batch: index, id: first, status, message }.into())
            }
            Err(source) => Err(LoadError::Batch { collection, batch: index, source }.into()),
        }
    })
}

async fn halves(t: &Target<'_>, page: RecordPage, index: u64) -> Result<()> {
    let mid = page.len() / 2;
    for (lo, hi) in [(0, mid), (mid, page.len())] {
        let mut part = RecordPage::with_capacity(page.dim, hi - lo);
        for i in lo..hi {
            part.push(page.record(i));
        }
        let body = encode(&part, t.encoding).map_err(|why| LoadError::Encode {
            collection: t.info.name.clone(),
            why: format!("batch {index}: {why}"),
        })?;
        send(t, part, body, index).await?;
    }
    Ok(())
}
