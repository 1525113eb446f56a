//! `export --from-dir`: the snapshot an HTTP export of a server would write, read from that
//! server's data directory while it is stopped (no server, nothing written to the directory).
//!
//! Per collection: records, documents, uris and metadata come from the metadata segment in
//! `chroma.sqlite3` ([`db`]); vectors from the vector segment's hnswlib files ([`hnsw`], the id
//! map in [`pickle`]) with the write-ahead log replayed on top as the server would ([`replay`]).
//! Pages go through the same snapshot writer as an HTTP export; the manifest comes last.
//! Formats and how each fact was checked: docs/from-dir.md.

mod db;
pub mod error;
mod hnsw;
mod live;
mod pickle;
mod replay;
mod vectors;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use self::db::{Collection, Db};
use self::error::FromDirError;
use self::replay::Slot;
use self::vectors::{load_vectors, written_by_python};
use crate::chroma::CollectionInfo;
use crate::error::Result;
use crate::export::error::preview;
use crate::progress::Progress;
use crate::record::{RecordPage, RecordRef, canonical_metadata};
use crate::snapshot::location::Location;
use crate::snapshot::outdir::{self, Job};
use crate::snapshot::store::Store;
use crate::snapshot::writer::{CollectionWriter, WriterOptions, WrittenCollection};
use crate::snapshot::{CollectionEntry, Manifest, Source};

/// A validated `export --from-dir`.
#[derive(Debug, Clone)]
pub struct FromDirPlan {
    /// The persist directory (`chroma.sqlite3` and one folder per vector segment).
    pub dir: PathBuf,
    pub out: Location,
    /// Collections to export (names, globs, excludes); none named means all of the tenant's
    /// database.
    pub selection: crate::select::Selection,
    pub tenant: String,
    pub database: String,
    /// A record without a vector is an error rather than reported and left out.
    pub strict: bool,
    /// Read a directory that looks in use (a copy whose server is gone).
    pub force: bool,
    pub writer: WriterOptions,
}

