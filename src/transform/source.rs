//! The parallel half of a transform: the input split into row groups, each read, routed, mapped
//! and validated on its own (any thread), into an ordered list of outcomes.

use arrow::record_batch::RecordBatch;

use super::checks::Reason;
use super::plan::{Plan, Route};
use super::rejects::Rejected;
use super::rules;
use crate::error::Result;
use crate::record::{RecordRef, parse_metadata};
use crate::snapshot::convert::BatchView;
use crate::snapshot::reader::{RowGroup, Snapshot};
use crate::snapshot::verify::RecordTally;

/// Rows decoded at a time: a whole row group at once costs several times its size in transient
/// level and value buffers.
const READ_ROWS: usize = 1024;

/// One row group of one part of one source collection.
pub type Task = RowGroup;

/// Lists the row groups of every part, in manifest order, checking each part's schema.
pub fn tasks(snap: &Snapshot) -> Result<Vec<Task>> {
    Ok(snap.row_groups()?)
}

/// A record that passed every per-record check, before its id is rewritten: where it is (its
/// batch and row in [`Decided::batches`]) and its mapped metadata. Nothing else is copied: the
/// sink gathers the kept rows' columns straight out of the read batches.
pub struct Passed {
    pub target: usize,
    pub batch: u32,
    pub row: u32,
    pub metadata: Option<String>,
    /// `validate.trim_documents`: the byte length its document is cut to.
    pub document_cut: Option<usize>,
}

pub enum Outcome {
    Passed(Passed),
    Rejected { routed: Option<usize>, record: Rejected },
}

/// One row group decided: the batches it was read in, and every record's outcome in order.
pub struct Decided {
    pub batches: Vec<RecordBatch>,
    pub outcomes: Vec<Outcome>,
}

/// Reads one row group and decides every record in it; `tally` (the input check done in the same
/// pass) gets every batch read, with the collection's index in the manifest.
pub fn process(plan: &Plan, task: &Task, tally: Option<(&RecordTally, usize)>) -> Result<Decided> {
    let reader = task.read(READ_ROWS)?;
    let mut out = Decided { batches: Vec::new(), outcomes: Vec::with_capacity(task.rows) };
    for batch in reader {
        let batch = batch?;
        if let Some((tally, index)) = tally {
            tally.add(index, &batch);
        }
        let at = u32::try_from(out.batches.len()).expect("batches of a row group fit in u32");
        for (row, r) in BatchView::new(&batch).records().enumerate() {
            let row = u32::try_from(row).expect("rows of a batch fit in u32");
            out.outcomes.push(decide(plan, &task.collection, &r, (at, row)));
        }
        out.batches.push(batch);
    }
    Ok(out)
}

fn decide(plan: &Plan, collection: &str, r: &RecordRef<'_>, (batch, row): (u32, u32)) -> Outcome {
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
    let document_cut = rules::document_cut(&target.check, r);
    Outcome::Passed(Passed { target: t, batch, row, metadata, document_cut })
}
