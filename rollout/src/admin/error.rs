//! Admin API errors as JSON: `{"error": {"code", "reason", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a handler can refuse with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No or bad bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token's user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such rollout or route.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (body, header).
    #[error("{0}")]
    BadRequest(String),
    /// The rollout's state forbids the action.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` does not match the resourceVersion.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A safety rule refuses the request.
    #[error("{0}")]
    Unprocessable(String),
    /// The Kubernetes API failed.
    #[error("{0}")]
    Upstream(String),
}

impl AdminError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A CamelCase reason, as Kubernetes Status objects carry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "Unauthorized",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound(_) => "NotFound",
            Self::BadRequest(_) => "BadRequest",
            Self::Conflict(_) => "Conflict",
            Self::PreconditionFailed(_) => "PreconditionFailed",
            Self::Unprocessable(_) => "Unprocessable",
            Self::Upstream(_) => "KubernetesAPIError",
        }
    }

    /// Maps a kube error of `action` to the closest answer.
    pub fn from_kube(action: &str, err: kube::Error) -> Self {
        match &err {
            kube::Error::Api(status) if status.code == 404 => {
                Self::NotFound(format!("{action}: not found"))
            }
            kube::Error::Api(status) if status.code == 409 => Self::Conflict(format!(
                "{action}: the rollout changed after it was read (another admin action or the controller wrote it); read it again and retry"
            )),
            kube::Error::Api(status) if status.code == 403 => Self::Forbidden(format!(
                "{action}: the controller's service account may not do this: {}",
                status.message
            )),
            _ => Self::Upstream(format!("{action}: {err}")),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({
            "error": {"code": status.as_u16(), "reason": self.reason(), "message": self.to_string()}
        });
        (status, Json(body)).into_response()
    }
}
