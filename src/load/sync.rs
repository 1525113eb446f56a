//! `load --if-exists sync`: makes an existing target collection equal to the snapshot with the
//! fewest writes. The difference is found by the comparison walk of `verify --against` and
//! `diff` ([`crate::verify::walk`]), spilled to disk, then written in three steps: delete the ids
//! the snapshot lacks, rewrite the changed records exactly, add the missing ones. Identical
//! records (Chroma's own write drift included) are left alone.
//!
//! A changed record must end exactly as in the snapshot, and `upsert` merges metadata keys. How
//! to rewrite one exactly differs by server generation (measured, tests/it/sync.rs):
//! - 1.x: delete it, then add it (`upsert` keeps a removed key, and cannot clear a document or a
//!   uri: a null leaves the old value).
//! - 0.x: `upsert` it with a null for every metadata key the target has and the snapshot does
//!   not (the server removes those keys; a null document clears it). Missing records are upserted
//!   too: 0.4.24's vector index drops an `add` of an id whose deletion it has not applied yet
//!   (its write batch holds ~100 operations) while its metadata store keeps the record, and
//!   every `get` with embeddings then fails (IndexError). That is what a rollback meets: a bad
//!   job deleted records a moment ago, the sync adds them back. `upsert` takes the pending
//!   deletion back; deleting and adding a changed record would meet the same drop.
//!
//! Resuming needs no state: a rerun computes the difference again from the target as it is. A
//! record deleted to be rewritten but not yet added back is then missing, and the snapshot holds
//! it, so it is added; ids already deleted are no longer there; records rewritten are identical.
//! The journal's `synced` lines record what each run did (and its collection line lets a later
//! plain `load` find the collection loaded already); nothing is skipped on their account.
//!
//! The read-back after a sync ([`read_back`]) reads only what the sync wrote: the count, the
//! settings, every record written (fetched by id and compared with the snapshot), every id
//! deleted (looked for), and the target's digest as the digest of the records the walk found
//! identical plus that of the records read back. Anything it finds wrong is compared again in
//! full (`verify --against` reads everything, always).

use serde::Serialize;
use serde_json::Value;

use super::batcher::BatchLimits;
use super::body::{BODY_OVERHEAD, encode, record_bytes};
use super::decide::{Decision, check_dimension, find};
use super::error::LoadError;
use super::journal::{Journal, Line, WriteOp};
use super::{CollectionLoad, Run};
use crate::chroma::Client;
use crate::diff::CollectionDiff;
use crate::error::{Error, Result};
use crate::load::settings::{self, entry_of};
use crate::record::{RecordPage, RecordRef, parse_metadata};
use crate::snapshot::CollectionEntry;
use crate::snapshot::RecordsDigest;
use crate::snapshot::reader::Snapshot;
use crate::spill::{KeyReader, KeySpill};
use crate::verify::compare::{Findings, drifts_float_metadata};
use crate::verify::drift::Tolerance;
use crate::verify::merge::{decode, encode as encode_record};
use crate::verify::source::Side;
use crate::verify::walk::{self, Sink};
use crate::verify::{Comparison, VerifyError};

/// What a sync did (or, in a dry run, would do) to one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    /// Records the target lacked.
    pub added: u64,
    /// Records the target held otherwise, rewritten.
    pub updated: u64,
    /// Records the snapshot lacks, deleted.
    pub deleted: u64,
    /// Records left alone (equal up to Chroma's documented write drift).
    pub unchanged: u64,
    /// The collection's own metadata differed and was rewritten.
    pub metadata: bool,
}

impl SyncCounts {
    pub fn of(d: &CollectionDiff) -> Self {
        Self {
            added: d.only_in_a_count,
            updated: d.changed_count,
            deleted: d.only_in_b_count,
            unchanged: d.identical,
            metadata: d.settings.metadata.is_some(),
        }
    }
}

/// How a changed record is rewritten exactly on a server (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    DeleteThenAdd,
    UpsertWithNulls,
}

impl Rewrite {
    pub fn for_server(client: &Client) -> Self {
        if client.server_version.as_deref().is_some_and(|v| v.starts_with("0.")) {
            Rewrite::UpsertWithNulls
        } else {
            Rewrite::DeleteThenAdd
        }
    }
}

