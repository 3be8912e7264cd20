//! The runtime's one error type: what the shell's I/O pieces can fail with. Each binary maps
//! it into its own error (keeping the message), so a user sees one wording for one problem.

/// What went wrong in the shared shell.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A serving certificate could not be read, parsed, paired with its key or generated.
    #[error("{0}")]
    Tls(String),

    /// A command-line value is unusable; `flag` names the flag(s) to fix.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag or flags at fault, spelled as on the command line.
        flag: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
