//! Reads a live collection back and compares it with a snapshot collection, in four steps:
//! settings and counts, the snapshot streamed in pages beside the same ids fetched from the
//! server, the records the target holds beyond the snapshot, and the target's records digest.
//!
//! Memory is flat at any size: records are compared page by page, and no id list is held. The
//! target's count tells whether it holds records beyond the snapshot (ids are unique on both
//! sides, so `count == found` means none); only then are both id lists sorted on disk
//! ([`crate::spill`]) and merged to name them.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::Value;

use super::VerifyError;
use super::drift::{Drift, Tolerance, compare_records, compare_values};
use super::report::{Comparison, RecordDifference};
use crate::chroma::{Api, Client, CollectionInfo};
use crate::error::{Error, Result};
use crate::load::settings::user_metadata;
use crate::record::RecordPage;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::Snapshot;
use crate::snapshot::{CollectionEntry, RecordsDigest};
use crate::spill::{Merged, SortedKeys, difference};

/// Whether a server moves float64 metadata values when it parses them (the 1.x Rust server).
pub fn drifts_float_metadata(client: &Client) -> bool {
    client.api == Api::V2 && !client.server_version.as_deref().is_some_and(|v| v.starts_with("0."))
}

/// The target's side of one comparison: where to read, and what was read so far.
struct Target {
    client: Arc<Client>,
    info: Arc<CollectionInfo>,
    /// Records per read.
    rows: usize,
    digest: RecordsDigest,
    /// Only these rows of the snapshot collection (a shard's); all when `None`.
    share: Option<Range<u64>>,
}

impl Target {
    async fn fetch(&self, ids: Vec<String>) -> Result<RecordPage> {
        fetch(self.client.clone(), self.info.clone(), ids).await
    }
}

async fn fetch(client: Arc<Client>, info: Arc<CollectionInfo>, ids: Vec<String>) -> Result<RecordPage> {
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

/// Compares snapshot collection `entry` with the live collection `info`; with `subset`, the
/// target may hold more (see [`Comparison::subset`]).
pub async fn compare(
    snap: &Snapshot,
    entry: &CollectionEntry,
    client: &Client,
    info: &CollectionInfo,
    listed: usize,
    subset: bool,
) -> Result<Comparison> {
    let (mut cmp, mut target) = start(entry, client, info, subset, None).await?;
    let found = compare_records_paged(snap, entry, &mut target, &mut cmp, listed).await?;
    if cmp.target_records > found {
        account_extra(snap, entry, &mut target, &mut cmp, listed).await?;
    }
    cmp.target_digest = target.digest.to_hex();
    tracing::debug!(
        "collection {:?}: digest {} (snapshot {}), {} extra",
        info.name,
        cmp.target_digest,
        cmp.expected_digest,
        cmp.extra_count
    );
    Ok(cmp)
}

/// Step 1 and the target's side of a comparison (all records, or the rows of `share`).
async fn start(
    entry: &CollectionEntry,
    client: &Client,
    info: &CollectionInfo,
    subset: bool,
    share: Option<Range<u64>>,
) -> Result<(Comparison, Target)> {
    let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
    let cmp = compare_settings(entry, client, info, tol, subset).await?;
    let target = Target {
        client: Arc::new(client.clone()),
        info: Arc::new(info.clone()),
        rows: client.read_page_rows(1000, 32 << 20, entry.dimension),
        digest: RecordsDigest::default(),
        share,
    };
    Ok((cmp, target))
}

/// Step 1: counts, distance space and collection metadata; the record findings start empty.
async fn compare_settings(
    entry: &CollectionEntry,
    client: &Client,
    info: &CollectionInfo,
    tol: Tolerance,
    subset: bool,
) -> Result<Comparison> {
    let target_records = client.count(info).await?;
    let (want_meta, got_meta) = (user_metadata(entry.metadata.as_ref()), user_metadata(info.metadata.as_ref()));
    let to_value = |m: Option<crate::record::Metadata>| m.map_or(Value::Null, Value::Object);
    let metadata_difference =
        compare_values("metadata", &to_value(want_meta), &to_value(got_meta), tol, &mut Drift::default()).err();
    Ok(Comparison {
        source: entry.name.clone(),
        target: info.name.clone(),
        expected_records: entry.count,
        target_records,
        expected_space: entry.space.clone(),
        target_space: info.space(),
        metadata_difference,
        expected_digest: entry.records_digest.clone(),
        target_digest: String::new(),
        missing_count: 0,
        missing: Vec::new(),
        extra_count: 0,
        extra: Vec::new(),
        different_count: 0,
        different: Vec::new(),
        drifted_records: 0,
        drift: Drift::default(),
        tolerance: tol,
        subset,
        share: None,
    })
}

/// Step 2: streams the snapshot in pages on a blocking thread, fetches the same ids from the
/// target (three pages in flight) and compares record by record. Returns how many of the
/// snapshot's records the target holds.
async fn compare_records_paged(
    snap: &Snapshot,
    entry: &CollectionEntry,
    target: &mut Target,
    cmp: &mut Comparison,
    listed: usize,
) -> Result<u64> {
    let (rx, reader) = snapshot_pages(snap, entry, target.rows, target.share.clone());
    let (client, info) = (target.client.clone(), target.info.clone());
    let mut pairs = Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }))
        .map_ok(|want: RecordPage| {
            let (c, i) = (client.clone(), info.clone());
            async move {
                let got = fetch(c, i, want.ids.clone()).await?;
                Ok::<_, Error>((want, got))
            }
        })
        .try_buffered(3);
    let mut found = 0u64;
    while let Some((want, got)) = pairs.try_next().await? {
        compare_page(&want, &got, cmp, listed);
        found += got.len() as u64;
        for i in 0..got.len() {
            target.digest.add(&got.record(i));
        }
    }
    drop(pairs);
    reader.await.map_err(|e| VerifyError::Reader(e.to_string()))?;
    Ok(found)
}

