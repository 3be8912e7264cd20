//! What BBR does with a complete body: route on its model, let it pass, or reject it — and the
//! OpenAI-style error a rejected client receives. Pure: no I/O, no protocol.

use std::borrow::Cow;

use switchyard_runtime::budget::OverBudget;

use crate::config::{MAX_MODEL_NAME_BYTES, RouterConfig};
use crate::extract::{ExtractError, ExtractErrorKind, Model};

/// Why a request is refused; each maps to an HTTP status, an error `code` and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The body is not one valid JSON object.
    InvalidJson,
    /// The top-level `model` appears more than once.
    DuplicateModel,
    /// No top-level `model` (and `--allow-missing-model` is off).
    MissingModel,
    /// `model` is `""`.
    EmptyModel,
    /// `model` is not a string.
    ModelNotString,
    /// `model` cannot be an HTTP header value (control characters, edge whitespace, length).
    InvalidModelName,
    /// The body is larger than `--max-body-bytes`.
    BodyTooLarge,
    /// The process's budget of buffered bytes (`--max-buffered-bytes`) is spent by requests
    /// in flight: a 503 the client may retry, rather than an out-of-memory kill for all.
    Overloaded,
}

impl Reason {
    /// The HTTP status answered to the client.
    pub fn status(self) -> u16 {
        match self {
            Reason::BodyTooLarge => 413,
            Reason::Overloaded => 503,
            _ => 400,
        }
    }

    /// The OpenAI-style `error.code`, also the `outcome` metric label after `rejected_`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::DuplicateModel => "duplicate_model",
            Reason::MissingModel => "missing_model",
            Reason::EmptyModel => "empty_model",
            Reason::ModelNotString => "model_not_string",
            Reason::InvalidModelName => "invalid_model_name",
            Reason::BodyTooLarge => "request_too_large",
            Reason::Overloaded => "server_overloaded",
        }
    }

    /// Every reason, for resolving metric handles up front.
    pub const ALL: [Reason; 8] = [
        Reason::InvalidJson,
        Reason::DuplicateModel,
        Reason::MissingModel,
        Reason::EmptyModel,
        Reason::ModelNotString,
        Reason::InvalidModelName,
        Reason::BodyTooLarge,
        Reason::Overloaded,
    ];
}

/// A refused request: the reason and the message the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
    /// What is wrong and what to fix, for the client.
    pub message: String,
}

impl Rejection {
    /// The 413 for a body past the limit.
    pub fn too_large(limit: usize) -> Self {
        Rejection {
            reason: Reason::BodyTooLarge,
            message: format!(
                "request body is larger than the {limit} bytes this gateway accepts; send a \
                 smaller request"
            ),
        }
    }

    /// The 503 for a request that would overdraw the process's budget of buffered bytes.
    pub fn overloaded(refused: &OverBudget) -> Self {
        Rejection {
            reason: Reason::Overloaded,
            message: refused.to_string(),
        }
    }

    /// The response body: `{"error":{"message","type","param","code"}}`, as OpenAI's API and
    /// its SDKs expect.
    pub fn body(&self) -> Vec<u8> {
        let param = match self.reason {
            Reason::InvalidJson | Reason::BodyTooLarge | Reason::Overloaded => {
                serde_json::Value::Null
            }
            _ => serde_json::Value::from("model"),
        };
        // OpenAI's type for a failure that is not the request's fault.
        let kind = match self.reason {
            Reason::Overloaded => "server_error",
            _ => "invalid_request_error",
        };
        let body = serde_json::json!({
            "error": {
                "message": self.message,
                "type": kind,
                "param": param,
                "code": self.reason.code(),
            }
        });
        body.to_string().into_bytes()
    }
}

/// What to do with a request whose body is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Route on this model name.
    Route(Cow<'a, str>),
    /// Forward without a routing header (`--allow-missing-model` and no `model`).
    PassWithoutModel,
    /// Answer the client with an error.
    Reject(Rejection),
}

/// Why a name cannot travel in a header, if it cannot (RFC 9110 §5.5 field values).
fn header_value_problem(name: &str) -> Option<String> {
    if name.len() > MAX_MODEL_NAME_BYTES {
        return Some(format!(
            "the \"model\" value is {} bytes long; model names may be at most \
             {MAX_MODEL_NAME_BYTES} bytes",
            name.len()
        ));
    }
    if let Some(b) = name
        .bytes()
        .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Some(format!(
            "the \"model\" value contains the control character 0x{b:02x}, which cannot be sent \
             in an HTTP header; remove it"
        ));
    }
    if name.starts_with([' ', '\t']) || name.ends_with([' ', '\t']) {
        return Some(
            "the \"model\" value starts or ends with whitespace, which HTTP headers drop; \
             remove it"
                .to_string(),
        );
    }
    if name.contains('\t') {
        return Some(
            "the \"model\" value contains a tab character; remove it from the model name"
                .to_string(),
        );
    }
    None
}

