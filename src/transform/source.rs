//! The parallel half of a transform: the input split into row groups, each read, routed, mapped
//! and validated on its own (any thread), into an ordered list of outcomes.

use super::checks::Reason;
use super::plan::{Plan, Route};
use super::rejects::Rejected;
use super::rules;
use crate::error::Result;
use crate::record::{RecordRef, parse_metadata};
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::{RowGroup, Snapshot};

/// Rows decoded at a time: a whole row group at once costs several times its size in transient
/// level and value buffers.
const READ_ROWS: usize = 1024;

/// One row group of one part of one source collection.
pub type Task = RowGroup;

/// Lists the row groups of every part, in manifest order, checking each part's schema.
pub fn tasks(snap: &Snapshot) -> Result<Vec<Task>> {
    Ok(snap.row_groups()?)
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
    let reader = task.read(READ_ROWS)?;
    let mut out = Vec::with_capacity(task.rows);
    for batch in reader {
        let batch = batch?;
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
            let msg = match &e {
                crate::record::MetadataError::Json(j) => format!("metadata is not valid JSON: {j}"),
                other => format!("metadata is refused: {other}"),
            };
            let why = Reason::new("source.metadata", None, msg);
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
