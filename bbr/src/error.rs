//! BBR's one error type, and its mapping to a gRPC status in one place.
//!
//! A rejected *body* is not an error here: it is a verdict answered to the client with an HTTP
//! status (see [`crate::policy`]). These are the failures of the server, its configuration and
//! the ext_proc protocol. Every message names what is wrong and what to change.

use std::path::PathBuf;

/// Everything that can go wrong in BBR outside a per-request verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Envoy sent messages in an order the ext_proc protocol does not allow.
    #[error("ext_proc protocol violation: {0}")]
    Protocol(&'static str),

    /// Envoy's filter uses a request body mode BBR cannot route with.
    #[error(
        "Envoy's ext_proc filter sends the request body in mode {mode}, which BBR cannot route \
         with: set processing_mode.request_body_mode to BUFFERED or FULL_DUPLEX_STREAMED \
         (with request_trailer_mode SEND) on the BBR filter"
    )]
    UnsupportedBodyMode {
        /// The mode's proto name.
        mode: &'static str,
    },

    /// A command-line flag or configuration value is invalid.
    #[error("invalid {flag}: {reason}")]
    Config {
        /// The flag (`--max-body-bytes`) or setting.
        flag: &'static str,
        /// What is wrong and what to use instead.
        reason: String,
    },

    /// The base-model mapping file cannot be read.
    #[error("cannot read base-model mapping file {path}: {source}")]
    MappingFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A base-model mapping (file or ConfigMap) is malformed.
    #[error("invalid base-model mapping in {origin}: {reason}")]
    Mapping {
        /// The file path or `ConfigMap namespace/name`.
        origin: String,
        /// What is wrong, with the expected shape.
        reason: String,
    },

    /// The Kubernetes API could not be reached or refused a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// `--secure-serving` could not set up its certificate.
    #[error("TLS for the gRPC listener (--secure-serving/--cert-path): {0}")]
    Tls(String),

    /// A listener could not be bound or served.
    #[error(transparent)]
    Serve(#[from] switchyard_runtime::serve::ServeFailure),
}

/// BBR's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Protocol(_) => "protocol",
            Error::UnsupportedBodyMode { .. } => "unsupported_body_mode",
            Error::Config { .. } => "config",
            Error::MappingFile { .. } | Error::Mapping { .. } => "mapping",
            Error::Kube(_) => "kube",
            Error::Tls(_) => "tls",
            Error::Serve(_) => "serve",
        }
    }
}

/// The status an ext_proc stream ends with when it fails.
///
/// Always an error status, never a clean end of stream: if the stream closed with OK, Envoy
/// would carry on *without* the processor and forward the request unmodified, even with
/// `failure_mode_allow: false` (docs/upstream.md#envoy-bootstrap-and-failure-mode). An error
/// status makes Envoy fail the
/// request (500 when fail-closed) or skip BBR deliberately (fail-open).
impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::Protocol(_) => tonic::Status::invalid_argument(message),
            Error::UnsupportedBodyMode { .. } | Error::Config { .. } => {
                tonic::Status::failed_precondition(message)
            }
            Error::MappingFile { .. } | Error::Mapping { .. } | Error::Kube(_) => {
                tonic::Status::unavailable(message)
            }
            Error::Tls(_) | Error::Serve(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_non_ok_status() {
        let errors = [
            Error::Protocol("request body before headers"),
            Error::UnsupportedBodyMode { mode: "STREAMED" },
            Error::Config {
                flag: "--max-body-bytes",
                reason: "must be at least 1".into(),
            },
        ];
        for err in errors {
            let status = tonic::Status::from(err);
            assert_ne!(status.code(), tonic::Code::Ok);
            assert!(!status.message().is_empty());
        }
    }

    #[test]
    fn unsupported_mode_says_what_to_set() {
        let msg = Error::UnsupportedBodyMode { mode: "STREAMED" }.to_string();
        assert!(msg.contains("BUFFERED or FULL_DUPLEX_STREAMED"), "{msg}");
    }
}
