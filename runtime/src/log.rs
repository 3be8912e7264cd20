//! Logging set-up: text or JSON lines on standard output, at a level from upstream's `-v`
//! verbosity (or a fixed one), overridden by `RUST_LOG` when set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable lines.
    Text,
}

/// The level for upstream's `-v`: 0–1 info, 2–3 debug, 4 and above trace.
pub fn level_for_verbosity(verbosity: u8) -> &'static str {
    match verbosity {
        0 | 1 => "info",
        2 | 3 => "debug",
        _ => "trace",
    }
}

/// The filter: `RUST_LOG` when it is set and valid, else `default_level`.
fn filter(default_level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level))
}

/// A subscriber writing `format` lines at `default_level` (unless `RUST_LOG` says otherwise)
/// to `writer`; [`init`] installs one on standard output.
pub fn subscriber<W>(
    format: LogFormat,
    default_level: &str,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(default_level))
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(builder.json().finish()),
        LogFormat::Text => Box::new(builder.finish()),
    }
}

/// Installs the process-wide subscriber; a second call is ignored (the first one wins), so
/// tests and binaries can both call it.
pub fn init(format: LogFormat, default_level: &str) {
    let installed =
        tracing::subscriber::set_global_default(subscriber(format, default_level, std::io::stdout));
    if installed.is_err() {
        tracing::debug!("a logger was already installed; keeping it");
    }
}

#[cfg(test)]
mod tests;