#[derive(Debug, Clone, Serialize)]
pub struct FromDirSummary {
    pub snapshot: PathBuf,
    pub manifest_blake3: String,
    pub source: String,
    /// The Chroma schema found (newest migration of each kind).
    pub schema_version: String,
    pub collections: Vec<CollectionSummary>,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionSummary {
    pub name: String,
    pub records: u64,
    pub parts: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Log rows replayed on top of the saved index.
    pub log_rows: usize,
    /// Records left out because neither the index nor the log holds their vector.
    pub missing_vectors: u64,
    /// The first [`MISSING_IDS_SHOWN`] of their ids (every one is in the log at debug level).
    pub missing_ids: Vec<String>,
}

const PAGE_ROWS: usize = 1000;
/// Ids of records without a vector listed in the summary, per collection.
pub const MISSING_IDS_SHOWN: usize = 1000;

pub fn export_dir(plan: &FromDirPlan, progress: &dyn Progress) -> Result<FromDirSummary> {
    let started = Instant::now();
    let dir = std::path::absolute(&plan.dir).unwrap_or_else(|_| plan.dir.clone());
    let not_dir = |why: String| FromDirError::NotADirectory { dir: dir.clone(), why };
    if !dir.is_dir() {
        return Err(not_dir("no such directory".into()).into());
    }
    let sqlite = dir.join("chroma.sqlite3");
    if !sqlite.is_file() {
        return Err(not_dir("no chroma.sqlite3 in it".into()).into());
    }
    match live::in_use(&dir) {
        Some(why) if !plan.force => return Err(FromDirError::InUse { dir: dir.clone(), why }.into()),
        Some(why) => tracing::warn!("{}: {why}; reading it anyway (--force)", dir.display()),
        None => {}
    }
    let db = Db::open(&sqlite)?;
    tracing::info!(
        "{}: Chroma schema {} ({} server rules)",
        sqlite.display(),
        db.schema,
        if db.rust_server { "1.x" } else { "0.4/0.5" }
    );
    let collections = select(&db, plan, &dir)?;
    let py = written_by_python(&db, &dir, &collections);
    if py && db.rust_server {
        tracing::warn!(
            "{}: migrated by a 1.x server but its indexes were saved by 0.4/0.5 (an upgrade that did not finish?): reading it by the 0.4/0.5 rules",
            dir.display()
        );
    }

    let store = plan.out.open_store()?;
    let guard = outdir::prepare_at(&plan.out, &store, Job::Export, Some(&Location::Dir(dir.clone())))?;
    let mut entries = Vec::new();
    let mut summaries = Vec::new();
    for (i, c) in collections.iter().enumerate() {
        let t = Instant::now();
        let (entry, log_rows, missing) =
            export_collection(&db, py, &dir, plan, &store, c, &format!("parts/{i:04}"), progress)?;
        summaries.push(CollectionSummary {
            name: entry.name.clone(),
            records: entry.count,
            parts: entry.parts.len(),
            bytes: entry.parts.iter().map(|p| p.bytes).sum(),
            seconds: t.elapsed().as_secs_f64(),
            log_rows,
            missing_vectors: missing.len() as u64,
            missing_ids: missing.into_iter().take(MISSING_IDS_SHOWN).collect(),
        });
        entries.push(entry);
    }
    let url = format!("file://{}", dir.display());
    let source = Source {
        url: url.clone(),
        api: "none".into(),
        server_version: Some(if py { "0.x" } else { "1.x" }.into()),
        tenant: plan.tenant.clone(),
        database: plan.database.clone(),
        kind: Some("directory".into()),
        schema_version: Some(db.schema.clone()),
    };
    let manifest = Manifest::new(Some(source), entries);
    let manifest_blake3 = manifest.write_to(store.as_ref())?.to_hex();
    guard.complete()?;
    Ok(FromDirSummary {
        snapshot: PathBuf::from(plan.out.to_string()),
        manifest_blake3,
        source: url,
        schema_version: db.schema.clone(),
        records: summaries.iter().map(|c| c.records).sum(),
        bytes: summaries.iter().map(|c| c.bytes).sum(),
        collections: summaries,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The collections selected (each name must exist), or all of the tenant's database, by name.
fn select(db: &Db, plan: &FromDirPlan, dir: &Path) -> Result<Vec<Collection>> {
    let all = db.collections(&plan.tenant, &plan.database)?;
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    let among = format!("{} ({}/{})", dir.display(), plan.tenant, plan.database);
    let mut out: Vec<Collection> = Vec::new();
    for (n, _) in plan.selection.resolve(&names, &among)? {
        let c = all.iter().find(|c| c.name == n).ok_or_else(|| FromDirError::NoCollection {
            dir: dir.to_owned(),
            name: n,
            tenant: plan.tenant.clone(),
            database: plan.database.clone(),
        })?;
        out.push(c.clone());
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn export_collection(
    db: &Db,
    py: bool,
    dir: &Path,
    plan: &FromDirPlan,
    store: &Arc<dyn Store>,
    c: &Collection,
    rel_dir: &str,
    progress: &dyn Progress,
) -> Result<(CollectionEntry, usize, Vec<String>)> {
    let info = CollectionInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        metadata: c.metadata.clone(),
        configuration: c.configuration.clone(),
        dimension: c.dimension,
        filter: None,
    };
    let space = info.space();
    let Some(meta_seg) = &c.metadata_segment else {
        return Err(FromDirError::Sqlite {
            file: db.path.clone(),
            table: Some("segments".into()),
            why: format!("collection {:?} has no metadata segment", c.name),
        }
        .into());
    };
    let total = db.count(meta_seg)?;
    // The metadata segment applies the log as it is written; rows after its position were
    // written but never applied (a server killed between the two): their documents and
    // metadata are not in the table this reads, and the server would apply them on restart.
    let meta_pos = db.max_seq_id(meta_seg)?.unwrap_or(0);
    let unapplied = db.log_len(c, meta_pos)?;
    if unapplied > 0 {
        let why = format!(
            "{unapplied} log rows after log row {meta_pos}, where the metadata segment stopped, were never applied to it; \
             their records' documents and metadata are not read (start a server on a copy to apply them)"
        );
        if plan.strict {
            return Err(FromDirError::Sqlite {
                file: db.path.clone(),
                table: Some("embeddings_queue".into()),
                why: format!("collection {:?}: {why}; --strict: no snapshot written", c.name),
            }
            .into());
        }
        tracing::warn!("collection {:?}: {why}", c.name);
    }
    let vectors = if total > 0 { Some(load_vectors(db, py, dir, c, &space)?) } else { None };
    let bar = progress.bar(&c.name, Some(total), "records");
    let mut writer: Option<CollectionWriter> = None;
    let mut page = RecordPage::default();
    let mut missing = Vec::new();
    let mut vec = Vec::new();
    let seg_err = |d: hnsw::Damage| FromDirError::Segment { collection: c.name.clone(), file: d.file, why: d.why };
    let flush = |page: &mut RecordPage, writer: &mut Option<CollectionWriter>| -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        let w = match writer {
            Some(w) => w,
            None => writer.insert(CollectionWriter::with_store(store.clone(), rel_dir, page.dim, plan.writer.clone())?),
        };
        w.write_page(page)?;
        bar.inc(page.len() as u64);
        page.clear();
        Ok(())
    };
    db.records(meta_seg, |r| {
        vec.clear();
        let found = match vectors.as_ref().and_then(|v| v.slots.get(&r.id).map(|s| (v, s))) {
            Some((v, Slot::Index(label))) => match &v.index {
                Some(index) => index.vector(*label, &mut vec).map_err(seg_err)?,
                None => false,
            },
            Some((_, Slot::Mem(values))) => {
                vec.extend_from_slice(values);
                true
            }
            None => false,
        };
        if !found {
            missing.push(r.id);
            return Ok(());
        }
        if page.is_empty() && page.dim != vec.len() {
            if let Some(w) = &writer
                && w.dim() != vec.len()
            {
                let (collection, id, expected) = (c.name.clone(), r.id.clone(), w.dim());
                return Err(FromDirError::Dimension { collection, id, found: vec.len(), expected }.into());
            }
            page.dim = vec.len();
        } else if page.dim != vec.len() {
            let (collection, id, expected) = (c.name.clone(), r.id.clone(), page.dim);
            return Err(FromDirError::Dimension { collection, id, found: vec.len(), expected }.into());
        }
        // A 1.x server strips the uri from the metadata after deciding it is not empty: a record
        // with a uri and no other key comes back with `{}` (measured), on 0.4/0.5 with null.
        let keep_empty = !py && r.uri.is_some();
        let metadata = (!r.metadata.is_empty() || keep_empty).then(|| canonical_metadata(&r.metadata));
        page.push(RecordRef {
            id: &r.id,
            embedding: &vec,
            document: r.document.as_deref(),
            uri: r.uri.as_deref(),
            metadata: metadata.as_deref(),
        });
        if page.len() >= PAGE_ROWS {
            flush(&mut page, &mut writer)?;
        }
        Ok(())
    })?;
    flush(&mut page, &mut writer)?;
    bar.finish();
    if !missing.is_empty() {
        if plan.strict {
            return Err(FromDirError::MissingVectors { collection: c.name.clone(), ids: missing }.into());
        }
        tracing::debug!("collection {:?}: every record left out without a vector: {:?}", c.name, missing);
        tracing::warn!(
            "collection {:?}: {} records left out, their vector is in neither the index nor the log: {}",
            c.name,
            missing.len(),
            preview(&missing)
        );
    }
    let (dimension, written) = match writer {
        Some(w) => (Some(w.dim()), w.finish()?),
        None => (c.dimension, WrittenCollection::default()),
    };
    let mut entry = CollectionEntry::written(
        info.name.clone(),
        info.id.clone(),
        info.metadata.clone(),
        info.configuration.clone(),
        space,
        dimension,
        written,
    );
    entry.source_count_before = Some(total);
    entry.source_count_after = Some(total);
    Ok((entry, vectors.map_or(0, |v| v.log_rows), missing))
}
