//! The HTTPS shell: [`crate::https`] (the runtime's TLS accept loop, hyper's
//! header-read and idle timeout) in front of an axum router with
//! `POST /validate` (AdmissionReview) and `GET /healthz`.
//!
//! Each connection's handshake and HTTP/1.1 exchange run in their own task, so a
//! slow or silent client never stalls the accept loop.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use switchyard_check::admission::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ObjectsView;
use super::deputy::{self, AccessReviewer};
use super::review;
use super::tls::Certificates;
use crate::https::HttpsLimits;

/// Where the apiserver posts reviews (the chart's `clientConfig.service.path`).
pub const VALIDATE_PATH: &str = "/validate";
/// The largest review accepted: an object and its old version, each up to the
/// apiserver's 1.5 MiB request limit, plus the envelope.
const MAX_REVIEW_BYTES: usize = 4 * 1024 * 1024;

/// What the handler needs.
#[derive(Clone)]
pub struct WebhookState {
    /// The objects the rules consult, read once per review.
    pub view: Arc<dyn ObjectsView>,
    /// What the webhook enforces.
    pub config: Arc<Config>,
    /// Checks that a rollout's creator may patch what it targets (M11);
    /// `None` skips the check (offline tests).
    pub access: Option<Arc<dyn AccessReviewer>>,
}

/// The webhook's routes.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}

async fn validate(State(state): State<WebhookState>, body: Bytes) -> Response {
    let answered = match review::read(&body) {
        Ok(incoming) => {
            let refusal = match (&state.access, incoming.deputy_question()) {
                (Some(access), Some(question)) => match access.may_patch(&question).await {
                    Ok(true) => None,
                    Ok(false) => Some(deputy::refusal(&question)),
                    Err(err) => {
                        tracing::warn!(%err, "webhook: SubjectAccessReview failed");
                        Some(format!(
                            "cannot check whether user {:?} may patch {} {}/{} (SubjectAccessReview failed); retry",
                            question.user.username,
                            question.kind,
                            question.namespace,
                            question.name
                        ))
                    }
                },
                _ => None,
            };
            let objects = state.view.objects();
            review::respond(incoming, &objects, &state.config, refusal)
        }
        Err(err) => Err(err),
    };
    match answered {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => {
            tracing::warn!(%err, "webhook: unusable AdmissionReview");
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
    }
}

/// Accepts TLS connections on `listener` and serves `router` on each until
/// cancelled, within [`HttpsLimits::default`] (header-read and idle timeout,
/// connection cap, handshake deadline).
pub async fn serve(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    router: Router,
    cancel: CancellationToken,
) {
    crate::https::serve(
        listener,
        certificates,
        router,
        HttpsLimits::default(),
        cancel,
    )
    .await;
}
