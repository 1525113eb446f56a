//! `chroma-snap verify`: recompute every hash and digest of a snapshot and, with `--against`,
//! compare it with a live server record by record.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::error::exit;
use chroma_snap::escape;
use chroma_snap::snapshot::location::Location;
use chroma_snap::snapshot::verify::{NoCheck, VerifyReport, verify_store};
use chroma_snap::verify::{Comparison, DEFAULT_LISTED, verify_against};

use super::connect::Connect;
use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap verify snap/            # after copying a snapshot, before trusting it
  chroma-snap verify snap/ --json
  chroma-snap verify s3://backups/chroma/2026-05-01  # credentials and endpoint from AWS_* variables
  chroma-snap verify snap/ --against http://127.0.0.1:8000                  # after a load
  chroma-snap verify snap/ --against http://127.0.0.1:8000 --collection docs=docs_restored";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory, or object-storage URL (s3://bucket/prefix, gs://…, az://…).
    pub dir: PathBuf,
    /// Also compare the snapshot with this live server (counts, ids, digest, every record).
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,
    /// With --against: collection to compare, `SRC` or `SRC=DST`, or a glob (repeatable); all
    /// when absent.
    #[arg(long = "collection", value_name = "SRC[=DST]|GLOB", requires = "against")]
    pub collections: Vec<String>,
    /// With --against: leave out the collections this name or glob matches (repeatable).
    #[arg(long, value_name = "NAME|GLOB", requires = "against")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
    /// With --against: ids listed per kind of difference.
    #[arg(long, default_value_t = DEFAULT_LISTED)]
    pub list: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<u8> {
    match check(&args) {
        Ok((report, comparisons)) => show(&args, &report, comparisons.as_deref()),
        Err(e) if args.json => out::json_error(e),
        Err(e) => Err(e),
    }
}

type Checked = (VerifyReport, Option<Vec<Comparison>>);

fn check(args: &Args) -> Result<Checked> {
    let store = Location::from_arg(args.dir.as_os_str())?.open_store()?;
    let report = verify_store(store.clone(), &NoCheck)?;
    let comparisons = match &args.against {
        Some(url) => {
            let connect = args.connect.options(url)?;
            let names = super::load::selection(&args.collections, &args.exclude)?;
            Some(super::runtime()?.block_on(verify_against(store, &connect, &names, args.list))?)
        }
        None => None,
    };
    Ok((report, comparisons))
}

fn show(args: &Args, report: &VerifyReport, comparisons: Option<&[Comparison]>) -> Result<u8> {
    let live_ok = comparisons.is_none_or(|cs| cs.iter().all(Comparison::ok));
    if args.json {
        let ok = report.ok() && live_ok;
        out::json(&serde_json::json!({"ok": ok, "snapshot": report, "against": comparisons}))?;
    } else {
        show_text(args, report, comparisons)?;
    }
    if !report.ok() {
        let (dir, n) = (args.dir.display(), report.problems.len());
        out::note(&format!("{dir}: {n} problem(s) found; do not trust this snapshot"));
        return Ok(exit::MISMATCH);
    }
    if !live_ok {
        out::note("the server differs from the snapshot");
        return Ok(exit::MISMATCH);
    }
    Ok(exit::OK)
}

fn show_text(args: &Args, report: &VerifyReport, comparisons: Option<&[Comparison]>) -> Result<()> {
    for c in &report.collections {
        let state = if c.ok { "ok" } else { "BAD" };
        out::text(&format!("{state:>4}  {}: {} parts, {} records\n", escape::text(&c.name), c.parts, c.rows))?;
    }
    for p in &report.problems {
        out::note(&format!("error: {p}"));
    }
    if report.ok() {
        out::text(&format!("{}: intact\n", args.dir.display()))?;
    }
    for c in comparisons.into_iter().flatten() {
        let (src, dst) = (escape::text(&c.source), escape::text(&c.target));
        if c.ok() {
            let how = if c.exact() { "exact".to_owned() } else { c.drift_note() };
            out::text(&format!("  ok  {src} = {dst}: {} records, {how}\n", c.target_records))?;
        } else {
            out::text(&format!("DIFF  {src} ≠ {dst}\n"))?;
            for line in c.describe() {
                out::note(&format!("error: {line}"));
            }
        }
    }
    Ok(())
}
