//! `chroma-snap inspect`: what a snapshot holds.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::inspect::{inspect, render};

use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap inspect snap/
  chroma-snap inspect snap/ --json | jq '.manifest.collections[].count'";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Snapshot directory.
    pub dir: PathBuf,
    /// Sample rows shown per collection.
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<u8> {
    let i = match inspect(&args.dir, args.samples) {
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
