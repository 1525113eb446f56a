//! Reads a live collection back and compares it with a snapshot collection, in four steps:
//! settings and counts, the snapshot streamed in pages beside the same ids fetched from the
//! server, the records the target holds beyond the snapshot, and the target's records digest.
//!
//! Memory is flat at any size: records are compared page by page, and no id list is held. The
//! target's count tells whether it holds records beyond the snapshot (ids are unique on both
//! sides, so `count == found` means none); only then are both id lists sorted on disk
//! ([`crate::spill`]) and merged to name them.

use std::ops::Range;

use serde_json::Value;

use super::drift::{Drift, Tolerance, compare_records, compare_values};
use super::report::{Comparison, RecordDifference};
use super::source::Side;
use super::walk::{self, Sink};
use crate::chroma::{Api, Client, CollectionInfo};
use crate::error::Result;
use crate::load::settings::user_metadata;
use crate::record::RecordRef;
use crate::snapshot::reader::Snapshot;
use crate::snapshot::{CollectionEntry, RecordsDigest};

/// Whether a server moves float64 metadata values when it parses them (the 1.x Rust server).
pub fn drifts_float_metadata(client: &Client) -> bool {
    client.api == Api::V2 && !client.server_version.as_deref().is_some_and(|v| v.starts_with("0."))
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
    let info = &info.filtered(entry.filter.as_ref()); // a partial snapshot: the same records
    let mut cmp = start(entry, client, info, subset).await?;
    let (a, b) = (Side::snapshot(snap, entry), Side::server(client, info));
    let mut digest = RecordsDigest::default();
    let mut sink = Findings { cmp: &mut cmp, listed, digest: &mut digest };
    let found = walk::paged(&a, &b, entry.dimension, &mut sink).await?;
    if sink.cmp.target_records > found {
        walk::only_b(&a, &b, entry.dimension, &mut sink).await?;
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

/// Step 1, with the tolerance of this target.
pub(crate) async fn start(
    entry: &CollectionEntry,
    client: &Client,
    info: &CollectionInfo,
    subset: bool,
) -> Result<Comparison> {
    let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
    compare_settings(entry, client, info, tol, subset).await
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
        read_back: None,
    })
}

/// Steps 2 and 3 as a walk: what the target lacks, holds otherwise or holds beyond the snapshot
/// goes into the comparison, and every record the target holds into its digest.
pub(crate) struct Findings<'a> {
    pub cmp: &'a mut Comparison,
    pub listed: usize,
    pub digest: &'a mut RecordsDigest,
}

impl Sink for Findings<'_> {
    fn only_a(&mut self, a: RecordRef<'_>) -> Result<()> {
        self.cmp.missing_count += 1;
        if self.cmp.missing.len() < self.listed {
            self.cmp.missing.push(a.id.to_owned());
        }
        Ok(())
    }

    fn both(&mut self, a: RecordRef<'_>, b: RecordRef<'_>) -> Result<()> {
        self.digest.add(&b);
        match compare_records(&a, &b, self.cmp.tolerance) {
            Ok(d) if d.is_zero() => {}
            Ok(d) => {
                self.cmp.drifted_records += 1;
                self.cmp.drift.merge(&d);
            }
            Err(why) => {
                self.cmp.different_count += 1;
                if self.cmp.different.len() < self.listed {
                    self.cmp.different.push(RecordDifference { id: a.id.to_owned(), why });
                }
            }
        }
        Ok(())
    }

    fn only_b(&mut self, id: &str, b: Option<RecordRef<'_>>) -> Result<()> {
        self.cmp.extra_count += 1;
        if self.cmp.extra.len() < self.listed {
            self.cmp.extra.push(id.to_owned());
        }
        if let Some(b) = b {
            self.digest.add(&b);
        }
        Ok(())
    }

    fn wants_b_records(&self) -> bool {
        true
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
    let info = &info.filtered(entry.filter.as_ref()); // a partial snapshot: the same records
    let mut cmp = start(entry, client, info, subset).await?;
    let a = Side::snapshot_rows(snap, entry, Some(share.clone()));
    let mut digest = RecordsDigest::default();
    let mut sink = Findings { cmp: &mut cmp, listed, digest: &mut digest };
    walk::paged(&a, &Side::server(client, info), entry.dimension, &mut sink).await?;
    cmp.expected_records = share.end - share.start;
    cmp.target_records = cmp.expected_records - cmp.missing_count;
    (cmp.expected_digest, cmp.target_digest) = (String::new(), String::new());
    cmp.share = Some(share);
    Ok(cmp)
}
