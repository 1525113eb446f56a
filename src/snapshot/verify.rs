//! Proves a snapshot intact: every part's size and blake3, its row count and schema, and every
//! collection's records digest, recomputed from the files.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::Serialize;

use super::SnapshotError;
use super::convert::BatchView;
use super::digest::RecordsDigest;
use super::manifest::{CollectionEntry, MANIFEST_FILE, PartEntry};
use super::reader::{PartReader, READ_BATCH_ROWS, Snapshot};
use super::store::{LocalStore, Store, hash_blob, spool_blob};
use crate::record::RecordRef;
use crate::spill::SortedKeys;

/// The state directory and side files verify ignores (never parts, see [`super::validate`]).
pub use super::validate::{SIDE_FILES, STATE_DIR};

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub collections: Vec<CollectionCheck>,
    /// Every problem found, each naming its collection and part or file.
    pub problems: Vec<String>,
    /// What a [`RecordCheck`] found (empty for a plain verify), each naming collection, part and
    /// record; at most [`RECORD_PROBLEMS_PER_PART`] per part.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub record_problems: Vec<String>,
}

/// A check of every record of the collections it chooses, run in the same pass as the integrity
/// checks (load's pre-flight). `wants` picks collections; `check` says what is wrong with a record.
pub trait RecordCheck: Sync {
    fn wants(&self, c: &CollectionEntry) -> bool;
    fn check(&self, c: &CollectionEntry, r: &RecordRef<'_>) -> Option<String>;
}

/// Record problems kept per part (the rest are counted).
pub const RECORD_PROBLEMS_PER_PART: usize = 5;

/// Checks no record: a plain verify.
pub struct NoCheck;

impl RecordCheck for NoCheck {
    fn wants(&self, _: &CollectionEntry) -> bool {
        false
    }
    fn check(&self, _: &CollectionEntry, _: &RecordRef<'_>) -> Option<String> {
        None
    }
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionCheck {
    pub name: String,
    pub parts: usize,
    pub rows: u64,
    pub records_digest: Option<String>,
    pub ok: bool,
}

struct PartResult {
    rows: u64,
    digest: RecordsDigest,
    problems: Vec<String>,
    record_problems: Vec<String>,
    /// A part that is not a regular file: the whole snapshot is refused.
    refused: Option<SnapshotError>,
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Every id of the snapshot as a 64-bit hash behind its collection's index, sorted on disk: equal
/// neighbours are duplicate candidates, confirmed by a second pass over the ids themselves. Memory
/// holds one sort run whatever the size of the snapshot.
struct IdHashes(Mutex<Result<SortedKeys, std::io::Error>>);

impl IdHashes {
    fn new() -> Self {
        Self(Mutex::new(Ok(SortedKeys::new(None))))
    }

    fn push(&self, collection: usize, ids: impl Iterator<Item = u64>) {
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(sorted) = guard.as_mut() else { return };
        for h in ids {
            let mut key = [0u8; 12];
            key[..4].copy_from_slice(&(collection as u32).to_be_bytes());
            key[4..].copy_from_slice(&h.to_be_bytes());
            if let Err(e) = sorted.push(&key) {
                *guard = Err(e);
                return;
            }
        }
    }

