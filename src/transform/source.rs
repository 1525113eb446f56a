//! The parallel half of a transform: the input split into row groups, each read, routed, mapped
//! and validated on its own (any thread), into an ordered list of outcomes.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};

use super::checks::Reason;
use super::plan::{Plan, Route};
use super::rejects::Rejected;
use super::rules;
use crate::error::{Error, Result};
use crate::record::{RecordRef, parse_metadata};
use crate::snapshot::SnapshotError;
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::{Snapshot, missing_part};
use crate::snapshot::schema::check_part_schema;
use crate::snapshot::validate;

/// Rows decoded at a time: a whole row group at once costs several times its size in transient
/// level and value buffers.
const READ_ROWS: usize = 1024;

/// One row group of one part of one source collection.
#[derive(Clone)]
pub struct Task {
    pub collection: Arc<str>,
    pub path: PathBuf,
    pub meta: ArrowReaderMetadata,
    pub row_group: usize,
    pub rows: usize,
}

/// Lists the row groups of every part, in manifest order, checking each part's schema.
pub fn tasks(snap: &Snapshot) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    for c in &snap.manifest.collections {
        let name: Arc<str> = Arc::from(c.name.as_str());
        for p in &c.parts {
            let path = snap.part_path(c, p)?;
            let file = File::open(&path).map_err(|e| missing_part(&path, e))?;
            let meta = ArrowReaderMetadata::load(&file, Default::default())
                .map_err(|e| SnapshotError::Parquet { path: path.clone(), source: e })?;
            let bad = |why| SnapshotError::BadPart { path: path.clone(), why };
            let dim = check_part_schema(meta.schema()).map_err(bad)?;
            let rows = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(u64::MAX);
            validate::check_part_dimension(c.dimension, dim, rows).map_err(bad)?;
            validate::check_part_rows(p, rows).map_err(bad)?;
            for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
                let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
                out.push(Task { collection: name.clone(), path: path.clone(), meta: meta.clone(), row_group: i, rows });
            }
        }
    }
    Ok(out)
}

/// A record that passed every per-record check, before its id is rewritten.
pub struct Passed {
    pub target: usize,
    pub id: String,
    pub embedding: Vec<f32>,
    pub document: Option<String>,
    pub uri: Option<String>,
    pub metadata: Option<String>,
    /// The source record's metadata text: for `meta.*` in id templates, and for a rejection
    /// decided later (duplicate id, dimension) so that the rejects file holds the record as it was.
    pub source_metadata: Option<String>,
}

pub enum Outcome {
    Passed(Passed),
    Rejected { routed: Option<usize>, record: Rejected },
}

/// Reads one row group and decides every record in it.
pub fn process(plan: &Plan, task: &Task) -> Result<Vec<Outcome>> {
    let pq = |e| Error::Snapshot(SnapshotError::Parquet { path: task.path.clone(), source: e });
    let file = File::open(&task.path).map_err(|e| Error::Snapshot(SnapshotError::io(&task.path, e)))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, task.meta.clone())
        .with_row_groups(vec![task.row_group])
        .with_batch_size(READ_ROWS)
        .build()
        .map_err(pq)?;
    let mut out = Vec::with_capacity(task.rows);
    for batch in reader {
        let batch = batch.map_err(|e| {
            Error::Snapshot(SnapshotError::BadPart { path: task.path.clone(), why: format!("cannot decode: {e}") })
        })?;
        validate::check_batch(&batch).map_err(|why| SnapshotError::BadPart { path: task.path.clone(), why })?;
        let view = BatchView::new(&batch);
        for r in view.records() {
            out.push(decide(plan, &task.collection, &r));
        }
    }
    Ok(out)
}

fn decide(plan: &Plan, collection: &str, r: &RecordRef<'_>) -> Outcome {
    let src = match r.metadata.map(parse_metadata) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            let why = Reason::new("source.metadata", None, format!("metadata is not valid JSON: {e}"));
            return Outcome::Rejected { routed: None, record: Rejected::new(collection, None, r, vec![why]) };
        }
    };
    let (route, rule) = rules::route(plan, collection, r, src.as_ref());
    let t = match route {
        Route::Target(t) => t,
        Route::Reject => {
            let why = match rule {
                Some(i) => {
                    Reason::new("route.rejected", None, format!("routing rule {:?} rejects it", plan.rules[i].label))
                }
                None => Reason::new("route.no_match", None, "no routing rule matched and the default is reject"),
            };
            return Outcome::Rejected { routed: None, record: Rejected::new(collection, None, r, vec![why]) };
        }
    };
    let target = &plan.targets[t];
    let (metadata, reasons) = rules::map_record(target, collection, r, src.as_ref());
    if !reasons.is_empty() {
        return Outcome::Rejected {
            routed: Some(t),
            record: Rejected::new(collection, Some(&target.name), r, reasons),
        };
    }
    Outcome::Passed(Passed {
        target: t,
        id: r.id.to_owned(),
        embedding: r.embedding.to_vec(),
        document: r.document.map(str::to_owned),
        uri: r.uri.map(str::to_owned),
        metadata,
        source_metadata: r.metadata.map(str::to_owned),
    })
}
