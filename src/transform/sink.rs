//! The ordered half of a transform: outcomes arrive in input order; ids are rewritten and checked
//! for uniqueness, each target's dimension is latched by its first record (as Chroma does), and
//! records are written in fixed-size batches so the output bytes never depend on thread count.

use std::sync::Arc;

use rayon::prelude::*;

use super::checks::Reason;
use super::plan::Plan;
use super::rejects::{Rejected, RejectsWriter};
use super::report::{Report, TargetReport};
use super::rules;
use super::seen::SeenIds;
use super::source::{Outcome, Passed};
use crate::error::Result;
use crate::record::{RecordPage, RecordRef, parse_metadata};
use crate::snapshot::convert::page_to_batch;
use crate::snapshot::store::Store;
use crate::snapshot::writer::{CollectionWriter, WriterOptions, WrittenCollection};

/// Rows per write: fixed, so that part files are the same whatever the window or thread count.
const WRITE_ROWS: usize = 2048;

struct TargetState {
    name: String,
    routed: u64,
    written: u64,
    rejected: u64,
    /// Ids written so far, when duplicates can happen at all (see [`Sink::new`]).
    seen: Option<SeenIds>,
    dim: Option<usize>,
    /// Rows admitted but not yet written (fewer than `WRITE_ROWS`).
    pending: RecordPage,
    /// Pages of exactly `WRITE_ROWS` rows, waiting for the next write.
    ready: Vec<RecordPage>,
    writer: Option<CollectionWriter>,
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
                seen: (t.ids.is_some() || sources > 1).then(SeenIds::default),
                dim: None,
                pending: RecordPage::default(),
                ready: Vec::new(),
                writer: None,
            })
            .collect();
        let out = if write_parts { out } else { None };
        Ok(Self { plan, out, opts, targets, rejects, report })
    }

    /// Takes the outcomes of one row group, in order.
    pub fn consume(&mut self, collection: &str, outcomes: Vec<Outcome>) -> Result<()> {
        let mut rejected = Vec::new();
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
                    if let Some(r) = self.admit(collection, p) {
                        self.report.add_reasons(&r.source_collection, &r.id, &r.reasons);
                        rejected.push(r);
                    }
                }
            }
        }
        if let Some(w) = &mut self.rejects {
            w.write(&rejected)?;
        }
        self.write_full_batches(false)
    }

    /// Rewrites the id and checks what needs the records before it; returns a rejection.
    fn admit(&mut self, collection: &str, p: Passed) -> Option<Rejected> {
        let plan = &self.plan.targets[p.target];
        let ts = &mut self.targets[p.target];
        ts.routed += 1;
        let mut reasons = Vec::new();
        let id = match &plan.ids {
            None => p.id.clone(),
            Some(tpl) => {
                let src = p.source_metadata.as_deref().and_then(|m| parse_metadata(m).ok());
                let n = (ts.written + 1).to_string();
                let look = |k: &str| {
                    if k == "n" {
                        Some(n.clone())
                    } else {
                        rules::property(k, &p.id, &plan.name, collection, src.as_ref())
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
        if let Some(d) = ts.dim.filter(|d| *d != p.embedding.len()) {
            reasons.push(Reason::new(
                "embedding.dimension_mismatch",
                None,
                format!("{} dimensions, but this target's first record fixed {d}", p.embedding.len()),
            ));
        }
        if !reasons.is_empty() {
            ts.rejected += 1;
            let r = RecordRef {
                id: &p.id,
                embedding: &p.embedding,
                document: p.document.as_deref(),
                uri: p.uri.as_deref(),
                metadata: p.source_metadata.as_deref(),
            };
            return Some(Rejected::new(collection, Some(&ts.name), &r, reasons));
        }
        if let (Some(seen), Some(key)) = (ts.seen.as_mut(), key) {
            seen.insert(key);
        }
        ts.written += 1;
        let dim = p.embedding.len(); // the target's: a different one was rejected above
        if ts.dim.is_none() {
            ts.dim = Some(dim);
            ts.pending = RecordPage::with_capacity(dim, WRITE_ROWS);
        }
        let page = &mut ts.pending;
        page.ids.push(id);
        page.embeddings.extend_from_slice(&p.embedding);
        page.documents.push(p.document);
        page.uris.push(p.uri);
        page.metadatas.push(p.metadata);
        if page.len() == WRITE_ROWS {
            let full = std::mem::replace(page, RecordPage::with_capacity(dim, WRITE_ROWS));
            ts.ready.push(full);
        }
        None
    }

    /// Writes every ready page of `WRITE_ROWS` rows (and the partial one when `all`), one target
    /// per thread.
    fn write_full_batches(&mut self, all: bool) -> Result<()> {
        let Some(out) = self.out.clone() else {
            // A dry run keeps nothing: its pages are emptied in place, buffers kept.
            for t in &mut self.targets {
                t.ready.clear();
                t.pending.clear();
            }
            return Ok(());
        };
        let opts = &self.opts;
        self.targets.par_iter_mut().enumerate().try_for_each(|(i, t)| -> Result<()> {
            if all && !t.pending.is_empty() {
                let last = std::mem::take(&mut t.pending);
                t.ready.push(last);
            }
            if t.ready.is_empty() {
                return Ok(());
            }
            let dim = t.dim.expect("a target with rows has a dimension");
            if t.writer.is_none() {
                let w = CollectionWriter::with_store(out.clone(), &format!("parts/{i:04}"), dim, opts.clone())?;
                t.writer = Some(w);
            }
            let w = t.writer.as_mut().expect("just created");
            for page in t.ready.drain(..) {
                w.write_batch(&page_to_batch(&page))?;
            }
            Ok(())
        })
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
            });
            self.report.written += t.written;
            written.push((dim, t.writer.map(CollectionWriter::finish).transpose()?));
        }
        Ok((self.report, written))
    }
}
