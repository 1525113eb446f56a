//! Transform: snapshot → snapshot, offline. Compile the spec (every error at once) → verify the
//! input → route, map and validate row groups in parallel → gather each target's rows out of the
//! read batches and write them in input order → manifest with
//! lineage, last, and only when the quality gate is met.
//!
//! Output: parts + `manifest.json` (a snapshot `load` takes), `rejects.parquet` and `report.json`.
//! Every file is byte-identical across runs and thread counts: work is split by row group,
//! results are consumed in input order, writes go in fixed-size batches, and the manifest's
//! `created_at` is the input's. An interrupted run leaves no manifest and a
//! `.chroma-snap/transform-in-progress` marker; rerunning the same command clears its leftovers.

pub mod checks;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod plan;
pub mod rejects;
pub mod report;
pub mod rules;
mod seen;
pub mod sink;
pub mod source;
pub mod spec;
pub mod template;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::error::{Error, Result};
use crate::progress::{Bar, Progress};
use crate::snapshot::location::Location;
use crate::snapshot::manifest::{Tool, derived_id};
use crate::snapshot::outdir::{self, Job};
use crate::snapshot::reader::Snapshot;
use crate::snapshot::store::{SPEC_LIMIT, Store, read_bounded};
use crate::snapshot::verify::{RecordTally, check_files};
use crate::snapshot::writer::{WriterOptions, WrittenCollection};
use crate::snapshot::{CollectionEntry, Manifest, SnapshotError};
use error::TransformError;
use report::{REPORT_FILE, Report, TransformSummary};
use sink::TargetOutput;

/// The outcomes of a window of row groups, in order.
type Decided = Vec<Result<source::Decided>>;

/// A validated transform request (built from the command line).
#[derive(Debug, Clone)]
pub struct TransformOptions {
    /// A directory or an object-store prefix.
    pub input: Location,
    pub spec: PathBuf,
    /// Output directory or object-store prefix (absent or empty). Optional for a dry run.
    pub out: Option<Location>,
    /// Validate and report; write no snapshot (rejects and report still go to `out` if given).
    pub dry_run: bool,
    /// Recompute the input's hashes and digests first (refuse a damaged input).
    pub verify_input: bool,
    pub writer: WriterOptions,
}

