//! The ordered half of a transform: outcomes arrive in input order; ids are rewritten and checked
//! for uniqueness, each target's dimension is latched by its first record (as Chroma does), and
//! records are gathered out of the read batches and written in fixed-size batches so the output
//! bytes never depend on thread count. Each target's parts are encoded and hashed on a writer
//! thread of its own ([`WriterThread`]), so one target's writing overlaps the reading, deciding
//! and the other targets' writing; at most one batch per thread of the pool is encoded at once.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use super::checks::Reason;
use super::plan::Plan;
use super::rejects::{Rejected, RejectsWriter};
use super::report::{Report, TargetReport};
use super::rules;
use super::seen::SeenIds;
use super::source::{Decided, Outcome, Passed};
use crate::error::Result;
use crate::record::parse_metadata;
use crate::snapshot::convert::{BatchView, Gather};
use crate::snapshot::store::Store;
use crate::snapshot::writer::{CollectionWriter, Permits, WriterOptions, WriterThread, WrittenCollection};

/// Rows per write: fixed, so that part files are the same whatever the window or thread count.
const WRITE_ROWS: usize = 2048;

/// Written batches that may wait for a target's writer thread: none, the sink hands each batch
/// over as the writer takes it (a waiting batch is ~7 MB of 768-dim records; at 200,000 records
/// a queue of one per target measured 3.9-4.0 s and 200 MB peak, none 3.7 s and 192 MB).
const WRITE_QUEUE: usize = 0;

struct TargetState {
    name: String,
    routed: u64,
    written: u64,
    rejected: u64,
    trimmed_documents: u64,
    /// Ids written so far, when duplicates can happen at all (see [`Sink::new`]).
    seen: Option<SeenIds>,
    dim: Option<usize>,
    /// Rows admitted but not yet written (fewer than `WRITE_ROWS`), gathered from the read
    /// batches; created with the dimension the first record fixes.
    pending: Option<Gather>,
    /// Batches of exactly `WRITE_ROWS` rows (the last one: the rest), waiting for the next write.
    ready: Vec<RecordBatch>,
    /// The target's parts, encoded and hashed on a thread of their own.
    writer: Option<WriterThread>,
}

/// A target's dimension (when known) and its written parts (none in a dry run or when empty).
pub type TargetOutput = (Option<usize>, Option<WrittenCollection>);

pub struct Sink<'a> {
    plan: &'a Plan,
    /// Where parts go; `None` for a dry run.
    out: Option<Arc<dyn Store>>,
    opts: WriterOptions,
    targets: Vec<TargetState>,
    rejects: Option<RejectsWriter>,
    pub report: Report,
    /// Keys the read batches for the gathers: each batch consumed gets the next number.
    next_batch: u64,
    /// Batches encoded at once, over every target: one per thread of the pool.
    permits: Arc<Permits>,
}

impl<'a> Sink<'a> {
    /// `sources`: collections in the input. A target can only receive a duplicate id when its ids
    /// are rewritten by a template or when more than one input collection feeds it: each input
    /// collection's ids are unique (the input is verified, or trusted to be a valid snapshot), so
    /// otherwise no set of its ids is kept.
    pub fn new(
        plan: &'a Plan,
        sources: usize,
        out: Option<Arc<dyn Store>>,
        write_parts: bool,
        opts: WriterOptions,
        report: Report,
    ) -> Result<Self> {
        let rejects = out.as_deref().map(RejectsWriter::create_in).transpose()?;
        let targets = plan
            .targets
            .iter()
            .map(|t| TargetState {
                name: t.name.clone(),
                routed: 0,
                written: 0,
                rejected: 0,
                trimmed_documents: 0,
                seen: (t.ids.is_some() || sources > 1).then(SeenIds::default),
                dim: None,
                pending: None,
                ready: Vec::new(),
                writer: None,
            })
            .collect();
        let out = if write_parts { out } else { None };
        let permits = Permits::new(rayon::current_num_threads());
        Ok(Self { plan, out, opts, targets, rejects, report, next_batch: 0, permits })
    }

    /// Takes the outcomes of one row group, in order.
    pub fn consume(&mut self, collection: &str, decided: Decided) -> Result<()> {
        let Decided { batches, outcomes } = decided;
        let first_key = self.next_batch;
        self.next_batch += batches.len() as u64;
        let views: Vec<BatchView<'_>> = batches.iter().map(BatchView::new).collect();
        let mut rejected = Vec::new();
        let mut fed = vec![false; self.targets.len()];
        for o in outcomes {
            match o {
                Outcome::Rejected { routed, record } => {
                    match routed {
                        Some(t) => {
                            self.targets[t].routed += 1;
                            self.targets[t].rejected += 1;
                        }
                        None => self.report.rejected_by_routing += 1,
                    }
                    self.report.add_reasons(&record.source_collection, &record.id, &record.reasons);
                    rejected.push(record);
                }
                Outcome::Passed(p) => {
                    fed[p.target] = true;
                    let (at, key) = (p.batch as usize, first_key + u64::from(p.batch));
                    if let Some(r) = self.admit(collection, p, (&batches[at], &views[at]), key) {
                        self.report.add_reasons(&r.source_collection, &r.id, &r.reasons);
                        rejected.push(r);
                    }
                }
            }
        }
        if let Some(w) = &mut self.rejects {
            w.write(&rejected)?;
        }
        // A target this row group sent nothing to keeps a copy of its pending rows only, not the
        // read batches they came from (routing by collection leaves targets idle for long runs).
        for (t, fed) in self.targets.iter_mut().zip(fed) {
            if let Some(g) = t.pending.as_mut().filter(|_| !fed) {
                g.release_sources();
            }
        }
        self.write_full_batches(false)
    }

