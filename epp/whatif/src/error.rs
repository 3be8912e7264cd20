//! The harness's one error type.

/// What can go wrong preparing or writing a what-if report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A workload file or name is unusable; the message says which field to fix.
    #[error("workload: {0}")]
    Workload(String),
    /// An unknown policy name.
    #[error("unknown policy `{0}`; known policies: {1}")]
    UnknownPolicy(String, String),
    /// A policy's scheduler configuration did not load.
    #[error("policy `{0}`: {1}")]
    Policy(String, String),
    /// Writing results, the report or a plot failed.
    #[error("writing {0}: {1}")]
    Write(String, String),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
