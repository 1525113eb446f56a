//! Reads a live collection back and compares it with a snapshot collection: counts, settings,
//! the id set, the records digest, and every record (so server drift is told from differences).
//!
//! Used after a load and by `verify --against`. Memory holds the target's id list only; records
//! are compared page by page as the snapshot is streamed.

use std::collections::HashSet;
use std::sync::Arc;

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;

use super::drift::{Drift, Tolerance, compare_records, compare_values};
use super::settings::user_metadata;
use crate::chroma::{Api, Client, CollectionInfo};
use crate::error::{Error, Result};
use crate::record::RecordPage;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::Snapshot;
use crate::snapshot::{CollectionEntry, RecordsDigest};

/// How many ids of each kind a report lists.
pub const DEFAULT_LISTED: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub source: String,
    pub target: String,
    pub expected_records: u64,
    pub target_records: u64,
    pub expected_space: String,
    pub target_space: String,
    /// A difference in the collection's own metadata (the `hnsw:*` keys aside), if any.
    pub metadata_difference: Option<String>,
    pub expected_digest: String,
    pub target_digest: String,
    pub missing_count: u64,
    pub missing: Vec<String>,
    pub extra_count: u64,
    pub extra: Vec<String>,
    pub different_count: u64,
    pub different: Vec<RecordDifference>,
    /// Records equal only up to the tolerance.
    pub drifted_records: u64,
    pub drift: Drift,
    pub tolerance: Tolerance,
    /// The target may hold more than the snapshot (`--if-exists append`): extra records, a
    /// larger count and other collection metadata are reported but not differences.
    pub subset: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordDifference {
    pub id: String,
    pub why: String,
}

impl Comparison {
    /// Equal up to the documented server drift.
    pub fn ok(&self) -> bool {
        let whole =
            self.expected_records == self.target_records && self.metadata_difference.is_none() && self.extra_count == 0;
        (whole || self.subset)
            && self.expected_space == self.target_space
            && self.missing_count == 0
            && self.different_count == 0
    }

    /// Bit-for-bit equal (the digests agree).
    pub fn exact(&self) -> bool {
        self.ok() && self.expected_digest == self.target_digest
    }

    /// One line per finding, for people.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let here = format!("collection {:?} (snapshot {:?})", self.target, self.source);
        if self.expected_records != self.target_records && !self.subset {
            out.push(format!("{here}: {} records, the snapshot has {}", self.target_records, self.expected_records));
        }
        if self.expected_space != self.target_space {
            out.push(format!("{here}: distance space {}, the snapshot has {}", self.target_space, self.expected_space));
        }
        if let Some(m) = self.metadata_difference.as_ref().filter(|_| !self.subset) {
            out.push(format!("{here}: collection {m}"));
        }
        let list = |ids: &[String], n: u64| {
            let more = n.saturating_sub(ids.len() as u64);
            let shown: Vec<String> = ids.iter().map(|s| format!("{s:?}")).collect();
            format!("{}{}", shown.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
        };
        if self.missing_count > 0 {
            out.push(format!(
                "{here}: {} records missing: {}",
                self.missing_count,
                list(&self.missing, self.missing_count)
            ));
        }
        if self.extra_count > 0 && !self.subset {
            out.push(format!(
                "{here}: {} records not in the snapshot: {}",
                self.extra_count,
                list(&self.extra, self.extra_count)
            ));
        }
        for d in &self.different {
            out.push(format!("{here}: record {:?}: {}", d.id, d.why));
        }
        let more = self.different_count.saturating_sub(self.different.len() as u64);
        if more > 0 {
            out.push(format!("{here}: {more} more records differ"));
        }
        out
    }

    /// The drift, in words ("" when there was none).
    pub fn drift_note(&self) -> String {
        if self.drift.is_zero() {
            return String::new();
        }
        let mut parts = Vec::new();
        let d = &self.drift;
        if d.embedding_values > 0 {
            parts.push(format!("{} embedding values (max {} ulp)", d.embedding_values, d.max_embedding_ulps));
        }
        if d.metadata_values > 0 {
            parts.push(format!("{} float metadata values (max {} ulp)", d.metadata_values, d.max_metadata_ulps));
        }
        if d.empty_metadata > 0 {
            parts.push(format!("{} null metadata read back as {{}}", d.empty_metadata));
        }
        format!("server drift in {} records: {}", self.drifted_records, parts.join(", "))
    }
}

/// Whether a server moves float64 metadata values when it parses them (the 1.x Rust server).
pub fn drifts_float_metadata(client: &Client) -> bool {
    client.api == Api::V2 && !client.server_version.as_deref().is_some_and(|v| v.starts_with("0."))
}

