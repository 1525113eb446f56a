//! Transform: snapshot → snapshot, offline. Compile the spec (every error at once) → verify the
//! input → route, map and validate row groups in parallel → write in input order → manifest with
//! lineage, last, and only when the quality gate is met.
//!
//! Output: parts + `manifest.json` (a snapshot `load` takes), `rejects.parquet` and `report.json`.
//! Every file is byte-identical across runs and thread counts: work is split by row group,
//! results are consumed in input order, writes go in fixed-size batches, and the manifest's
//! `created_at` is the input's. An interrupted run leaves no manifest and a
//! `.chroma-snap/transform-in-progress` marker; rerunning the same command clears its leftovers.

pub mod checks;
#[cfg(test)]
mod fuzz;
pub mod plan;
pub mod rejects;
pub mod report;
pub mod rules;
pub mod sink;
pub mod source;
pub mod spec;
pub mod template;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::snapshot::manifest::{Tool, derived_id};
use crate::snapshot::outdir::{self, Job};
use crate::snapshot::reader::Snapshot;
use crate::snapshot::store::{LocalStore, SPEC_LIMIT, Store, read_bounded};
use crate::snapshot::writer::WriterOptions;
use crate::snapshot::{CollectionEntry, Manifest, SnapshotError};
use report::{REPORT_FILE, Report, TransformSummary};

/// The outcomes of a window of row groups, in order.
type Decided = Vec<Result<Vec<source::Outcome>>>;

/// A validated transform request (built from the command line).
#[derive(Debug, Clone)]
pub struct TransformOptions {
    pub input: PathBuf,
    pub spec: PathBuf,
    /// Output directory (absent or empty). Optional for a dry run.
    pub out: Option<PathBuf>,
    /// Validate and report; write no snapshot (rejects and report still go to `out` if given).
    pub dry_run: bool,
    /// Recompute the input's hashes and digests first (refuse a damaged input).
    pub verify_input: bool,
    pub writer: WriterOptions,
}

/// Reads and compiles a spec file; every problem is listed in the error.
pub fn load_spec(path: &Path) -> Result<(plan::Plan, String)> {
    let bytes = read_bounded(path, SPEC_LIMIT).map_err(|e| match e {
        SnapshotError::Io { source, .. } => Error::Input(format!("cannot read spec {}: {source}", path.display())),
        refused => Error::Input(refused.to_string()),
    })?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| Error::Input(format!("spec {} is not UTF-8 text", path.display())))?;
    let plan = plan::compile(&text).map_err(|errs| {
        let list: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        Error::Input(format!(
            "spec {} has {} problem(s); no data was read:\n{}",
            path.display(),
            errs.len(),
            list.join("\n")
        ))
    })?;
    Ok((plan, blake3::hash(&bytes).to_hex().to_string()))
}

