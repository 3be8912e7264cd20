//! Every client-facing error the EPP answers with, in one type.
//!
//! A request the EPP does not route ends with a local reply: an HTTP status, an
//! `x-llm-d-request-dropped-reason` header and an OpenAI-style JSON body whose message reads
//! `inference error: <Code> - <message>` (upstream's spelling). The state machine, flow
//! control and the body-size limit all describe their refusal as a [`Refusal`]; the shell turns
//! it into an `ImmediateResponse` in one place (`server::convert`), so the status, reason and
//! body cannot disagree.
//!
//! This module is a leaf (it imports nothing from the crate), so `flow` and `stream` can both
//! use it without depending on each other.

use std::fmt;

use switchyard_api::protocol::epp_metrics;

/// Upstream's error codes, which fix the HTTP status and the OpenAI error type of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the body cannot be parsed or names no model.
    BadRequest,
    /// 413: the body exceeds `--max-body-bytes`. Upstream has no code of its own for it, so
    /// the body spells it `BadRequest`; only the status differs.
    BodyTooLarge,
    /// 429: capacity exists but is contended.
    ResourceExhausted,
    /// 503: there is no capacity (no endpoints, shutting down, client gone).
    ServiceUnavailable,
    /// 500.
    Internal,
}

impl ErrorCode {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::BodyTooLarge => 413,
            Self::ResourceExhausted => 429,
            Self::ServiceUnavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Upstream's spelling in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest | Self::BodyTooLarge => epp_metrics::BAD_REQUEST,
            Self::ResourceExhausted => epp_metrics::RESOURCE_EXHAUSTED,
            Self::ServiceUnavailable => epp_metrics::SERVICE_UNAVAILABLE,
            Self::Internal => epp_metrics::INTERNAL,
        }
    }

    /// The `x-llm-d-request-dropped-reason` value when the refusal names none of its own.
    pub fn default_reason(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::BodyTooLarge => "body-too-large",
            Self::ResourceExhausted => "rejected-saturated",
            Self::ServiceUnavailable => "rejected-no-endpoints",
            Self::Internal => "internal-error",
        }
    }

    /// The OpenAI error `type` clients switch on.
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::BadRequest | Self::BodyTooLarge => "BadRequestError",
            Self::ResourceExhausted => "RateLimitError",
            Self::ServiceUnavailable => "ServiceUnavailableError",
            Self::Internal => "InternalServerError",
        }
    }
}

/// A request the EPP answers itself instead of routing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The error code, which fixes the status.
    pub code: ErrorCode,
    /// The `x-llm-d-request-dropped-reason` value.
    pub reason: &'static str,
    /// What happened, for the client (without the `inference error:` prefix).
    pub message: String,
}

impl Refusal {
    /// A refusal with the code's default reason.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: code.default_reason(),
            message: message.into(),
        }
    }

    /// The same refusal under a more specific dropped reason (flow control names why it
    /// dropped the request).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// The 413 for a body over `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::BodyTooLarge,
            format!("the request body exceeds the EPP's limit of {limit} bytes (--max-body-bytes)"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The client-facing message: `inference error: <Code> - <message>`.
    pub fn text(&self) -> String {
        self.to_string()
    }

    /// The OpenAI-style error body, `{"error":{"message","type","param","code"}}`.
    pub fn json_body(&self) -> Vec<u8> {
        let status = self.status();
        let text = self.text();
        let body = serde_json::json!({
            "error": {
                "message": text,
                "type": self.code.openai_type(),
                "param": null,
                "code": status,
            }
        });
        // Serialising a `Value` of strings and numbers cannot fail; the plain text is the
        // fallback rather than a panic.
        serde_json::to_vec(&body).unwrap_or_else(|_| text.into_bytes())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inference error: {} - {}",
            self.code.as_str(),
            self.message
        )
    }
}

#[cfg(test)]
mod tests;