    /// Per collection index, the hashes seen more than once.
    fn candidates(self) -> Result<BTreeMap<usize, HashSet<u64>>, SnapshotError> {
        let io = |source| SnapshotError::Io { path: PathBuf::from("TMPDIR (sorting id hashes)"), source };
        let sorted = self.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).map_err(io)?;
        let mut out: BTreeMap<usize, HashSet<u64>> = BTreeMap::new();
        let mut last: Option<Vec<u8>> = None;
        for key in sorted.finish().map_err(io)? {
            let key = key.map_err(io)?;
            if last.as_ref() == Some(&key) {
                let c = u32::from_be_bytes(key[..4].try_into().expect("4 bytes")) as usize;
                out.entry(c).or_default().insert(u64::from_be_bytes(key[4..].try_into().expect("8 bytes")));
            }
            last = Some(key);
        }
        Ok(out)
    }
}

/// Checks one part: its size and blake3 first, then every record (digest, ids, `rc`).
fn check_part(
    snap: &Snapshot,
    (index, coll): (usize, &CollectionEntry),
    part: &PartEntry,
    rc: &dyn RecordCheck,
    ids: &IdHashes,
) -> PartResult {
    let mut res = PartResult {
        rows: 0,
        digest: RecordsDigest::default(),
        problems: Vec::new(),
        record_problems: Vec::new(),
        refused: None,
    };
    let here = format!("collection {:?}, part {}", coll.name, part.path);
    if let Some(blob) = check_bytes(snap, coll, part, &here, &mut res) {
        check_records(blob, (index, coll), part, (rc, ids), &here, &mut res);
    }
    res
}

/// The part's file: inside the snapshot, present, of the size and blake3 the manifest says.
/// Returns it for reading when it is.
fn check_bytes(
    snap: &Snapshot,
    coll: &CollectionEntry,
    part: &PartEntry,
    here: &str,
    res: &mut PartResult,
) -> Option<super::store::Blob> {
    match check_part_bytes(snap, coll, part, here) {
        Ok(Ok(blob)) => Some(blob),
        Ok(Err(problem)) => {
            res.problems.push(problem);
            None
        }
        Err(refused) => {
            res.refused = Some(refused);
            None
        }
    }
}

/// One part's bytes against the manifest (its path, presence, size and blake3): the part for
/// reading, or the problem (prefixed with `here`); a file that must not be read at all (not a
/// regular file) is an error.
pub fn check_part_bytes(
    snap: &Snapshot,
    coll: &CollectionEntry,
    part: &PartEntry,
    here: &str,
) -> Result<Result<super::store::Blob, String>, SnapshotError> {
    if let Err(e) = snap.part_path(coll, part) {
        return Ok(Err(format!("{here}: {}", e.detail())));
    }
    let blob = match snap.store.open(&part.path) {
        Ok(b) => b,
        Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(format!("{here}: missing")));
        }
        Err(SnapshotError::Io { source, .. }) => return Ok(Err(format!("{here}: cannot read: {source}"))),
        Err(refused) => return Err(refused),
    };
    // An object store's part is downloaded once, into a temporary file read by both passes.
    let hashed =
        if snap.store.remote() { spool_blob(&blob) } else { hash_blob(&blob).map(|(hash, bytes)| (hash, bytes, blob)) };
    Ok(match hashed {
        Err(e) => Err(format!("{here}: cannot read: {e}")),
        Ok((_, bytes, _)) if bytes != part.bytes => {
            Err(format!("{here}: {bytes} bytes, the manifest says {} (truncated or replaced)", part.bytes))
        }
        Ok((hash, _, _)) if hash.to_hex() != part.blake3 => {
            Err(format!("{here}: blake3 {hash} differs from the manifest's {} (corrupted)", part.blake3))
        }
        Ok((_, _, blob)) => Ok(blob),
    })
}

/// Every record of an intact part: digest, id hashes (for duplicates), row count, and `rc`.
fn check_records(
    blob: super::store::Blob,
    (index, coll): (usize, &CollectionEntry),
    part: &PartEntry,
    (rc, ids): (&dyn RecordCheck, &IdHashes),
    here: &str,
    res: &mut PartResult,
) {
    let wants = rc.wants(coll);
    let mut bad_records = 0usize;
    let reader = match PartReader::new(blob, coll.dimension, READ_BATCH_ROWS) {
        Ok(r) => r,
        Err(e) => return res.problems.push(format!("{here}: {}", e.detail())),
    };
    for batch in reader {
        let b = match batch {
            Ok(b) => b,
            Err(e) => return res.problems.push(format!("{here}: {}", e.detail())),
        };
        let view = BatchView::new(&b);
        ids.push(index, view.records().map(|r| id_hash(r.id)));
        for r in view.records() {
            res.digest.add(&r);
            if let Some(why) = wants.then(|| rc.check(coll, &r)).flatten() {
                bad_records += 1;
                if res.record_problems.len() < RECORD_PROBLEMS_PER_PART {
                    res.record_problems.push(format!("{here}, record {:?}: {why}", r.id));
                }
            }
        }
        res.rows += b.num_rows() as u64;
    }
    if res.rows != part.rows {
        res.problems.push(format!("{here}: {} rows, the manifest says {}", res.rows, part.rows));
    }
    if bad_records > res.record_problems.len() {
        let more = bad_records - res.record_problems.len();
        res.record_problems.push(format!("{here}: {more} more record(s) like these"));
    }
}

