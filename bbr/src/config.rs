//! What a BBR stream needs to know, validated once at startup.

use switchyard_api::protocol::{BASE_MODEL_NAME_HEADER, INFERENCE_MODEL_HEADER, MODEL_NAME_HEADER};

use switchyard_runtime::budget::ByteBudget;

use crate::error::{Error, Result};
use crate::extract::Extractor;

/// Default cap on a request body: larger bodies are answered 413 before buffering further.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Default `--max-buffered-bytes`: half the chart's 512 MiB memory limit, which leaves room
/// for the process itself, the decode buffers of messages in transit and allocator slack.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 256 * 1024 * 1024;

/// Longest model name BBR will put into a header. Names are routing keys, not prose; the cap
/// keeps a hostile body from inflating every downstream header and log line.
pub const MAX_MODEL_NAME_BYTES: usize = 1024;

/// The request-body mode of Envoy's ext_proc filter, as BBR handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// `BUFFERED`: Envoy sends the whole body in one message, after BBR answered the headers.
    Buffered,
    /// `FULL_DUPLEX_STREAMED`: Envoy streams chunks without waiting; BBR holds the headers
    /// answer until the body ends, then echoes the body.
    FullDuplexStreamed,
}

impl BodyMode {
    /// The proto enum name, for logs and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyMode::Buffered => "BUFFERED",
            BodyMode::FullDuplexStreamed => "FULL_DUPLEX_STREAMED",
        }
    }
}

/// Per-stream behaviour, shared read-only by every stream.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Header set from the body's model (lowercase).
    pub model_header: String,
    /// Also set upstream BBR's `x-gateway-model-name`.
    pub set_upstream_model_header: bool,
    /// Header set to the base model of a LoRA adapter (lowercase).
    pub base_model_header: String,
    /// Forward a JSON body without `model` (no routing header) instead of answering 400.
    pub allow_missing_model: bool,
    /// Largest body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// The JSON scanner (nesting limit).
    pub extractor: Extractor,
    /// Mode assumed when Envoy does not announce one (Envoy before 1.33 sends no
    /// `protocol_config`).
    pub default_body_mode: BodyMode,
    /// The process-wide budget of buffered body bytes, shared by every stream (cloning the
    /// configuration shares it).
    pub budget: ByteBudget,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            model_header: INFERENCE_MODEL_HEADER.to_string(),
            set_upstream_model_header: false,
            base_model_header: BASE_MODEL_NAME_HEADER.to_string(),
            allow_missing_model: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            extractor: Extractor::default(),
            default_body_mode: BodyMode::Buffered,
            budget: ByteBudget::new(DEFAULT_MAX_BUFFERED_BYTES),
        }
    }
}

/// Is `name` a valid lowercase HTTP header name (RFC 9110 token)?
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

impl RouterConfig {
    /// Checks the settings; call once after building the configuration from flags.
    pub fn validate(self) -> Result<Self> {
        for (flag, name) in [
            ("--model-header", &self.model_header),
            ("--base-model-header", &self.base_model_header),
        ] {
            if !valid_header_name(name) {
                return Err(Error::Config {
                    flag,
                    reason: format!(
                        "`{name}` is not a lowercase HTTP header name; use letters, digits and \
                         '-', e.g. {INFERENCE_MODEL_HEADER}"
                    ),
                });
            }
        }
        if self.model_header == self.base_model_header {
            return Err(Error::Config {
                flag: "--base-model-header",
                reason: format!(
                    "must differ from --model-header (both are `{}`)",
                    self.model_header
                ),
            });
        }
        if self.budget.limit() < self.max_body_bytes {
            return Err(Error::Config {
                flag: "--max-buffered-bytes",
                reason: format!(
                    "is {} bytes, below --max-body-bytes ({}): a body BBR accepts could never \
                     be buffered; raise --max-buffered-bytes or lower --max-body-bytes",
                    self.budget.limit(),
                    self.max_body_bytes
                ),
            });
        }
        if self.max_body_bytes == 0 {
            return Err(Error::Config {
                flag: "--max-body-bytes",
                reason: "must be at least 1 (the default is 33554432, 32 MiB)".into(),
            });
        }
        Ok(self)
    }

    /// Every header BBR sets: a client-supplied copy of any of them is removed before routing,
    /// whatever the body says, so that a request can never pick its own route. Upstream's
    /// `x-gateway-model-name` is owned even when BBR does not set it, because routes written
    /// for upstream match on it.
    pub fn owned_headers(&self) -> [&str; 3] {
        [
            &self.model_header,
            MODEL_NAME_HEADER,
            &self.base_model_header,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_own_all_three_routing_headers() {
        let config = RouterConfig::default();
        assert_eq!(
            config.owned_headers(),
            [
                "x-gateway-inference-model",
                "x-gateway-model-name",
                "x-gateway-base-model-name",
            ]
        );
    }

    #[test]
    fn configured_model_header_is_owned_and_checked() {
        let config = RouterConfig {
            model_header: "x-model".into(),
            ..RouterConfig::default()
        }
        .validate()
        .unwrap();
        assert!(config.owned_headers().contains(&"x-model"));
        for bad in ["", "X-Model", "x model", "x:model"] {
            let err = RouterConfig {
                model_header: bad.into(),
                ..RouterConfig::default()
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains("--model-header"), "{err}");
        }
    }

    #[test]
    fn zero_body_limit_and_clashing_headers_are_rejected() {
        let zero = RouterConfig {
            max_body_bytes: 0,
            ..RouterConfig::default()
        };
        assert!(zero.validate().unwrap_err().to_string().contains("32 MiB"));
        let clash = RouterConfig {
            base_model_header: INFERENCE_MODEL_HEADER.into(),
            ..RouterConfig::default()
        };
        assert!(clash.validate().is_err());
    }
}