/// Reads and compiles a spec file; every problem is listed in the error.
pub fn load_spec(path: &Path) -> Result<(plan::Plan, String)> {
    let bytes = read_bounded(path, SPEC_LIMIT).map_err(|e| match e {
        SnapshotError::Io { source, .. } => {
            Error::from(TransformError::SpecUnreadable { path: path.to_path_buf(), why: source.to_string() })
        }
        refused => Error::Snapshot(refused),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| TransformError::SpecNotText { path: path.to_path_buf() })?;
    let plan = plan::compile(text).map_err(|errs| TransformError::Spec {
        path: path.to_path_buf(),
        problems: errs.iter().map(ToString::to_string).collect(),
    })?;
    Ok((plan, blake3::hash(&bytes).to_hex().to_string()))
}

/// Compiles the spec, opens the input and writes its outputs: see the module comment.
pub fn transform(opts: &TransformOptions, progress: &dyn Progress) -> Result<TransformSummary> {
    let started = Instant::now();
    let (plan, spec_blake3) = load_spec(&opts.spec)?;
    let snap = open_input(opts)?;
    let tasks = source::tasks(&snap)?;
    let out = match &opts.out {
        Some(loc) => {
            let store = loc.open_store()?;
            Some((outdir::prepare_at(loc, &store, Job::Transform, Some(&opts.input))?, store))
        }
        None => None,
    };
    // The manifest's counts were summed with checked arithmetic when it was opened.
    let records_in: u64 = snap.manifest.collections.iter().map(|c| c.count).sum();
    let report = Report {
        input_manifest_blake3: snap.manifest_blake3.to_hex(),
        spec_blake3,
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
    let mut sink = sink::Sink::new(
        &plan,
        snap.manifest.collections.len(),
        out.as_ref().map(|(_, store)| store.clone()),
        write_parts,
        opts.writer.clone(),
        report,
    )?;
    let bar = progress.bar("transform", Some(records_in), "records");
    let tally = opts.verify_input.then(|| RecordTally::new(&snap));
    run_windows(&plan, &snap, &tasks, &mut sink, bar.as_ref(), tally.as_ref())?;
    bar.finish();
    let (mut report, written) = sink.finish()?;
    // The input's records, read once by the pass above, against its manifest: damage found now
    // removes what was written, and no manifest is written.
    if let Some(tally) = tally {
        let problems = tally.finish(&snap)?;
        if !problems.is_empty() {
            if let Some((_, store)) = &out {
                store.remove_prefix("parts")?;
                store.remove_prefix(rejects::REJECTS_FILE)?;
            }
            return Err(TransformError::DamagedInput { input: PathBuf::from(opts.input.to_string()), problems }.into());
        }
    }
    report.pass_rate = if records_in == 0 { 1.0 } else { report.written as f64 / records_in as f64 };
    report.gate_passed = report.pass_rate >= plan.min_pass_rate;
    let manifest_blake3 = match out {
        Some((guard, store)) => {
            let m = write_outputs(store.as_ref(), &plan, &snap, &mut report, written, write_parts)?;
            guard.complete()?;
            m
        }
        None => None,
    };
    Ok(TransformSummary {
        report,
        out: opts.out.as_ref().map(|o| PathBuf::from(o.to_string())),
        manifest_blake3,
        dry_run: opts.dry_run,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Opens the input and, unless trusted, checks its files (every part's size and blake3, no
/// stray file) before anything is written; its records are checked in the transform's own pass
/// ([`RecordTally`]), so the input is read once.
fn open_input(opts: &TransformOptions) -> Result<Snapshot> {
    let snap = Snapshot::open_store(opts.input.open_store()?)?;
    if opts.verify_input {
        let problems = check_files(&snap)?;
        if !problems.is_empty() {
            let input = PathBuf::from(opts.input.to_string());
            return Err(TransformError::DamagedInput { input, problems }.into());
        }
    }
    Ok(snap)
}

/// Decides a window of row groups in parallel while the window before it is consumed in order
/// (its pages handed to the targets' writer threads): memory is bounded by two windows, not the
/// snapshot, and reading overlaps writing.
fn run_windows(
    plan: &plan::Plan,
    snap: &Snapshot,
    tasks: &[source::Task],
    sink: &mut sink::Sink<'_>,
    bar: &dyn Bar,
    tally: Option<&RecordTally>,
) -> Result<()> {
    let window = (rayon::current_num_threads() / 2).max(1);
    let index = |t: &source::Task| {
        let i = snap.manifest.collections.iter().position(|c| *c.name == *t.collection);
        tally.zip(Some(i.expect("a task's collection is in the manifest")))
    };
    let consume = |sink: &mut sink::Sink<'_>, chunk: &[source::Task], results: Decided| {
        for (t, r) in chunk.iter().zip(results) {
            let decided = r?;
            bar.inc(decided.outcomes.len() as u64);
            sink.consume(&t.collection, decided)?;
        }
        Ok::<(), Error>(())
    };
    let mut decided: Option<(&[source::Task], Decided)> = None;
    for chunk in tasks.chunks(window) {
        let (results, written) = rayon::join(
            || chunk.par_iter().map(|t| source::process(plan, t, index(t))).collect::<Vec<_>>(),
            || match decided.take() {
                Some((c, r)) => consume(sink, c, r),
                None => Ok(()),
            },
        );
        written?;
        decided = Some((chunk, results));
    }
    match decided.take() {
        Some((c, r)) => consume(sink, c, r),
        None => Ok(()),
    }
}

/// Writes `report.json`, and the manifest (last) when the gate is met; below the gate the parts
/// are removed, so `load` can never take the output. Returns the manifest's blake3.
fn write_outputs(
    store: &dyn Store,
    plan: &plan::Plan,
    snap: &Snapshot,
    report: &mut Report,
    written: Vec<TargetOutput>,
    write_parts: bool,
) -> Result<Option<String>> {
    if write_parts && report.gate_passed {
        report.snapshot_written = true;
    } else if write_parts {
        store.remove_prefix("parts")?;
    }
    let text = serde_json::to_vec_pretty(&report).expect("report serialises");
    store.put_atomic(REPORT_FILE, &text)?;
    if !report.snapshot_written {
        return Ok(None);
    }
    let (input_blake3, spec_blake3) = (&report.input_manifest_blake3, &report.spec_blake3);
    let entries =
        plan.targets.iter().zip(written).map(|(t, (dim, w))| entry(t, dim, w, spec_blake3, input_blake3)).collect();
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
    Ok(Some(m.write_to(store)?.to_hex()))
}

fn entry(
    t: &plan::TargetPlan,
    dim: Option<usize>,
    w: Option<WrittenCollection>,
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