pub fn transform(opts: &TransformOptions, progress: &dyn Progress) -> Result<TransformSummary> {
    let started = Instant::now();
    let (plan, spec_blake3) = load_spec(&opts.spec)?;
    let snap = Snapshot::open(&opts.input)?;
    let input_blake3 = snap.manifest_blake3.to_hex();
    if opts.verify_input {
        let v = crate::snapshot::verify::verify(&opts.input)?;
        if !v.ok() {
            return Err(Error::Input(format!(
                "input snapshot {} is damaged ({} problem(s)); nothing was written:\n  {}",
                opts.input.display(),
                v.problems.len(),
                v.problems.join("\n  ")
            )));
        }
    }
    let tasks = source::tasks(&snap)?;
    let guard = opts.out.as_deref().map(|out| outdir::prepare(out, Job::Transform, Some(&opts.input))).transpose()?;
    let records_in: u64 = snap.manifest.collections.iter().map(|c| c.count).sum();
    let report = Report {
        input_manifest_blake3: input_blake3.clone(),
        spec_blake3: spec_blake3.clone(),
        records_in,
        targets: Vec::new(),
        rejected_by_routing: 0,
        written: 0,
        rejected: 0,
        reasons_by_rule: Default::default(),
        rejected_by_source: Default::default(),
        pass_rate: 1.0,
        min_pass_rate: plan.min_pass_rate,
        gate_passed: true,
        snapshot_written: false,
        examples: Default::default(),
    };
    let write_parts = !opts.dry_run && opts.out.is_some();
    let mut sink = sink::Sink::new(&plan, opts.out.as_deref(), write_parts, opts.writer.clone(), report)?;
    let bar = progress.bar("transform", Some(records_in), "records");
    // A window of row groups is decided in parallel while the window before it is written, in
    // order: memory is bounded by two windows, not the snapshot, and reading overlaps writing.
    let window = (rayon::current_num_threads() / 2).max(1);
    let consume = |sink: &mut sink::Sink<'_>, chunk: &[source::Task], results: Decided| {
        for (t, r) in chunk.iter().zip(results) {
            let outcomes = r?;
            bar.inc(outcomes.len() as u64);
            sink.consume(&t.collection, outcomes)?;
        }
        Ok::<(), Error>(())
    };
    let mut decided: Option<(&[source::Task], Decided)> = None;
    for chunk in tasks.chunks(window) {
        let (results, written) = rayon::join(
            || chunk.par_iter().map(|t| source::process(&plan, t)).collect::<Vec<_>>(),
            || match decided.take() {
                Some((c, r)) => consume(&mut sink, c, r),
                None => Ok(()),
            },
        );
        written?;
        decided = Some((chunk, results));
    }
    if let Some((c, r)) = decided.take() {
        consume(&mut sink, c, r)?;
    }
    bar.finish();
    let (mut report, written) = sink.finish()?;
    report.pass_rate = if records_in == 0 { 1.0 } else { report.written as f64 / records_in as f64 };
    report.gate_passed = report.pass_rate >= plan.min_pass_rate;
    let mut manifest_blake3 = None;
    if let Some(out) = &opts.out {
        let store = LocalStore::new(out);
        if write_parts && report.gate_passed {
            report.snapshot_written = true;
        } else if write_parts {
            store.remove_prefix("parts")?;
        }
        let text = serde_json::to_vec_pretty(&report).expect("report serialises");
        store.put_atomic(REPORT_FILE, &text)?;
        if report.snapshot_written {
            let entries = plan
                .targets
                .iter()
                .zip(written)
                .map(|(t, (dim, w))| entry(t, dim, w, &spec_blake3, &input_blake3))
                .collect();
            let mut m = Manifest::new(None, entries);
            m.tool = Tool::this();
            m.created_at = snap.manifest.created_at.clone();
            m.lineage = Some(json!({
                "kind": "transform",
                "input_manifest_blake3": input_blake3,
                "spec_blake3": spec_blake3,
                "input_created_at": snap.manifest.created_at,
                "input_source": snap.manifest.source,
                "records_in": report.records_in,
                "written": report.written,
                "rejected": report.rejected,
            }));
            manifest_blake3 = Some(m.write_to(&store)?.to_hex());
        }
    }
    if let Some(g) = guard {
        g.complete()?;
    }
    Ok(TransformSummary {
        report,
        out: opts.out.clone(),
        manifest_blake3,
        dry_run: opts.dry_run,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn entry(
    t: &plan::TargetPlan,
    dim: Option<usize>,
    w: Option<crate::snapshot::writer::WrittenCollection>,
    spec: &str,
    input: &str,
) -> CollectionEntry {
    // A stable id derived from the lineage and the name.
    let id = derived_id(&format!("{input}/{spec}/{}", t.name));
    CollectionEntry::written(
        t.name.clone(),
        id,
        t.metadata.clone(),
        Some(t.configuration.clone()),
        t.space.clone(),
        dim,
        w.unwrap_or_default(),
    )
}
