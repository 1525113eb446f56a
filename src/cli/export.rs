//! `chroma-snap export`: arguments → ExportPlan → export → summary.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use chroma_snap::escape;
use chroma_snap::export::{ExportPlan, ExportSummary, Paging, export};
use chroma_snap::fromdir::{FromDirPlan, FromDirSummary, export_dir};
use chroma_snap::progress::Progress;
use chroma_snap::record::RecordFilter;
use chroma_snap::select::Selection;
use chroma_snap::snapshot::location::Location;
use chroma_snap::snapshot::writer::WriterOptions;
use chroma_snap::{Error, Result};

use super::connect::Connect;
use super::out;

pub const EXAMPLES: &str = "Examples:
  chroma-snap export --from http://127.0.0.1:8000 --out snap/
  chroma-snap export --from http://127.0.0.1:8000 --out snap/ --collection docs --collection faq
  chroma-snap export --from http://127.0.0.1:8000 --out snap/ --collection 'sergio_*' --exclude '*_tmp'
  chroma-snap export --from http://127.0.0.1:8000 --out web/ --where '{\"source\": \"web\"}'
  CHROMA_TOKEN=… chroma-snap export --from https://chroma.example.com --out snap/ --json
  chroma-snap export --from http://127.0.0.1:8000 --out s3://backups/chroma/2026-05-01
  chroma-snap export --from-dir /var/lib/chroma --out snap/     (a stopped server's data directory)";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Source server URL (http or https).
    #[arg(long, required_unless_present = "from_dir", conflicts_with = "from_dir")]
    pub from: Option<String>,
    /// Read a stopped server's data directory instead (its `chroma.sqlite3` and segment folders;
    /// any version from 0.4 to 1.x; nothing in it is written).
    #[arg(long, value_name = "PATH")]
    pub from_dir: Option<PathBuf>,
    /// With --from-dir: read a directory that looks in use by a running server (only for a copy
    /// whose server is gone).
    #[arg(long, requires = "from_dir")]
    pub force: bool,
    /// Snapshot directory to create (must be empty or absent), or an empty object-storage prefix
    /// (s3://bucket/prefix, gs://…, az://…; credentials from the environment).
    #[arg(long)]
    pub out: PathBuf,
    /// Collection to export (repeatable): a name or a glob (`'sergio_*'`); all when absent. A
    /// glob that matches nothing is an error.
    #[arg(long = "collection", value_name = "NAME|GLOB")]
    pub collections: Vec<String>,
    /// Leave out the collections this name or glob matches (repeatable; must match one).
    #[arg(long, value_name = "NAME|GLOB")]
    pub exclude: Vec<String>,
    /// Only the records whose metadata match this filter, in Chroma's `where` syntax
    /// (`'{"source": "web"}'`, `'{"$and": [{"year": {"$gte": 2020}}, …]}'`); the manifest records it.
    #[arg(long = "where", value_name = "JSON", conflicts_with = "from_dir")]
    pub where_metadata: Option<String>,
    /// Only the records whose document matches this filter (`'{"$contains": "tax"}'`).
    #[arg(long, value_name = "JSON", conflicts_with = "from_dir")]
    pub where_document: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
    /// Records per get request (also capped by the server's max_batch_size and --response-mb).
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// Ids per listing request (ids only, spilled to disk as listed; capped on Chroma Cloud).
    #[arg(long, default_value_t = 30_000)]
    pub list_page: usize,
    /// Get requests in flight.
    #[arg(long, default_value_t = 3)]
    pub concurrency: usize,
    /// Target size of one get answer, in MiB.
    #[arg(long, default_value_t = 32)]
    pub response_mb: usize,
    /// Roll to a new part file at this size, in MiB.
    #[arg(long, default_value_t = 256)]
    pub part_mb: u64,
    /// Fail if the source changes during the export (with --from-dir: if a record's vector is in
    /// neither the index nor the log).
    #[arg(long)]
    pub strict: bool,
    /// Page by listed ids (default: stable under deletes) or by offset (for servers or proxies
    /// that cannot fetch by id).
    #[arg(long, value_parser = ["ids", "offset"], default_value = "ids")]
    pub paging: String,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn plan(&self) -> Result<ExportPlan> {
        if [self.page_size, self.list_page, self.concurrency, self.response_mb].contains(&0) || self.part_mb == 0 {
            return Err(Error::Input(
                "--page-size, --list-page, --concurrency, --response-mb and --part-mb must be positive".into(),
            ));
        }
        let from = self.from.as_deref().unwrap_or_default();
        Ok(ExportPlan {
            connect: self.connect.options(from)?,
            out: Location::from_arg(self.out.as_os_str())?,
            selection: Selection::of_names(&self.collections, &self.exclude),
            filter: RecordFilter::from_args(self.where_metadata.as_deref(), self.where_document.as_deref())
                .map_err(Error::Input)?,
            page_size: self.page_size,
            list_page: self.list_page,
            concurrency: self.concurrency,
            response_budget: self.response_mb << 20,
            strict: self.strict,
            paging: if self.paging == "offset" { Paging::Offset } else { Paging::Ids },
            writer: WriterOptions { target_part_bytes: self.part_mb << 20, ..WriterOptions::default() },
        })
    }

    fn dir_plan(&self, dir: &std::path::Path) -> Result<FromDirPlan> {
        if self.part_mb == 0 {
            return Err(Error::Input("--part-mb must be positive".into()));
        }
        Ok(FromDirPlan {
            dir: dir.to_owned(),
            out: Location::from_arg(self.out.as_os_str())?,
            selection: Selection::of_names(&self.collections, &self.exclude),
            tenant: self.connect.tenant.clone(),
            database: self.connect.database.clone(),
            strict: self.strict,
            force: self.force,
            writer: WriterOptions { target_part_bytes: self.part_mb << 20, ..WriterOptions::default() },
        })
    }
}

