//! Errors as OpenAI-shaped JSON responses.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::SimError;

/// A [`SimError`] on its way out as `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub struct ApiError(pub SimError);

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        Self(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: u16,
}

/// The error type name vLLM's OpenAI server uses for a status code.
fn type_for(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "TimeoutError",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        s if s >= 500 => "InternalServerError",
        _ => "BadRequestError",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.status();
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self.0 {
            SimError::Injected(_) => format!("injected fault: HTTP {code}"),
            e => e.to_string(),
        };
        // vLLM names the offending parameter for an unknown model and an over-long request.
        let param = match self.0 {
            SimError::UnknownModel(_) => Some("model"),
            SimError::TooLong(_) => Some("max_tokens"),
            _ => None,
        };
        let body = Body {
            error: Inner {
                message,
                kind: type_for(code),
                param,
                code,
            },
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
    }
}
