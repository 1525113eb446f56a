//! `chroma-snap transform`: arguments → TransformOptions → transform → summary and exit code.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::error::exit;
use chroma_snap::progress::Progress;
use chroma_snap::snapshot::location::Location;
use chroma_snap::snapshot::writer::WriterOptions;
use chroma_snap::transform::report::render;
use chroma_snap::transform::{TransformOptions, transform};
use chroma_snap::{Error, Result};

use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap transform legacy/ --spec fixtures/specs/four-collections.toml --out migrated/
  chroma-snap transform legacy/ --spec spec.toml --dry-run          # report only, writes nothing
  RAYON_NUM_THREADS=1 chroma-snap transform legacy/ --spec spec.toml --out m/ --json

Exit codes: 0 written, 2 bad spec or damaged input (nothing written), 4 below the quality gate
(no manifest.json: rejects.parquet and report.json say why).";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Input snapshot directory, or object-storage URL (s3://bucket/prefix, gs://…, az://…).
    pub input: PathBuf,
    /// Transform spec (TOML, see docs/transform-spec.md).
    #[arg(long)]
    pub spec: PathBuf,
    /// Output directory or object-storage prefix (absent or empty): snapshot + rejects.parquet +
    /// report.json.
    #[arg(long, required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,
    /// Validate and report without writing a snapshot (rejects/report still go to --out if given).
    #[arg(long)]
    pub dry_run: bool,
    /// Skip checking the input (its files' hashes before any write, its records' digests in the same
    /// pass); only for an input verified just before.
    #[arg(long)]
    pub trust_input: bool,
    /// Roll to a new part file at this size, in MiB.
    #[arg(long, default_value_t = 256)]
    pub part_mb: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn options(&self) -> Result<TransformOptions> {
        if self.part_mb == 0 {
            return Err(Error::Input("--part-mb must be positive".into()));
        }
        Ok(TransformOptions {
            input: Location::from_arg(self.input.as_os_str())?,
            spec: self.spec.clone(),
            out: self.out.as_deref().map(|o| Location::from_arg(o.as_os_str())).transpose()?,
            dry_run: self.dry_run,
            verify_input: !self.trust_input,
            writer: WriterOptions { target_part_bytes: self.part_mb << 20, ..WriterOptions::default() },
        })
    }
}

pub fn run(args: Args, progress: &dyn Progress) -> Result<u8> {
    let summary = transform(&args.options()?, progress)?;
    if args.json {
        out::json(&summary)?;
    } else {
        out::text(&render(&summary))?;
    }
    if summary.report.gate_passed {
        Ok(exit::OK)
    } else {
        out::note(&format!(
            "error: quality gate not met: {:.2}% of records passed, the spec requires {:.2}%; no snapshot written",
            summary.report.pass_rate * 100.0,
            summary.report.min_pass_rate * 100.0
        ));
        Ok(exit::GATE)
    }
}
