//! `chroma-snap inspect`: what a snapshot holds.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::inspect::{inspect, render};
use chroma_snap::snapshot::location::Location;
use chroma_snap::snapshot::store::Store;

use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap inspect snap/
  chroma-snap inspect s3://backups/chroma/2026-05-01  # reads the manifest and a few row groups
  chroma-snap inspect snap/ --json | jq '.manifest.collections[].count'";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory, or object-storage URL (s3://bucket/prefix, gs://…, az://…).
    pub dir: PathBuf,
    /// Sample rows shown per collection.
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn open(args: &Args) -> Result<Arc<dyn Store>> {
    Ok(Location::from_arg(args.dir.as_os_str())?.open_store()?)
}

pub fn run(args: Args) -> Result<u8> {
    let i = match open(&args).and_then(|store| inspect(store, args.samples)) {
        Ok(i) => i,
        Err(e) if args.json => return out::json_error(e),
        Err(e) => return Err(e),
    };
    if args.json {
        out::json(&i)?;
    } else {
        out::text(&render(&i))?;
    }
    Ok(chroma_snap::error::exit::OK)
}
