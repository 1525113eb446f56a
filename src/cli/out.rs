//! The one way a command prints: results to stdout, notes to stderr. Nothing here panics. When
//! the reader of stdout goes away (`chroma-snap inspect snap/ | head -1`), the rest of the output
//! is dropped quietly and the command ends with the code it would have had (as ripgrep does);
//! any other write error fails the command. Text for people has its control characters escaped;
//! JSON is written exactly.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use chroma_snap::escape;
use chroma_snap::{Error, Result};

/// Set once stdout's reader is gone; later output is skipped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout's reader went away during this run.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes text for people on stdout (control characters escaped, line breaks kept).
pub fn text(s: &str) -> Result<()> {
    raw(escape::lines(s).as_bytes())
}

/// Writes `v` as pretty JSON and a line break on stdout.
pub fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Failed(format!("cannot print JSON: {e}")))?;
    bytes.push(b'\n');
    raw(&bytes)
}

fn raw(bytes: &[u8]) -> Result<()> {
    if stdout_closed() {
        return Ok(());
    }
    let mut w = io::stdout().lock();
    match w.write_all(bytes).and_then(|()| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Error::Failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes one line for people on stderr (control characters escaped, line breaks kept); a
/// closed or failing stderr is ignored, since there is nowhere left to report it.
pub fn note(line: &str) {
    let mut w = io::stderr().lock();
    let _ = w.write_all(escape::lines(line).as_bytes()).and_then(|()| w.write_all(b"\n"));
}

/// With `--json`, a command that fails still prints one JSON object on stdout, so a script
/// reading it sees why: `{"ok": false, "error": "...", "exit_code": 2}`. The error is returned
/// as it came, for stderr and the exit code.
pub fn json_error<T>(e: Error) -> Result<T> {
    let shown = serde_json::json!({"ok": false, "error": e.to_string(), "exit_code": e.exit_code()});
    json(&shown)?;
    Err(e)
}
