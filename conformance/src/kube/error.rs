//! The Kubernetes harness's error type.
//!
//! The rest of the conformance crate re-exports `switchyard-local`'s error, which knows
//! nothing about API servers; this one is the harness's own, and each message says what to do
//! next (run `cargo xtask kube build`, read the log tail, fix the named object).

use std::fmt;
use std::path::PathBuf;

/// Everything the Kubernetes harness can fail at.
///
/// `Debug` prints the message and its causes, because tests call `expect` on harness results
/// and that is what a failed test shows.
#[derive(thiserror::Error)]
pub enum Error {
    /// The cached kube-apiserver, etcd or helm binary is not where the harness looks.
    #[error(
        "{what} not found at {path}: run `cargo xtask kube build` (builds kube-apiserver, etcd \
         and helm from the Go modules pinned in xtask/go/, cached under \
         ~/.cache/switchyard/kube/) or set {env} to a directory holding them"
    )]
    BinariesMissing {
        /// Which binary or file.
        what: String,
        /// Where the harness looked.
        path: PathBuf,
        /// The environment variable that overrides the directory.
        env: &'static str,
    },

    /// A process of the control plane or of the local stack failed.
    #[error(transparent)]
    Process(#[from] switchyard_local::Error),

    /// Generating a certificate or key failed.
    #[error("generating {what}: {source}")]
    Pki {
        /// Which certificate or key.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },

    /// The API server answered a request with an error or could not be reached.
    #[error("{context}")]
    Api {
        /// What the harness was doing.
        context: String,
        /// kube-rs's error.
        #[source]
        source: kube::Error,
    },

    /// A kubeconfig the harness wrote could not be read back.
    #[error("{context}")]
    Kubeconfig {
        /// What the harness was doing.
        context: String,
        /// kube-rs's error.
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// A manifest file that is not YAML of Kubernetes objects.
    #[error("{path}: {reason}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The control plane did not reach a state the harness waits for.
    #[error("{0}")]
    Timeout(String),
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
    /// Wraps an API error with what the harness was doing.
    pub fn api(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Api { context, source }
    }

    /// Wraps an I/O error with what the harness was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Process(switchyard_local::Error::Io { context, source })
    }

    /// The HTTP status the API server answered with, if this is an API error.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}