/// Checks every part in parallel, then every collection's digest, then stray files.
pub fn verify(dir: &Path) -> Result<VerifyReport, SnapshotError> {
    verify_store(Arc::new(LocalStore::new(dir)), &NoCheck)
}

/// [`verify`], also running `rc` on every record of the collections it wants, in the same pass.
pub fn verify_with(dir: &Path, rc: &dyn RecordCheck) -> Result<VerifyReport, SnapshotError> {
    verify_store(Arc::new(LocalStore::new(dir)), rc)
}

/// [`verify_with`] on a snapshot in any store (a directory or an object-store prefix); [`NoCheck`]
/// checks no records.
pub fn verify_store(store: Arc<dyn Store>, rc: &dyn RecordCheck) -> Result<VerifyReport, SnapshotError> {
    let (snap, mut problems) = Snapshot::open_with_problems(store)?;
    let jobs: Vec<(usize, &CollectionEntry, &PartEntry)> = snap
        .manifest
        .collections
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.parts.iter().map(move |p| (i, c, p)))
        .collect();
    let ids = IdHashes::new();
    let results: Vec<(usize, PartResult)> =
        jobs.par_iter().map(|(i, c, p)| (*i, check_part(&snap, (*i, c), p, rc, &ids))).collect();

    let mut record_problems = Vec::new();
    let mut per: BTreeMap<usize, (u64, RecordsDigest, bool)> = BTreeMap::new();
    for (i, r) in results {
        if let Some(refused) = r.refused {
            return Err(refused);
        }
        let e = per.entry(i).or_default();
        e.0 += r.rows;
        e.1.merge(&r.digest);
        e.2 |= !r.problems.is_empty();
        problems.extend(r.problems);
        record_problems.extend(r.record_problems);
    }
    let mut candidates = ids.candidates()?;
    let mut collections = Vec::new();
    for (i, c) in snap.manifest.collections.iter().enumerate() {
        let (rows, digest, bad) = per.remove(&i).unwrap_or_default();
        let mut ok = !bad;
        if !bad {
            let found = collection_problems(&snap, c, rows, &digest, candidates.remove(&i).unwrap_or_default())?;
            ok = found.is_empty();
            problems.extend(found);
        }
        collections.push(CollectionCheck {
            name: c.name.clone(),
            parts: c.parts.len(),
            rows,
            records_digest: (!bad).then(|| digest.to_hex()),
            ok,
        });
    }
    problems.extend(stray_files(&snap)?);
    Ok(VerifyReport { collections, problems, record_problems })
}

/// What a collection's records, read whole, say against its manifest entry: duplicate ids (from
/// the sorted hashes' candidates, confirmed), the row count and the records digest.
fn collection_problems(
    snap: &Snapshot,
    c: &CollectionEntry,
    rows: u64,
    digest: &RecordsDigest,
    candidates: HashSet<u64>,
) -> Result<Vec<String>, SnapshotError> {
    let mut problems = Vec::new();
    let dups = duplicate_ids(snap, c, candidates)?;
    if !dups.is_empty() {
        let shown: Vec<String> = dups.iter().take(10).map(|(id, n)| format!("{id:?} ({n} times)")).collect();
        problems.push(format!("collection {:?}: {} duplicate id(s): {}", c.name, dups.len(), shown.join(", ")));
    }
    if rows != c.count {
        problems.push(format!("collection {:?}: {rows} records in its parts, the manifest says {}", c.name, c.count));
    }
    if digest.to_hex() != c.records_digest {
        problems.push(format!(
            "collection {:?}: records digest {} differs from the manifest's {}",
            c.name,
            digest.to_hex(),
            c.records_digest
        ));
    }
    Ok(problems)
}

