//! Log lines (tracing) on stderr. A person's terminal reads like a conversation: no timestamps,
//! no level on plain information, `warning:`/`error:` in front of the rest. Logs written to a
//! file or a pipe keep RFC 3339 timestamps and levels, for later reading. Untrusted text in a
//! message is escaped either way.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use chroma_snap::escape;

/// Sets up logging at the level the flags ask for (`CHROMA_SNAP_LOG` overrides it).
pub fn init(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("CHROMA_SNAP_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,chroma_snap={level}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        builder.event_format(Conversation { color }).init();
    } else {
        builder.with_ansi(false).with_target(false).init();
    }
}

/// The terminal's format: `message`, `warning: message`, `error: message`.
struct Conversation {
    color: bool,
}

impl<S, N> FormatEvent<S, N> for Conversation
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let (word, color) = match *event.metadata().level() {
            Level::INFO => ("", ""),
            Level::WARN => ("warning", "\x1b[33m"),
            Level::ERROR => ("error", "\x1b[31m"),
            Level::DEBUG => ("debug", "\x1b[2m"),
            Level::TRACE => ("trace", "\x1b[2m"),
        };
        if !word.is_empty() {
            if self.color {
                write!(w, "{color}{word}\x1b[0m: ")?;
            } else {
                write!(w, "{word}: ")?;
            }
        }
        let mut message = String::new();
        ctx.field_format().format_fields(Writer::new(&mut message), event)?;
        writeln!(w, "{}", escape::lines(&message))
    }
}
