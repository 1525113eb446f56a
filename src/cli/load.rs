//! `chroma-snap load`: arguments → LoadPlan → load → summary and read-back report.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};

use chroma_snap::error::exit;
use chroma_snap::escape;
use chroma_snap::limits::Limits;
use chroma_snap::load::shard::{JOB_INDEX_VAR, Shard};
use chroma_snap::load::{IfExists, LoadPlan, LoadSummary, TargetLimits, load};
use chroma_snap::progress::Progress;
use chroma_snap::select::Selection;
use chroma_snap::verify::{Comparison, DEFAULT_LISTED};
use chroma_snap::{Error, Result};

use super::connect::Connect;
use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap load snap/ --to http://127.0.0.1:8000
  chroma-snap load snap/ --to http://127.0.0.1:8000 --collection docs=docs_restored --dry-run
  chroma-snap load old-snap/ --to http://127.0.0.1:8000 --if-exists sync      # roll back, writing the difference
  chroma-snap load old-snap/ --to http://127.0.0.1:8000 --if-exists replace   # roll back settings too
  chroma-snap load /mnt/ro/snap --to https://chroma.example.com --journal ~/load.jsonl --json
  chroma-snap load snap/ --to http://127.0.0.1:8000 --shard 1/3   # one of three loaders
  chroma-snap load snap/ --to http://127.0.0.1:8000 --limits cloud  # refuse what Chroma Cloud would
  chroma-snap load s3://backups/chroma/2026-05-01 --to http://127.0.0.1:8000  # AWS_* from the environment
Rerun the same command after a crash: the journal lets the load carry on where it stopped.
With --shard, run the N shards (each with its own journal), then `chroma-snap verify snap/
--against URL` to prove the whole. To replace collections, delete them before starting the
shards.";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IfExistsArg {
    Fail,
    Resume,
    Replace,
    Append,
    Sync,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory, or object-storage URL (s3://bucket/prefix, gs://…, az://…).
    pub dir: PathBuf,
    /// Target server URL (http or https).
    #[arg(long)]
    pub to: String,
    /// Collection to load, optionally under another name: `SRC` or `SRC=DST`, or a glob
    /// (`'sergio_*'`) (repeatable); all when absent.
    #[arg(long = "collection", value_name = "SRC[=DST]|GLOB")]
    pub collections: Vec<String>,
    /// Leave out the snapshot collections this name or glob matches (repeatable; must match one).
    #[arg(long, value_name = "NAME|GLOB")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
    /// When a target collection exists: fail (default unless a journal knows it), resume (carry on
    /// from the journal), replace (delete and reload), append (upsert into it), sync (write only
    /// the difference: delete what the snapshot lacks, rewrite changed records, add missing ones).
    #[arg(long, value_enum)]
    pub if_exists: Option<IfExistsArg>,
    /// Connect and check, print the plan, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip reading the target back after loading.
    #[arg(long)]
    pub no_verify: bool,
    /// Records per request (also capped by the server's max_batch_size).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Upper bound of one request body, in MiB (the 1.x server refuses more than 40).
    #[arg(long, default_value_t = 32)]
    pub batch_mb: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Write with upsert instead of add, even into collections the load creates.
    #[arg(long)]
    pub upsert: bool,
    /// Journal file (default: DIR/.chroma-snap/load-<target>.jsonl; for object storage
    /// ~/.local/state/chroma-snap/load-<manifest>-<target>.jsonl); use it for read-only snapshots.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Ids listed per kind of difference in the read-back report.
    #[arg(long, default_value_t = DEFAULT_LISTED)]
    pub list: usize,
    /// Load only shard I of N (0 ≤ I < N): rows [I·n/N, (I+1)·n/N) of each collection of n
    /// records; `auto/N` takes I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Target quotas checked for every record and collection before any write: `cloud` (Chroma
    /// Cloud's documented quotas; the default when the target is Chroma Cloud), a TOML file of your
    /// deployment's own (`max_document_bytes = 16384`, …; see docs/load.md), or `none`.
    #[arg(long, value_name = "LIMITS")]
    pub limits: Option<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Testing aid: stop with an error after this many acknowledged batches.
    #[arg(long, hide = true, env = "CHROMA_SNAP_FAIL_AFTER_BATCHES")]
    pub fail_after_batches: Option<u64>,
}

/// Parses `SRC` or `SRC=DST`.
pub fn mapping(s: &str) -> Result<(String, String)> {
    let (src, dst) = s.split_once('=').unwrap_or((s, s));
    if src.is_empty() || dst.is_empty() {
        return Err(Error::Input(format!("--collection {s:?}: expected SRC or SRC=DST")));
    }
    Ok((src.to_owned(), dst.to_owned()))
}

/// `--collection` values (`SRC`, `SRC=DST`, globs) and `--exclude` patterns as a selection.
pub fn selection(collections: &[String], exclude: &[String]) -> Result<Selection> {
    Ok(Selection { include: collections.iter().map(|c| mapping(c)).collect::<Result<_>>()?, exclude: exclude.to_vec() })
}

