//! The local stack's one error type, shared with the conformance harness built on it.
//!
//! Messages are written for the person reading a failed test: they say what was being done,
//! and for processes that died or never became ready they carry the tail of the log.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail at.
///
/// `Debug` prints the message and its causes rather than the struct, because tests call
/// `expect` on harness results and that is what a failed test shows.
#[derive(thiserror::Error)]
pub enum Error {
    /// No Envoy binary where the harness looks for one.
    #[error(
        "Envoy not found: {reason}. Run `cargo xtask tools` to install Envoy 1.40.0 under \
         target/tools/, or set SWITCHYARD_ENVOY to the path of an Envoy 1.40 binary"
    )]
    EnvoyNotFound {
        /// Where we looked and what was wrong.
        reason: String,
    },

    /// A file, socket or process operation failed.
    #[error("{context}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A child process exited before it became ready.
    #[error("{name} (pid {pid}) exited during startup with {status}; last lines of {log}:\n{tail}")]
    ExitedEarly {
        /// Which process.
        name: String,
        /// Its process id.
        pid: u32,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },

    /// A child process kept running but never became ready.
    #[error(
        "{name} (pid {pid}) was not ready after {waited:?} ({what}); last lines of {log}:\n{tail}"
    )]
    NotReady {
        /// Which process.
        name: String,
        /// Its process id.
        pid: u32,
        /// How long we waited.
        waited: Duration,
        /// The readiness condition that was not met.
        what: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },

    /// An HTTP exchange failed below the HTTP layer (connect, reset, timeout).
    #[error("HTTP {method} {uri} failed: {reason}")]
    Http {
        /// Request method.
        method: String,
        /// Request URI.
        uri: String,
        /// What went wrong.
        reason: String,
    },

    /// Envoy's admin API answered something we could not use.
    #[error("Envoy admin API: {0}")]
    Admin(String),

    /// A value that could not be turned into JSON or parsed from it.
    #[error("{context}")]
    Json {
        /// What the harness was doing.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// Manifests the local gateway cannot serve as written; each problem says what to change.
    #[error("the manifests cannot be served by the local gateway:\n  - {}", problems.join("\n  - "))]
    Manifests {
        /// One line per problem.
        problems: Vec<String>,
    },

    /// A local endpoints file that cannot be used; each problem says what to change.
    #[error("{source_name}: the local endpoints file is not usable:\n  - {}", problems.join("\n  - "))]
    EndpointsFile {
        /// The file.
        source_name: String,
        /// One line per problem.
        problems: Vec<String>,
    },

    /// A gRPC server could not be served.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    /// Wraps an I/O error with what the harness was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