pub fn run(args: Args, progress: &dyn Progress) -> Result<u8> {
    if let Some(dir) = &args.from_dir {
        let summary = export_dir(&args.dir_plan(dir)?, progress)?;
        if args.json {
            out::json(&summary)?;
        } else {
            out::text(&render_dir(&summary))?;
        }
        return Ok(chroma_snap::error::exit::OK);
    }
    let plan = args.plan()?;
    let summary = super::runtime()?.block_on(export(&plan, progress))?;
    if args.json {
        out::json(&summary)?;
    } else {
        out::text(&render(&summary))?;
    }
    Ok(chroma_snap::error::exit::OK)
}

fn render(s: &ExportSummary) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{:<32} {:>10} {:>6} {:>12} {:>8}", "collection", "records", "parts", "bytes", "seconds");
    for c in &s.collections {
        let flag = if c.changed_during_export { "  CHANGED DURING EXPORT" } else { "" };
        let _ = writeln!(
            o,
            "{:<32} {:>10} {:>6} {:>12} {:>8.1}{flag}",
            escape::text(&c.name),
            c.records,
            c.parts,
            c.bytes,
            c.seconds
        );
    }
    let rate = s.records as f64 / s.seconds.max(1e-9);
    let _ = writeln!(
        o,
        "exported {} records from {} ({} API) into {} in {:.1}s ({rate:.0} records/s); manifest blake3 {}",
        s.records,
        s.source,
        s.api,
        s.snapshot.display(),
        s.seconds,
        &s.manifest_blake3[..16]
    );
    if let Some(f) = &s.filter {
        let _ = writeln!(o, "partial snapshot: only the records selected by {}", escape::text(&f.to_string()));
    }
    o
}

fn render_dir(s: &FromDirSummary) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<32} {:>10} {:>6} {:>12} {:>9} {:>8}",
        "collection", "records", "parts", "bytes", "log rows", "seconds"
    );
    for c in &s.collections {
        let flag = if c.missing_vectors == 0 {
            String::new()
        } else {
            format!("  {} RECORDS WITHOUT A VECTOR LEFT OUT", c.missing_vectors)
        };
        let _ = writeln!(
            o,
            "{:<32} {:>10} {:>6} {:>12} {:>9} {:>8.1}{flag}",
            escape::text(&c.name),
            c.records,
            c.parts,
            c.bytes,
            c.log_rows,
            c.seconds
        );
    }
    let rate = s.records as f64 / s.seconds.max(1e-9);
    let _ = writeln!(
        o,
        "exported {} records from the directory {} (Chroma schema {}) into {} in {:.1}s ({rate:.0} records/s); manifest blake3 {}",
        s.records,
        escape::text(&s.source),
        s.schema_version,
        s.snapshot.display(),
        s.seconds,
        &s.manifest_blake3[..16]
    );
    o
}