/// The snapshot collection's records (all, or the rows of `share`) in pages of `rows`, read on a
/// blocking thread.
fn snapshot_pages(
    snap: &Snapshot,
    entry: &CollectionEntry,
    rows: usize,
    share: Option<Range<u64>>,
) -> (tokio::sync::mpsc::Receiver<Result<RecordPage>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordPage>>(4);
    let (snap, entry) = (snap.clone(), entry.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let mut page = RecordPage::default();
        for b in snap.collection_rows(&entry, share.unwrap_or(0..entry.count)) {
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
    });
    (rx, reader)
}

/// Compares one snapshot page with what the target returned for its ids.
fn compare_page(want: &RecordPage, got: &RecordPage, cmp: &mut Comparison, listed: usize) {
    let pos: HashMap<&str, usize> = got.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    for i in 0..want.len() {
        let w = want.record(i);
        let Some(&j) = pos.get(w.id) else {
            cmp.missing_count += 1;
            if cmp.missing.len() < listed {
                cmp.missing.push(w.id.to_owned());
            }
            continue;
        };
        match compare_records(&w, &got.record(j), cmp.tolerance) {
            Ok(d) if d.is_zero() => {}
            Ok(d) => {
                cmp.drifted_records += 1;
                cmp.drift.merge(&d);
            }
            Err(why) => {
                cmp.different_count += 1;
                if cmp.different.len() < listed {
                    cmp.different.push(RecordDifference { id: w.id.to_owned(), why });
                }
            }
        }
    }
}

/// Step 3: whatever the target holds beyond the snapshot, listed (the first `listed` in id
/// order) and added to its digest. Both id lists are sorted on disk and merged.
async fn account_extra(
    snap: &Snapshot,
    entry: &CollectionEntry,
    target: &mut Target,
    cmp: &mut Comparison,
    listed: usize,
) -> Result<()> {
    let (s, e) = (snap.clone(), entry.clone());
    let snapshot_ids = tokio::task::spawn_blocking(move || -> Result<Merged> {
        let mut sorted = SortedKeys::new(None);
        for b in s.collection_batches(&e) {
            for r in BatchView::new(&b?).records() {
                sorted.push(r.id.as_bytes()).map_err(VerifyError::Spill)?;
            }
        }
        Ok(sorted.finish().map_err(VerifyError::Spill)?)
    });
    let mut target_ids = SortedKeys::new(None);
    let page = target.client.id_page_rows(30_000);
    let mut pages = std::pin::pin!(target.client.id_pages(&target.info, page));
    while let Some(ids) = pages.try_next().await? {
        tokio::task::block_in_place(|| ids.into_iter().try_for_each(|id| target_ids.push(id.as_bytes())))
            .map_err(VerifyError::Spill)?;
    }
    let target_ids = target_ids.finish().map_err(VerifyError::Spill)?;
    let snapshot_ids = snapshot_ids.await.map_err(|e| VerifyError::Reader(e.to_string()))??;
    let mut chunk = Vec::with_capacity(target.rows);
    let mut extra = difference(target_ids, snapshot_ids);
    loop {
        let next = tokio::task::block_in_place(|| extra.next()).transpose().map_err(VerifyError::Spill)?;
        if let Some(key) = &next {
            let id = String::from_utf8_lossy(key).into_owned();
            cmp.extra_count += 1;
            if cmp.extra.len() < listed {
                cmp.extra.push(id.clone());
            }
            chunk.push(id);
        }
        if chunk.len() >= target.rows || (next.is_none() && !chunk.is_empty()) {
            let page = target.fetch(std::mem::take(&mut chunk)).await?;
            for i in 0..page.len() {
                target.digest.add(&page.record(i));
            }
        }
        if next.is_none() {
            return Ok(());
        }
    }
}

/// Compares rows `share` of snapshot collection `entry` (one shard's) with the live collection:
/// its settings and each of those records, present and equal. Other shards write the same
/// collection, so its count, the records beyond the share and the digest are not judged here:
/// `verify --against` judges the whole once every shard is done.
pub async fn compare_share(
    snap: &Snapshot,
    entry: &CollectionEntry,
    client: &Client,
    info: &CollectionInfo,
    listed: usize,
    subset: bool,
    share: Range<u64>,
) -> Result<Comparison> {
    let (mut cmp, mut target) = start(entry, client, info, subset, Some(share.clone())).await?;
    compare_records_paged(snap, entry, &mut target, &mut cmp, listed).await?;
    cmp.expected_records = share.end - share.start;
    cmp.target_records = cmp.expected_records - cmp.missing_count;
    (cmp.expected_digest, cmp.target_digest) = (String::new(), String::new());
    cmp.share = Some(share);
    Ok(cmp)
}
