//! tracing setup: one event per line on stderr, as text or JSON; `RUST_LOG`
//! overrides the configured filter.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        // Fields at the top level: what journald's and Loki's JSON parsers expect.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