/// Decides on a complete body.
pub fn decide<'a>(config: &RouterConfig, body: &'a [u8]) -> Verdict<'a> {
    let reject = |reason, message: String| Verdict::Reject(Rejection { reason, message });
    match config.extractor.extract(body) {
        Ok(Model::String(name)) if name.is_empty() => reject(
            Reason::EmptyModel,
            "the \"model\" field is empty; set it to the name of the model to use".into(),
        ),
        Ok(Model::String(name)) => match header_value_problem(&name) {
            Some(problem) => reject(Reason::InvalidModelName, problem),
            None => Verdict::Route(name),
        },
        Ok(Model::Missing) if config.allow_missing_model => Verdict::PassWithoutModel,
        Ok(Model::Missing) => reject(
            Reason::MissingModel,
            "request body has no top-level \"model\" field; add \"model\": \"<name>\" naming \
             the model to use"
                .into(),
        ),
        Ok(Model::NotString(kind)) => reject(
            Reason::ModelNotString,
            format!(
                "the \"model\" field is {}, not a string; send the model name as a JSON string",
                kind.with_article()
            ),
        ),
        Err(e) => rejection_for(&e),
    }
}

fn rejection_for(e: &ExtractError) -> Verdict<'static> {
    let reason = match e.kind() {
        ExtractErrorKind::DuplicateModel => Reason::DuplicateModel,
        _ => Reason::InvalidJson,
    };
    Verdict::Reject(Rejection {
        reason,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(body: &str) -> Verdict<'_> {
        decide(&RouterConfig::default(), body.as_bytes())
    }

    fn reason(body: &str) -> Reason {
        match verdict(body) {
            Verdict::Reject(r) => r.reason,
            other => panic!("{body}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn routes_on_a_plain_name() {
        assert_eq!(
            verdict(r#"{"model":"llama"}"#),
            Verdict::Route(Cow::Borrowed("llama"))
        );
        // Non-ASCII is fine in a header value (obs-text); Envoy matches raw bytes.
        assert!(matches!(
            verdict(r#"{"model":"modèle"}"#),
            Verdict::Route(_)
        ));
    }

    #[test]
    fn every_bad_model_is_a_400_with_its_code() {
        for (body, want) in [
            ("{}", Reason::MissingModel),
            (r#"{"model":""}"#, Reason::EmptyModel),
            (r#"{"model":7}"#, Reason::ModelNotString),
            (r#"{"model":null}"#, Reason::ModelNotString),
            (r#"{"model":{"name":"a"}}"#, Reason::ModelNotString),
            (r#"{"model":"a","model":"b"}"#, Reason::DuplicateModel),
            (r#"{"model":"a\nb"}"#, Reason::InvalidModelName),
            (r#"{"model":"a\u0000"}"#, Reason::InvalidModelName),
            (r#"{"model":"a\u007f"}"#, Reason::InvalidModelName),
            (r#"{"model":" a"}"#, Reason::InvalidModelName),
            (r#"{"model":"a\t"}"#, Reason::InvalidModelName),
            (r#"{"model":"a\tb"}"#, Reason::InvalidModelName),
            ("not json", Reason::InvalidJson),
            ("", Reason::InvalidJson),
            ("[]", Reason::InvalidJson),
            ("\u{feff}{}", Reason::InvalidJson),
        ] {
            assert_eq!(reason(body), want, "{body}");
            assert_eq!(want.status(), 400);
        }
        let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_MODEL_NAME_BYTES + 1));
        assert_eq!(reason(&long), Reason::InvalidModelName);
        let longest = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_MODEL_NAME_BYTES));
        assert!(matches!(verdict(&longest), Verdict::Route(_)));
    }

    #[test]
    fn missing_model_can_pass_when_configured() {
        let config = RouterConfig {
            allow_missing_model: true,
            ..RouterConfig::default()
        };
        assert_eq!(decide(&config, b"{}"), Verdict::PassWithoutModel);
        // Only a missing model: broken bodies and bad models are still refused.
        assert!(matches!(decide(&config, b"{"), Verdict::Reject(_)));
        assert!(matches!(
            decide(&config, br#"{"model":1}"#),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn error_body_is_openai_shaped() {
        let Verdict::Reject(r) = verdict(r#"{"model":5}"#) else {
            panic!("expected a rejection")
        };
        let body: serde_json::Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["code"], "model_not_string");
        assert_eq!(
            body["error"]["message"],
            "the \"model\" field is a number, not a string; send the model name as a JSON string"
        );
        let too_large: serde_json::Value =
            serde_json::from_slice(&Rejection::too_large(10).body()).unwrap();
        assert_eq!(too_large["error"]["code"], "request_too_large");
        assert!(too_large["error"]["param"].is_null());
        assert_eq!(Reason::BodyTooLarge.status(), 413);
    }

    #[test]
    fn invalid_json_message_says_where() {
        let Verdict::Reject(r) = verdict(r#"{"model" "x"}"#) else {
            panic!("expected a rejection")
        };
        assert!(r.message.contains("at byte 9"), "{}", r.message);
    }
}