/// Refuses, before anything is written, a target collection whose dimension, distance space or
/// HNSW parameters differ from the snapshot's: only a new collection changes them.
pub async fn check_settings(pairs: &[(&CollectionEntry, String)], client: &Client) -> Result<()> {
    for (entry, dst) in pairs {
        let Some(info) = find(client, dst).await? else { continue };
        check_dimension(entry, &info)?;
        let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
        let d = settings::compare(entry, &entry_of(&info, 0), tol);
        if !d.build.is_empty() {
            return Err(LoadError::SyncSettings {
                target: dst.clone(),
                url: client.url().to_owned(),
                source_collection: entry.name.clone(),
                why: d.build.join("; "),
            }
            .into());
        }
    }
    Ok(())
}

/// Compares snapshot collection `entry` with the live `info`, record by record; with `rewrite`,
/// also spills what must be written.
pub async fn difference(
    snap: &Snapshot,
    entry: &CollectionEntry,
    client: &Client,
    info: &crate::chroma::CollectionInfo,
    rewrite: Option<Rewrite>,
) -> Result<(CollectionDiff, Option<Work>)> {
    let info = &info.filtered(entry.filter.as_ref()); // a partial snapshot: the same records
    let count = client.count(info).await?;
    let target = entry_of(info, count);
    let tol = Tolerance::for_target(&entry.space, drifts_float_metadata(client));
    let diff = CollectionDiff::new(
        entry.name.clone(),
        info.name.clone(),
        (entry.count, count),
        settings::compare(entry, &target, tol),
        tol,
    );
    let spill = |_| KeySpill::new(None).map_err(|e| Error::from(VerifyError::Spill(e)));
    let mut work = Work {
        diff,
        rewrite: rewrite.unwrap_or(Rewrite::DeleteThenAdd),
        spill: rewrite.is_some(),
        delete: spill(())?,
        upsert: spill(())?,
        add: spill(())?,
        written: Written { check: spill(())?, gone: spill(())?, unchanged: RecordsDigest::default() },
        key: Vec::new(),
    };
    let (a, b) = (Side::snapshot(snap, entry), Side::server(client, info));
    walk::walk(&a, &b, (entry.count, count), entry.dimension.or(info.dimension), &mut work).await?;
    let spilled = work.spill;
    let diff = work.diff.clone();
    Ok((diff, spilled.then_some(work)))
}

/// The difference of one collection, spilled: ids to delete, records to upsert and to add.
pub struct Work {
    pub diff: CollectionDiff,
    rewrite: Rewrite,
    spill: bool,
    delete: KeySpill,
    upsert: KeySpill,
    add: KeySpill,
    written: Written,
    key: Vec<u8>,
}

/// What the read-back after a sync checks: every record written (as the snapshot has it), every
/// id deleted, and the target's digest of the records left alone, taken by the difference walk.
pub struct Written {
    check: KeySpill,
    gone: KeySpill,
    unchanged: RecordsDigest,
}

impl Work {
    /// Spills snapshot record `r` to be written: to the upsert or add list (as `put`, which may
    /// carry nulls for removed keys), and as the snapshot has it to the read-back's list.
    fn push_record(&mut self, r: &RecordRef<'_>, put: &RecordRef<'_>, upsert: bool) -> Result<()> {
        let spill = |e| Error::from(VerifyError::Spill(e));
        encode_record(r, &mut self.key);
        self.written.check.push(&self.key).map_err(spill)?;
        if put.metadata != r.metadata {
            encode_record(put, &mut self.key);
        }
        let to = if upsert { &mut self.upsert } else { &mut self.add };
        to.push(&self.key).map_err(spill)
    }
}

impl Sink for Work {
    fn only_a(&mut self, a: RecordRef<'_>) -> Result<()> {
        self.diff.note_only_a(a.id, 0);
        if self.spill { self.push_record(&a, &a, false) } else { Ok(()) }
    }

    fn both(&mut self, a: RecordRef<'_>, b: RecordRef<'_>) -> Result<()> {
        let changed = self.diff.judge(&a, &b, 0);
        if !self.spill {
            return Ok(());
        }
        if !changed {
            self.written.unchanged.add(&b);
            return Ok(());
        }
        match self.rewrite {
            Rewrite::DeleteThenAdd => {
                self.delete.push(a.id.as_bytes()).map_err(VerifyError::Spill)?;
                self.push_record(&a, &a, false)
            }
            Rewrite::UpsertWithNulls => {
                let meta = with_removed_keys(a.metadata, b.metadata);
                self.push_record(&a, &RecordRef { metadata: meta.as_deref(), ..a }, true)
            }
        }
    }

    fn only_b(&mut self, id: &str, _b: Option<RecordRef<'_>>) -> Result<()> {
        self.diff.note_only_b(id, 0);
        if self.spill {
            self.delete.push(id.as_bytes()).map_err(VerifyError::Spill)?;
            self.written.gone.push(id.as_bytes()).map_err(VerifyError::Spill)?;
        }
        Ok(())
    }
}

