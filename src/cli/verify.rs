//! `chroma-snap verify`: recompute every hash and digest of a snapshot.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::error::exit;
use chroma_snap::snapshot::verify::verify;

pub const EXAMPLES: &str = "Examples:
  chroma-snap verify snap/            # after copying a snapshot, before trusting it
  chroma-snap verify snap/ --json";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory.
    pub dir: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<u8> {
    let report = verify(&args.dir)?;
    if args.json {
        super::print_json(&report);
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
    }
    if report.ok() {
        Ok(exit::OK)
    } else {
        eprintln!("{}: {} problem(s) found; do not trust this snapshot", args.dir.display(), report.problems.len());
        Ok(exit::MISMATCH)
    }
}
