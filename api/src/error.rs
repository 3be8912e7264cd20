//! The crate's single error type.
//!
//! Everything in `switchyard-api` is pure (parsing, converting, rendering), so the
//! variants describe bad input rather than failed I/O.

/// Everything that can go wrong while parsing, converting or rendering API objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document's `apiVersion`/`kind` is not one this type accepts.
    #[error(
        "expected kind {expected_kind} in one of [{accepted}], got {found_kind:?} in {found_api_version:?}"
    )]
    UnexpectedType {
        /// The kind the caller asked for.
        expected_kind: &'static str,
        /// Every `apiVersion` accepted for that kind, comma-separated.
        accepted: String,
        /// The `apiVersion` the document carries (empty when missing).
        found_api_version: String,
        /// The `kind` the document carries (empty when missing).
        found_kind: String,
    },

    /// A document has the right type but its body does not match the schema.
    #[error("cannot decode {kind} {name:?}")]
    Decode {
        /// The kind being decoded.
        kind: &'static str,
        /// `metadata.name`, when the document has one.
        name: String,
        /// What serde rejected.
        #[source]
        source: serde_json::Error,
    },

    /// A legacy object holds a value the current API cannot represent.
    #[error("cannot convert legacy {kind} {name:?}: {field} {reason}")]
    Conversion {
        /// The legacy kind being converted.
        kind: &'static str,
        /// `metadata.name` of the legacy object.
        name: String,
        /// JSON path of the offending field, e.g. `spec.targetPortNumber`.
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },

    /// A field holds a value outside the set this crate knows.
    #[error("invalid {field} {value:?}: expected {expected}")]
    InvalidValue {
        /// The field, e.g. `condition.status`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },

    /// Serialising a value to JSON failed (only possible with non-string map keys).
    #[error("cannot serialise {what} to JSON")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// Rendering CRDs as YAML failed.
    #[error("cannot render {what} as YAML")]
    Yaml {
        /// What was being rendered.
        what: String,
        /// The serde-saphyr error.
        #[source]
        source: serde_saphyr::ser::Error,
    },
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnexpectedType { .. } => "unexpected_type",
            Self::Decode { .. } => "decode",
            Self::Conversion { .. } => "conversion",
            Self::InvalidValue { .. } => "invalid_value",
            Self::Serialize { .. } => "serialize",
            Self::Yaml { .. } => "yaml",
        }
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