/// The snapshot's metadata with a null for every key only `got` has (an upsert then removes
/// them); the snapshot's own text when there is none.
fn with_removed_keys(want: Option<&str>, got: Option<&str>) -> Option<String> {
    let parse = |t: Option<&str>| t.and_then(|t| parse_metadata(t).ok()).unwrap_or_default();
    let (mut m, g) = (parse(want), parse(got));
    let gone: Vec<&String> = g.keys().filter(|k| !m.contains_key(*k)).collect();
    if gone.is_empty() {
        return want.map(str::to_owned);
    }
    for k in gone {
        m.insert(k.clone(), Value::Null);
    }
    Some(Value::Object(m).to_string())
}

/// The collection metadata to write: the snapshot's own keys, with the target's `hnsw:*`
/// settings kept (a modify replaces the whole map, and 0.x keeps its settings there).
fn metadata_to_write(entry: &CollectionEntry, info: &crate::chroma::CollectionInfo) -> crate::record::Metadata {
    let mut m = settings::user_metadata(entry.metadata.as_ref()).unwrap_or_default();
    for (k, v) in info.metadata.iter().flatten().filter(|(k, _)| k.starts_with("hnsw:")) {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Writes the spilled difference of one collection: the collection's metadata when it differs,
/// then deletes, rewrites, adds, in that order, each acknowledged request journalled. Returns
/// what the read-back checks ([`read_back`]).
pub(super) async fn apply(
    run: &mut Run<'_>,
    journal: &mut Journal,
    (entry, d): (&CollectionEntry, &Decision),
    work: Work,
    out: &mut CollectionLoad,
) -> Result<Written> {
    let total = work.delete.len() + work.upsert.len() + work.add.len();
    let bar = run.progress.bar(&out.target, Some(total), "writes");
    if work.diff.settings.metadata.is_some() {
        let m = metadata_to_write(entry, &d.info);
        if m.is_empty() {
            // 1.x refuses an empty map: the read-back reports the difference.
            tracing::warn!(
                "collection {:?}: its metadata cannot be emptied in place; use --if-exists replace",
                d.info.name
            );
        } else {
            run.client.modify_metadata(&d.info, &m).await?;
            acknowledged(run, journal, out, "metadata", 0, &*bar)?;
        }
    }
    let spill = |e| Error::from(VerifyError::Spill(e));
    let mut ids = work.delete.into_reader().map_err(spill)?;
    loop {
        let batch = tokio::task::block_in_place(|| ids.next_strings(d.limits.max_rows)).map_err(spill)?;
        if batch.is_empty() {
            break;
        }
        let n = batch.len() as u64;
        let what = format!("collection {:?}: delete {n} records from id {:?}", d.info.name, batch[0]);
        let body = serde_json::to_vec(&serde_json::json!({ "ids": batch })).expect("ids serialise");
        let batch_no = out.batches_sent;
        run.client.post_records(&d.info, "delete", body.into(), &what).await.map_err(|source| LoadError::Batch {
            collection: d.info.name.clone(),
            batch: batch_no,
            source,
        })?;
        acknowledged(run, journal, out, "delete", n, &*bar)?;
    }
    // 0.x drops an `add` of an id whose deletion its vector index has not applied yet: upsert.
    let add = if work.rewrite == Rewrite::UpsertWithNulls { WriteOp::Upsert } else { WriteOp::Add };
    for (step, op, records) in [("rewrite", WriteOp::Upsert, work.upsert), ("add", add, work.add)] {
        let mut records = records.into_reader().map_err(spill)?;
        let mut pending = None;
        while let Some(page) =
            tokio::task::block_in_place(|| next_page(&mut records, &mut pending, d.limits)).map_err(spill)?
        {
            let n = page.len() as u64;
            let body = encode(&page, d.limits.encoding)
                .map_err(|why| LoadError::Encode { collection: d.info.name.clone(), why })?;
            let target = super::send::Target { client: run.client, info: &d.info, op, encoding: d.limits.encoding };
            super::send::send(&target, page, body, out.batches_sent).await?;
            out.records_sent += n;
            acknowledged(run, journal, out, step, n, &*bar)?;
        }
    }
    bar.finish();
    Ok(work.written)
}

/// The read-back after a sync, without reading the collection again: the settings and the count
/// (step 1 of [`crate::verify::compare`]), every record written fetched and compared with the
/// snapshot's, every id deleted looked for, and the target's digest as the digest of the records
/// left alone plus that of the records read back. `diff` is the difference walk's, whose drift
/// the records left alone carry. A comparison that is not clean is redone in full by the caller,
/// to name everything.
pub(super) async fn read_back(
    entry: &CollectionEntry,
    client: &Client,
    info: &crate::chroma::CollectionInfo,
    listed: usize,
    (diff, written): (&CollectionDiff, Written),
) -> Result<Comparison> {
    let info = &info.filtered(entry.filter.as_ref()); // a partial snapshot: the same records
    let spill = |e| Error::from(VerifyError::Spill(e));
    let mut cmp = crate::verify::compare::start(entry, client, info, false).await?;
    (cmp.drifted_records, cmp.drift) = (diff.drifted, diff.drift);
    let mut digest = written.unchanged;
    let server = Side::server(client, info);
    let rows = server.page_rows(entry.dimension);
    let mut sink = Findings { cmp: &mut cmp, listed, digest: &mut digest };
    let mut records = written.check.into_reader().map_err(spill)?;
    let mut read = 0u64;
    loop {
        let page = tokio::task::block_in_place(|| next_records(&mut records, rows)).map_err(spill)?;
        if page.is_empty() {
            break;
        }
        let got = server.fetch(page.ids.clone()).await?;
        read += page.len() as u64;
        walk::pair_page(&page, &got, &mut sink)?;
    }
    let mut gone = written.gone.into_reader().map_err(spill)?;
    loop {
        let ids = tokio::task::block_in_place(|| gone.next_strings(rows)).map_err(spill)?;
        if ids.is_empty() {
            break;
        }
        let got = server.fetch(ids).await?;
        for i in 0..got.len() {
            let r = got.record(i);
            sink.only_b(r.id, Some(r))?;
        }
    }
    cmp.target_digest = digest.to_hex();
    cmp.read_back = Some(read);
    Ok(cmp)
}

/// Up to `rows` records from a spill of encoded records.
fn next_records(records: &mut KeyReader, rows: usize) -> std::io::Result<RecordPage> {
    let mut page = RecordPage::default();
    for key in records.by_ref().take(rows) {
        decode(&key?).with(|r| {
            if page.is_empty() {
                page = RecordPage::with_capacity(r.embedding.len(), rows);
            }
            page.push(r);
        });
    }
    Ok(page)
}

/// Journals an acknowledged request and counts it (and stops there under `--fail-after-batches`).
fn acknowledged(
    run: &mut Run<'_>,
    journal: &mut Journal,
    out: &mut CollectionLoad,
    step: &str,
    rows: u64,
    bar: &dyn crate::progress::Bar,
) -> Result<()> {
    journal.append(Line::Synced { dst: out.target.clone(), step: step.to_owned(), rows })?;
    out.batches_sent += 1;
    bar.inc(rows);
    run.acked_in_run += 1;
    if run.plan.fail_after_batches.is_some_and(|n| run.acked_in_run >= n) {
        return Err(LoadError::StoppedForTest(run.acked_in_run).into());
    }
    Ok(())
}

/// The next request's records from a spill of encoded records, cut by `limits`; `pending` holds a
/// record read that did not fit.
fn next_page(
    records: &mut KeyReader,
    pending: &mut Option<Vec<u8>>,
    limits: BatchLimits,
) -> std::io::Result<Option<RecordPage>> {
    let mut page: Option<RecordPage> = None;
    let mut bytes = BODY_OVERHEAD;
    loop {
        let Some(key) = pending.take().map(Ok).or_else(|| records.next()).transpose()? else {
            return Ok(page);
        };
        let d = decode(&key);
        let fits = d.with(|r| {
            let size = record_bytes(limits.encoding, r.id, r.embedding.len(), r.document, r.uri, r.metadata);
            let p = page.get_or_insert_with(|| RecordPage::with_capacity(r.embedding.len(), limits.max_rows.min(4096)));
            if !p.is_empty() && (p.len() >= limits.max_rows || bytes + size > limits.max_bytes) {
                return false;
            }
            bytes += size;
            p.push(r);
            true
        });
        if !fits {
            *pending = Some(key);
            return Ok(page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_keys_become_nulls() {
        assert_eq!(with_removed_keys(Some(r#"{"a":1}"#), Some(r#"{"a":2}"#)).as_deref(), Some(r#"{"a":1}"#));
        let got = with_removed_keys(Some(r#"{"a":1}"#), Some(r#"{"a":1,"s":"x"}"#)).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&got).unwrap(), serde_json::json!({"a": 1, "s": null}));
        let got = with_removed_keys(None, Some(r#"{"s":"x"}"#)).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&got).unwrap(), serde_json::json!({"s": null}));
        assert_eq!(with_removed_keys(None, None), None);
    }
}
