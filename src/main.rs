//! The `chroma-snap` binary: parse arguments, set up logging, run, map the result to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::logging::init(args.quiet, args.verbose);
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            cli::out::note(&format!("error: {e}"));
            ExitCode::from(e.exit_code())
        }
    }
}

fn is_broken_pipe(e: &chroma_snap::Error) -> bool {
    matches!(e, chroma_snap::Error::Snapshot(chroma_snap::snapshot::SnapshotError::Io { source, .. })
        if source.kind() == std::io::ErrorKind::BrokenPipe)
}