async fn fetch(client: Arc<Client>, info: Arc<CollectionInfo>, ids: Vec<String>) -> Result<RecordPage> {
    if ids.is_empty() {
        return Ok(RecordPage::default());
    }
    let body = client.fetch_records(&info, &ids).await?;
    let parsed = client.parse_records_off_thread(body, &info.name).await?;
    if let Some(why) = parsed.short_arrays {
        return Err(Error::Failed(format!("collection {:?}: cannot read records back: {why}", info.name)));
    }
    if let Some(id) = parsed.missing_embedding.first() {
        return Err(Error::Failed(format!("collection {:?}: record {id:?} has no embedding on the server", info.name)));
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
    let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
    let target_records = client.count(info).await?;
    let mut metadata_difference = None;
    let (want_meta, got_meta) = (user_metadata(entry.metadata.as_ref()), user_metadata(info.metadata.as_ref()));
    let to_value = |m: Option<crate::record::Metadata>| m.map_or(Value::Null, Value::Object);
    if let Err(why) = compare_values("metadata", &to_value(want_meta), &to_value(got_meta), tol, &mut Drift::default())
    {
        metadata_difference = Some(why);
    }
    let mut cmp = Comparison {
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
    };
    let mut remaining: HashSet<String> = client.list_all_ids(info).await?.into_iter().collect();
    let rows = client.read_page_rows(1000, 32 << 20, entry.dimension);

    // Stream the snapshot in pages of `rows` on a blocking thread; fetch the same ids.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordPage>>(4);
    let (snap2, entry2) = (snap.clone(), entry.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let mut page = RecordPage::default();
        for b in snap2.collection_batches(&entry2) {
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

    let client_a = Arc::new(client.clone());
    let info_a = Arc::new(info.clone());
    let mut digest = RecordsDigest::default();
    let mut pairs = tokio_stream_from(rx)
        .map_ok(|want: RecordPage| {
            let present: Vec<String> = want.ids.iter().filter(|id| remaining.contains(*id)).cloned().collect();
            let (c, i) = (client_a.clone(), info_a.clone());
            async move { Ok::<_, Error>((want, fetch(c, i, present).await?)) }
        })
        .try_buffered(3);
    let mut seen_snapshot = HashSet::new();
    while let Some((want, got)) = pairs.try_next().await? {
        let pos: std::collections::HashMap<&str, usize> =
            got.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        for i in 0..want.len() {
            let w = want.record(i);
            seen_snapshot.insert(w.id.to_owned());
            let Some(&j) = pos.get(w.id) else {
                cmp.missing_count += 1;
                if cmp.missing.len() < listed {
                    cmp.missing.push(w.id.to_owned());
                }
                continue;
            };
            let g = got.record(j);
            match compare_records(&w, &g, tol) {
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
        for i in 0..got.len() {
            digest.add(&got.record(i));
        }
    }
    drop(pairs);
    reader.await.map_err(|e| Error::Failed(format!("snapshot reader failed: {e}")))?;

    // Whatever the target holds beyond the snapshot.
    let extra: Vec<String> = remaining.drain().filter(|id| !seen_snapshot.contains(id)).collect();
    cmp.extra_count = extra.len() as u64;
    let mut sorted = extra.clone();
    sorted.sort();
    cmp.extra = sorted.into_iter().take(listed).collect();
    for chunk in extra.chunks(rows) {
        let page = fetch(client_a.clone(), info_a.clone(), chunk.to_vec()).await?;
        for i in 0..page.len() {
            digest.add(&page.record(i));
        }
    }
    cmp.target_digest = digest.to_hex();
    tracing::debug!(
        "collection {:?}: digest {} (snapshot {}), {} extra",
        info.name,
        cmp.target_digest,
        cmp.expected_digest,
        cmp.extra_count
    );
    Ok(cmp)
}

/// Adapts a tokio receiver to a stream without the tokio-stream crate.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + Unpin {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }))
}

/// `verify DIR --against URL`: compares the chosen snapshot collections (all by default) with the
/// live collections they were loaded into.
pub async fn verify_against(
    snapshot: &std::path::Path,
    connect: &crate::chroma::ConnectOptions,
    collections: &[(String, String)],
    listed: usize,
) -> Result<Vec<Comparison>> {
    let snap = Snapshot::open(snapshot)?;
    let pairs = super::select(&snap, collections)?;
    let client = Client::connect(connect).await?;
    let mut out = Vec::new();
    for (entry, dst) in pairs {
        let info = client.get_collection(&dst).await?;
        out.push(compare(&snap, entry, &client, &info, listed, false).await?);
    }
    Ok(out)
}
