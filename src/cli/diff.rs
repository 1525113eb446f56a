//! `chroma-snap diff A B`: arguments → DiffPlan → diff → report and exit code (0 identical,
//! 3 different).

use clap::Args as ClapArgs;

use chroma_snap::Result;
use chroma_snap::diff::{DiffPlan, DiffReport, Endpoint, diff};
use chroma_snap::error::exit;
use chroma_snap::escape;
use chroma_snap::snapshot::location::Location;
use chroma_snap::verify::DEFAULT_LISTED;

use super::connect::Connect;
use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap diff nightly/ http://127.0.0.1:8000             # what changed since last night's backup
  chroma-snap diff monday/ tuesday/                           # two snapshots, no network
  chroma-snap diff snap/ http://127.0.0.1:8000 --collection docs=docs_restored --list 5
  chroma-snap diff http://old:8000 http://new:8000 --json
A and B are each a snapshot (directory or s3://, gs://, az:// URL) or a server URL (http,
https); the connection flags apply to every server side. Exit 0: identical (up to Chroma's own
write drift); 3: different.";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Side A: a snapshot directory or object-storage URL, or a server URL (http://, https://).
    pub a: String,
    /// Side B, the same.
    pub b: String,
    /// Collection to compare, `NAME` or `NAME_IN_A=NAME_IN_B`, or a glob (repeatable); all of
    /// both when absent.
    #[arg(long = "collection", value_name = "A[=B]|GLOB")]
    pub collections: Vec<String>,
    /// Leave out the collections this name or glob matches (repeatable; must match one).
    #[arg(long, value_name = "NAME|GLOB")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub connect: Connect,
    /// Ids listed per kind of difference (only in A, only in B, changed).
    #[arg(long, default_value_t = DEFAULT_LISTED)]
    pub list: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn endpoint(&self, arg: &str) -> Result<Endpoint> {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            Ok(Endpoint::Server(self.connect.options(arg)?))
        } else {
            Ok(Endpoint::Snapshot(Location::from_arg(std::ffi::OsStr::new(arg))?))
        }
    }

    fn plan(&self) -> Result<DiffPlan> {
        Ok(DiffPlan {
            a: self.endpoint(&self.a)?,
            b: self.endpoint(&self.b)?,
            selection: super::load::selection(&self.collections, &self.exclude)?,
            listed: self.list,
        })
    }
}

pub fn run(args: Args) -> Result<u8> {
    let report = match args.plan().and_then(|plan| super::runtime()?.block_on(diff(&plan))) {
        Ok(r) => r,
        Err(e) if args.json => return out::json_error(e),
        Err(e) => return Err(e),
    };
    if args.json {
        out::json(&serde_json::json!({"identical": report.identical(), "diff": report}))?;
    } else {
        out::text(&render(&report))?;
    }
    Ok(if report.identical() { exit::OK } else { exit::MISMATCH })
}

fn render(r: &DiffReport) -> String {
    let mut o = format!("A: {}\nB: {}\n", escape::text(&r.a), escape::text(&r.b));
    for c in &r.collections {
        for line in c.describe() {
            o.push_str(&line);
            o.push('\n');
        }
    }
    for (side, lone) in [("A", &r.collections_only_in_a), ("B", &r.collections_only_in_b)] {
        for l in lone {
            o.push_str(&format!(
                "ONLY {:?}: collection only in {side} ({} records)\n",
                escape::text(&l.name),
                l.records
            ));
        }
    }
    let verdict = if r.identical() { "identical" } else { "different" };
    o.push_str(&format!("{verdict} ({} collection pair(s) compared in {:.1}s)\n", r.collections.len(), r.seconds));
    o
}