    /// Rewrites the id and checks what needs the records before it; returns a rejection.
    /// `batch` (and its view) holds the record (row `p.row`), `batch_key` names that batch for
    /// the gather.
    fn admit(
        &mut self,
        collection: &str,
        p: Passed,
        (batch, view): (&RecordBatch, &BatchView<'_>),
        batch_key: u64,
    ) -> Option<Rejected> {
        let plan = &self.plan.targets[p.target];
        let ts = &mut self.targets[p.target];
        ts.routed += 1;
        let r = view.record(p.row as usize);
        let mut reasons = Vec::new();
        let id = match &plan.ids {
            None => r.id.to_owned(),
            Some(tpl) => {
                let src = r.metadata.and_then(|m| parse_metadata(m).ok());
                let n = (ts.written + 1).to_string();
                let look = |k: &str| {
                    if k == "n" {
                        Some(n.clone())
                    } else {
                        rules::property(k, r.id, &plan.name, collection, src.as_ref())
                    }
                };
                tpl.render(look).unwrap_or_else(|var| {
                    reasons.push(Reason::new(
                        "id.template",
                        None,
                        format!("id template placeholder {{{var}}} has no value"),
                    ));
                    String::new()
                })
            }
        };
        if id.is_empty() && reasons.is_empty() {
            reasons.push(Reason::new("chroma.id_empty", None, "the id is empty"));
        }
        let key = ts
            .seen
            .as_ref()
            .map(|_| u128::from_le_bytes(blake3::hash(id.as_bytes()).as_bytes()[..16].try_into().expect("16 bytes")));
        if !id.is_empty() && ts.seen.as_ref().zip(key).is_some_and(|(seen, key)| seen.contains(key)) {
            reasons.push(Reason::new("id.duplicate", None, format!("id {id:?} was already written to this target")));
        }
        if let Some(l) = &plan.check.limits {
            let mut found = Vec::new();
            l.id(&id, &mut found);
            l.records(ts.written + 1, &mut found);
            reasons.extend(found.into_iter().map(Reason::from));
        }
        if let Some(d) = ts.dim.filter(|d| *d != r.embedding.len()) {
            reasons.push(Reason::new(
                "embedding.dimension_mismatch",
                None,
                format!("{} dimensions, but this target's first record fixed {d}", r.embedding.len()),
            ));
        }
        if !reasons.is_empty() {
            ts.rejected += 1;
            return Some(Rejected::new(collection, Some(&ts.name), &r, reasons));
        }
        if let (Some(seen), Some(key)) = (ts.seen.as_mut(), key) {
            seen.insert(key);
        }
        ts.written += 1;
        ts.trimmed_documents += u64::from(p.document_cut.is_some());
        let dim = r.embedding.len(); // the target's: a different one was rejected above
        ts.dim.get_or_insert(dim);
        self.out.as_ref()?; // a dry run writes nothing: no rows are gathered
        let pending = ts.pending.get_or_insert_with(|| Gather::new(dim));
        pending.push(batch_key, batch, p.row as usize, (id, p.metadata, p.document_cut));
        if pending.len() == WRITE_ROWS {
            ts.ready.push(pending.take_batch());
        }
        None
    }

    /// Hands every ready page of `WRITE_ROWS` rows (and the partial one when `all`) to its
    /// target's writer thread, in order; blocks while a writer's queue is full.
    fn write_full_batches(&mut self, all: bool) -> Result<()> {
        let Some(out) = self.out.clone() else {
            return Ok(()); // a dry run gathers nothing
        };
        for (i, t) in self.targets.iter_mut().enumerate() {
            if all && let Some(rest) = t.pending.as_mut().filter(|g| !g.is_empty()) {
                t.ready.push(rest.take_batch());
            }
            if t.ready.is_empty() {
                continue;
            }
            if t.writer.is_none() {
                let dim = t.dim.expect("a target with rows has a dimension");
                let w = CollectionWriter::with_store(out.clone(), &format!("parts/{i:04}"), dim, self.opts.clone())?;
                t.writer = Some(WriterThread::spawn(w, WRITE_QUEUE, self.permits.clone())?);
            }
            let w = t.writer.as_mut().expect("just created");
            for batch in t.ready.drain(..) {
                w.write_batch(batch)?;
            }
        }
        Ok(())
    }

    /// Flushes and closes everything; returns each target's written parts (in plan order).
    pub fn finish(mut self) -> Result<(Report, Vec<TargetOutput>)> {
        self.write_full_batches(true)?;
        if let Some(w) = self.rejects.take() {
            w.finish()?;
        }
        let mut written = Vec::new();
        for (t, plan) in self.targets.into_iter().zip(&self.plan.targets) {
            let dim = t.dim.or_else(|| plan.check.dimensions.as_ref().filter(|d| d.len() == 1).map(|d| d[0]));
            self.report.targets.push(TargetReport {
                name: t.name,
                routed: t.routed,
                written: t.written,
                rejected: t.rejected,
                dimension: dim,
                trimmed_documents: t.trimmed_documents,
            });
            self.report.written += t.written;
            written.push((dim, t.writer.map(WriterThread::finish).transpose()?));
        }
        Ok((self.report, written))
    }
}