/// The byte half of [`verify_store`], for a reader that reads every record anyway (transform):
/// every part's path, presence, size and blake3 (in parallel), and files the manifest does not
/// name. The record half is a [`RecordTally`] fed during that read.
pub fn check_files(snap: &Snapshot) -> Result<Vec<String>, SnapshotError> {
    let parts: Vec<(&CollectionEntry, &PartEntry)> =
        snap.manifest.collections.iter().flat_map(|c| c.parts.iter().map(move |p| (c, p))).collect();
    let checked: Vec<Result<Option<String>, SnapshotError>> = parts
        .par_iter()
        .map(|(c, p)| {
            let here = format!("collection {:?}, part {}", c.name, p.path);
            check_part_bytes(snap, c, p, &here).map(Result::err)
        })
        .collect();
    let mut problems = Vec::new();
    for r in checked {
        problems.extend(r?);
    }
    problems.extend(stray_files(snap)?);
    Ok(problems)
}

/// The record half of [`verify_store`], fed by a reader that reads every record once anyway:
/// rows, records digest and id hashes per collection, added batch by batch from any thread;
/// [`RecordTally::finish`] then checks them as `verify` does.
pub struct RecordTally {
    per: Mutex<Vec<(u64, RecordsDigest)>>,
    ids: IdHashes,
}

impl RecordTally {
    pub fn new(snap: &Snapshot) -> Self {
        Self { per: Mutex::new(vec![Default::default(); snap.manifest.collections.len()]), ids: IdHashes::new() }
    }

    /// Every record of `batch`, a batch of the collection at `index` in the manifest.
    pub fn add(&self, index: usize, batch: &arrow::record_batch::RecordBatch) {
        let view = BatchView::new(batch);
        let mut digest = RecordsDigest::default();
        for r in view.records() {
            digest.add(&r);
        }
        self.ids.push(index, view.records().map(|r| id_hash(r.id)));
        let mut per = self.per.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        per[index].0 += view.len() as u64;
        per[index].1.merge(&digest);
    }

    /// The problems of every collection (none: the records are what the manifest says).
    pub fn finish(self, snap: &Snapshot) -> Result<Vec<String>, SnapshotError> {
        let per = self.per.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut candidates = self.ids.candidates()?;
        let mut problems = Vec::new();
        for (i, (c, (rows, digest))) in snap.manifest.collections.iter().zip(per).enumerate() {
            problems.extend(collection_problems(snap, c, rows, &digest, candidates.remove(&i).unwrap_or_default())?);
        }
        Ok(problems)
    }
}

/// Ids that occur more than once in a collection, with their counts. The sorted hashes found the
/// candidates; a second pass over the parts confirms them by the ids themselves.
fn duplicate_ids(
    snap: &Snapshot,
    c: &CollectionEntry,
    candidates: HashSet<u64>,
) -> Result<Vec<(String, usize)>, SnapshotError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for batch in snap.collection_batches(c) {
        let batch = batch?;
        for r in BatchView::new(&batch).records().filter(|r| candidates.contains(&id_hash(r.id))) {
            *counts.entry(r.id.to_owned()).or_default() += 1;
        }
    }
    Ok(counts.into_iter().filter(|(_, n)| *n > 1).collect())
}

/// Files in the snapshot directory that the manifest does not name.
fn stray_files(snap: &Snapshot) -> Result<Vec<String>, SnapshotError> {
    let known: HashSet<&str> =
        snap.manifest.collections.iter().flat_map(|c| c.parts.iter().map(|p| p.path.as_str())).collect();
    let mut out = Vec::new();
    for e in snap.store.list(STATE_DIR)? {
        if e.key == MANIFEST_FILE || SIDE_FILES.contains(&e.key.as_str()) {
            continue;
        }
        if !known.contains(e.key.as_str()) {
            out.push(format!("unexpected file {} (not in the manifest)", e.key));
        }
    }
    out.sort();
    Ok(out)
}
