//! `chroma-snap verify`: recompute every hash and digest of a snapshot and, with `--against`,
//! compare it with a live server record by record.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::error::exit;
use chroma_snap::snapshot::verify::verify;
use chroma_snap::verify::{DEFAULT_LISTED, verify_against};

use super::connect::Connect;

pub const EXAMPLES: &str = "Examples:
  chroma-snap verify snap/            # after copying a snapshot, before trusting it
  chroma-snap verify snap/ --json
  chroma-snap verify snap/ --against http://127.0.0.1:8000                  # after a load
  chroma-snap verify snap/ --against http://127.0.0.1:8000 --collection docs=docs_restored";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory.
    pub dir: PathBuf,
    /// Also compare the snapshot with this live server (counts, ids, digest, every record).
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,
    /// With --against: collection to compare, `SRC` or `SRC=DST` (repeatable); all when absent.
    #[arg(long = "collection", value_name = "SRC[=DST]", requires = "against")]
    pub collections: Vec<String>,
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
    let report = verify(&args.dir)?;
    let comparisons = match &args.against {
        Some(url) => {
            let connect = args.connect.options(url)?;
            let names = args.collections.iter().map(|c| super::load::mapping(c)).collect::<Result<Vec<_>>>()?;
            Some(super::runtime()?.block_on(verify_against(&args.dir, &connect, &names, args.list))?)
        }
        None => None,
    };
    let live_ok = comparisons.as_ref().is_none_or(|cs| cs.iter().all(|c| c.ok()));
    if args.json {
        super::print_json(&serde_json::json!({"snapshot": report, "against": comparisons}));
    } else {
        for c in &report.collections {
            let state = if c.ok { "ok" } else { "BAD" };
            println!("{state:>4}  {}: {} parts, {} records", c.name, c.parts, c.rows);
        }
        for p in &report.problems {
            eprintln!("error: {p}");
        }
        if report.ok() {
            println!("{}: intact", args.dir.display());
        }
        for c in comparisons.iter().flatten() {
            if c.ok() {
                let how = if c.exact() { "exact".to_owned() } else { c.drift_note() };
                println!("  ok  {} = {}: {} records, {how}", c.source, c.target, c.target_records);
            } else {
                println!("DIFF  {} ≠ {}", c.source, c.target);
                for line in c.describe() {
                    eprintln!("error: {line}");
                }
            }
        }
    }
    if !report.ok() {
        eprintln!("{}: {} problem(s) found; do not trust this snapshot", args.dir.display(), report.problems.len());
        return Ok(exit::MISMATCH);
    }
    if !live_ok {
        eprintln!("the server differs from the snapshot");
        return Ok(exit::MISMATCH);
    }
    Ok(exit::OK)
}
