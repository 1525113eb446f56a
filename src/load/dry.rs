//! `load --dry-run`: the plan of a load without a single write: per collection what would happen
//! (create, resume, replace, append, join), how many batches and bytes, and a rough time; under
//! `--shard`, the shard's share (its rows, and the parts and row groups it would read).

use std::path::Path;

use super::batcher::{BatchLimits, Batcher};
use super::body::Encoding;
use super::decide::{check_dimension, find};
use super::journal::{Journal, WriteOp};
use super::{CollectionLoad, IfExists, LoadPlan};
use crate::chroma::{Api, Client};
use crate::error::Result;
use crate::snapshot::CollectionEntry;
use crate::snapshot::reader::Snapshot;
use crate::verify::compare::drifts_float_metadata;
use crate::verify::drift::Tolerance;

/// The plan of every collection, with what the journal (if any, of this snapshot) already did.
pub(super) async fn plan_all(
    snap: &Snapshot,
    pairs: &[(&CollectionEntry, String)],
    client: &Client,
    limits: BatchLimits,
    plan: &LoadPlan,
    journal: &Path,
) -> Result<Vec<CollectionLoad>> {
    let manifest_blake3 = snap.manifest_blake3.to_hex();
    let known =
        Journal::peek(journal)?.filter(|st| st.manifest_blake3() == Some(manifest_blake3.as_str())).unwrap_or_default();
    let mut out = Vec::new();
    for (entry, dst) in pairs {
        let mut c = dry_run(snap, entry, dst, client, limits, plan).await?;
        // A sync compares with the target whatever the journal says.
        let journalled = known.collections.get(dst.as_str()).filter(|st| st.src == entry.name);
        if let Some(st) = journalled.filter(|_| plan.if_exists != Some(IfExists::Sync)) {
            c.action = if st.done {
                "loaded already (journal)".to_owned()
            } else {
                format!("would resume: {} batches done", st.acked.len())
            };
        }
        out.push(c);
    }
    Ok(out)
}

/// Rough records per second of a server, for dry-run estimates (docs/performance.md).
fn estimated_rate(client: &Client, enc: Encoding) -> f64 {
    match (client.api, enc) {
        (Api::V2, Encoding::Base64) => 1000.0,
        (Api::V2, Encoding::Json) => 600.0,
        (Api::V1, _) => 300.0,
    }
}

async fn dry_run(
    snap: &Snapshot,
    entry: &CollectionEntry,
    dst: &str,
    client: &Client,
    limits: BatchLimits,
    plan: &LoadPlan,
) -> Result<CollectionLoad> {
    let existing = find(client, dst).await?;
    if let Some(info) = &existing {
        check_dimension(entry, info)?;
    }
    let (mut batches, mut bytes, mut records) = (0u64, 0u64, 0u64);
    let share = match plan.shard {
        Some(s) => Some(tokio::task::block_in_place(|| super::shard::share_of(snap, entry, s))?),
        None => None,
    };
    tokio::task::block_in_place(|| -> Result<()> {
        for b in Batcher::new(snap.collection_rows(entry, plan.rows(entry.count)), limits, |_| true) {
            let b = b?;
            batches += 1;
            bytes += b.bytes as u64;
            records += b.rows as u64;
        }
        Ok(())
    })?;
    let action = match (&existing, plan.if_exists) {
        (None, _) if plan.shard.is_some() => "would create/join".to_owned(),
        (None, _) => "would create".to_owned(),
        (Some(info), _) if plan.shard.is_some() => {
            let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
            let differ = super::settings::differences(entry, info, tol);
            if differ.is_empty() {
                "would join".to_owned()
            } else {
                tracing::warn!("collection {dst:?} exists with other settings: {}", differ.join("; "));
                "would stop: other settings".to_owned()
            }
        }
        (Some(_), Some(IfExists::Replace)) => "would replace".to_owned(),
        (Some(_), Some(IfExists::Append)) => "would append".to_owned(),
        (Some(_), Some(IfExists::Sync)) => "would sync".to_owned(),
        (Some(_), Some(IfExists::Resume)) => "would resume (if journalled)".to_owned(),
        (Some(_), _) => "exists: would fail unless journalled (see --if-exists)".to_owned(),
    };
    // A sync reads the target and counts what it would write; a collection it creates is all added.
    let sync = match (&existing, plan.if_exists) {
        (Some(info), Some(IfExists::Sync)) => {
            let (diff, _) = super::sync::difference(snap, entry, client, info, None).await?;
            Some(super::sync::SyncCounts::of(&diff))
        }
        (None, Some(IfExists::Sync)) => Some(super::sync::SyncCounts { added: records, ..Default::default() }),
        _ => None,
    };
    let op = if plan.upsert || (existing.is_some() && plan.if_exists == Some(IfExists::Append)) {
        WriteOp::Upsert
    } else {
        WriteOp::Add
    };
    Ok(CollectionLoad {
        source: entry.name.clone(),
        target: dst.to_owned(),
        action,
        op,
        records,
        share,
        batches,
        batches_sent: 0,
        records_sent: 0,
        bytes,
        limits,
        seconds: 0.0,
        rate: 0.0,
        estimated_seconds: Some(records as f64 / estimated_rate(client, limits.encoding)),
        sync,
        comparison: None,
    })
}