impl Args {
    fn plan(&self) -> Result<LoadPlan> {
        if self.batch_size == 0 || self.batch_mb == 0 || self.concurrency == 0 {
            return Err(Error::Input("--batch-size, --batch-mb and --concurrency must be positive".into()));
        }
        let limits = match self.limits.as_deref() {
            None => TargetLimits::Auto,
            Some("none") => TargetLimits::Off,
            Some("cloud") => TargetLimits::Given(Box::new(Limits::cloud())),
            Some("") => return Err(Error::Input("--limits: expected cloud, none or a TOML file".into())),
            Some(file) => TargetLimits::Given(Box::new(Limits::from_file(std::path::Path::new(file))?)),
        };
        Ok(LoadPlan {
            limits,
            snapshot: chroma_snap::snapshot::location::Location::from_arg(self.dir.as_os_str())?,
            connect: self.connect.options(&self.to)?,
            selection: selection(&self.collections, &self.exclude)?,
            if_exists: self.if_exists.map(|m| match m {
                IfExistsArg::Fail => IfExists::Fail,
                IfExistsArg::Resume => IfExists::Resume,
                IfExistsArg::Replace => IfExists::Replace,
                IfExistsArg::Append => IfExists::Append,
                IfExistsArg::Sync => IfExists::Sync,
            }),
            dry_run: self.dry_run,
            verify: !self.no_verify,
            batch_size: self.batch_size,
            batch_bytes: self.batch_mb << 20,
            concurrency: self.concurrency,
            upsert: self.upsert,
            journal: self.journal.clone(),
            listed: self.list,
            fail_after_batches: self.fail_after_batches.filter(|n| *n > 0),
            shard: self
                .shard
                .as_deref()
                .map(|spec| Shard::parse(spec, std::env::var(JOB_INDEX_VAR).ok().as_deref()))
                .transpose()?,
        })
    }
}

pub fn run(args: Args, progress: &dyn Progress) -> Result<u8> {
    let plan = args.plan()?;
    let summary = super::runtime()?.block_on(load(&plan, progress))?;
    if args.json {
        out::json(&summary)?;
    } else {
        out::text(&render(&summary))?;
    }
    let bad: Vec<&Comparison> =
        summary.collections.iter().filter_map(|c| c.comparison.as_ref()).filter(|c| !c.ok()).collect();
    for c in &bad {
        for line in c.describe() {
            out::note(&format!("error: {line}"));
        }
    }
    if bad.is_empty() {
        Ok(exit::OK)
    } else {
        out::note(&format!("the target differs from the snapshot in {} collection(s)", bad.len()));
        Ok(exit::MISMATCH)
    }
}

fn render(s: &LoadSummary) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<28} {:<28} {:<16} {:>9} {:>8} {:>12} {:>8}",
        "collection", "target", "action", "records", "batches", "bytes", "seconds"
    );
    for c in &s.collections {
        let secs = c.estimated_seconds.map_or(format!("{:.1}", c.seconds), |e| format!("~{e:.0}"));
        let _ = writeln!(
            o,
            "{:<28} {:<28} {:<16} {:>9} {:>8} {:>12} {:>8}",
            escape::text(&c.source),
            escape::text(&c.target),
            c.action,
            c.records,
            c.batches,
            c.bytes,
            secs
        );
    }
    if let Some(shard) = s.shard {
        for c in &s.collections {
            if let Some(sh) = &c.share {
                let _ = writeln!(
                    o,
                    "shard {shard} of {}: rows {}..{} ({} records), read from {} part(s), {} row group(s)",
                    escape::text(&c.source),
                    sh.first_row,
                    sh.end_row,
                    sh.end_row - sh.first_row,
                    sh.parts,
                    sh.row_groups
                );
            }
        }
    }
    for c in &s.collections {
        if let Some(n) = &c.sync {
            let would = if s.dry_run { "would sync" } else { "synced" };
            let _ = writeln!(
                o,
                "{would} {:?}: {} added, {} updated, {} deleted, {} unchanged",
                escape::text(&c.target),
                n.added,
                n.updated,
                n.deleted,
                n.unchanged
            );
        }
    }
    if let Some(q) = &s.quotas {
        let _ = writeln!(o, "pre-flight: every record and collection is within the {} limits", escape::text(q));
    }
    if s.dry_run {
        let _ = writeln!(
            o,
            "dry run: nothing written to {} ({} API, {} embeddings, batches of ≤{} records)",
            s.target,
            s.api,
            s.encoding,
            s.collections.first().map_or(0, |c| c.limits.max_rows)
        );
        return o;
    }
    for c in &s.collections {
        match &c.comparison {
            Some(cmp) if cmp.ok() => {
                let how = if cmp.exact() { "exact".to_owned() } else { cmp.drift_note() };
                let whose = if c.share.is_some() { "this shard's " } else { "" };
                let read = cmp.read_back.map_or(String::new(), |n| format!(" ({n} written records read back)"));
                let _ = writeln!(o, "verified {:?}: {whose}{} records, {how}{read}", c.target, cmp.target_records);
            }
            Some(_) => {
                let _ = writeln!(o, "verified {:?}: DIFFERS (see errors)", c.target);
            }
            None => {}
        }
    }
    if let Some(shard) = s.shard.filter(|_| s.collections.iter().any(|c| c.comparison.is_some())) {
        let _ = writeln!(
            o,
            "shard {shard}: read back this shard's records only; once every shard is done, `chroma-snap verify {} --against {}` proves the whole",
            s.snapshot.display(),
            s.target
        );
    }
    let rate = s.records_sent as f64 / s.seconds.max(1e-9);
    let _ = writeln!(
        o,
        "loaded {} records into {} ({} API, {} embeddings) in {:.1}s ({rate:.0} records/s)",
        s.records_sent, s.target, s.api, s.encoding, s.seconds
    );
    o
}
