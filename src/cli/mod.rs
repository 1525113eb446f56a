//! Command-line front end: clap arguments become validated plans; results become output and an
//! exit code. No business logic lives here.

pub mod connect;
pub mod diff;
pub mod export;
pub mod inspect;
pub mod load;
pub mod logging;
pub mod out;
pub mod transform;
pub mod verify;

use std::io::IsTerminal;

use clap::{Parser, Subcommand, ValueEnum};

use chroma_snap::Result;
use chroma_snap::progress::{self, Mode};

#[derive(Debug, Parser)]
#[command(
    name = "chroma-snap",
    version,
    about = "Migrate ChromaDB collections through offline, content-hashed Parquet snapshots"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only warnings and errors; no progress.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log detail (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How to show progress (auto: bars on a terminal, log lines otherwise).
    #[arg(long, global = true, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Create files and directories as the umask allows (default: owner only, files 0600 and
    /// directories 0700: snapshots, journals, rejects and reports hold a whole database).
    #[arg(long, global = true)]
    pub shared_perms: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bars,
    Log,
    None,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a ChromaDB server (or a stopped server's data directory) into a snapshot.
    #[command(after_help = export::EXAMPLES)]
    Export(export::Args),
    /// Put a snapshot's collections into a ChromaDB server, resumably, and read them back.
    #[command(after_help = load::EXAMPLES)]
    Load(load::Args),
    /// Show what a snapshot holds.
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::Args),
    /// Reshape a snapshot offline with a spec: route, map, validate; write a new snapshot.
    #[command(after_help = transform::EXAMPLES)]
    Transform(transform::Args),
    /// Prove a snapshot's files intact (hashes, rows, records digests); with --against, compare it
    /// with a live server.
    #[command(after_help = verify::EXAMPLES)]
    Verify(verify::Args),
    /// Show what differs between two snapshots or servers: records only on one side, changed
    /// records and which fields, settings.
    #[command(after_help = diff::EXAMPLES)]
    Diff(diff::Args),
}

impl Cli {
    pub fn progress(&self) -> Box<dyn progress::Progress> {
        let mode = match (self.quiet, self.progress) {
            (true, _) | (_, ProgressArg::None) => Mode::Hidden,
            (_, ProgressArg::Bars) => Mode::Bars,
            (_, ProgressArg::Log) => Mode::Log,
            (_, ProgressArg::Auto) if std::io::stderr().is_terminal() => Mode::Bars,
            (_, ProgressArg::Auto) => Mode::Log,
        };
        progress::new(mode)
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    chroma_snap::fsmode::set_shared(cli.shared_perms);
    let progress = cli.progress();
    match cli.command {
        Command::Export(a) => export::run(a, progress.as_ref()),
        Command::Load(a) => load::run(a, progress.as_ref()),
        Command::Inspect(a) => inspect::run(a),
        Command::Transform(a) => transform::run(a, progress.as_ref()),
        Command::Verify(a) => verify::run(a),
        Command::Diff(a) => diff::run(a),
    }
}

/// A multi-threaded runtime for the network pipelines.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| chroma_snap::Error::Failed(format!("cannot start the async runtime: {e}")))
}
