//! The crate's single error type.

use std::io;

/// Everything that can go wrong in the simulator, from a rejected request to a port that
/// could not be bound. HTTP handlers map each variant to a status code (see
/// [`SimError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The engine's waiting queue is at `max_waiting`; vLLM-style servers answer 429.
    #[error("the waiting queue is full ({0} requests)")]
    QueueFull(usize),
    /// The request names neither a served model nor a registered LoRA adapter.
    #[error("the model `{0}` does not exist")]
    UnknownModel(String),
    /// Prompt plus requested output can never fit (context length or KV capacity).
    #[error("{0}")]
    TooLong(String),
    /// The request body or a parameter is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// A LoRA adapter operation was refused (already loaded, not found…).
    #[error("{0}")]
    Lora(String),
    /// A fault injected on purpose, carrying the status code to answer with.
    #[error("injected fault")]
    Injected(u16),
    /// The engine task of a replica has stopped; the replica is shutting down.
    #[error("the engine of this replica has stopped")]
    EngineGone,
    /// The request was dropped by the engine (aborted or preempted past recovery).
    #[error("request aborted")]
    Aborted,
    /// Invalid command-line or configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Socket and other I/O failures.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl SimError {
    /// HTTP status the OpenAI-compatible front end answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::QueueFull(_) => 429,
            Self::UnknownModel(_) => 404,
            Self::TooLong(_) | Self::BadRequest(_) | Self::Lora(_) | Self::Config(_) => 400,
            Self::Injected(code) => *code,
            Self::EngineGone => 503,
            Self::Aborted | Self::Io(_) => 500,
        }
    }
}

/// Shorthand for results carrying [`SimError`].
pub type Result<T, E = SimError> = std::result::Result<T, E>;
