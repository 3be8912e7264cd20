//! The HTTPS shell: a TLS accept loop in front of an axum router with
//! `POST /validate` (AdmissionReview) and `GET /healthz`.
//!
//! Each connection's handshake and HTTP/1.1 exchange run in their own task, so a
//! slow or silent client never stalls the accept loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use switchyard_check::admission::Config;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::ObjectsView;
use super::review;
use super::tls::Certificates;

/// Where the apiserver posts reviews (the chart's `clientConfig.service.path`).
pub const VALIDATE_PATH: &str = "/validate";
/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
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
    let objects = state.view.objects();
    match review::answer(&body, &objects, &state.config) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => {
            tracing::warn!(%err, "webhook: unusable AdmissionReview");
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
    }
}

/// Accepts TLS connections on `listener` and serves `router` on each until cancelled.
pub async fn serve(
    listener: TcpListener,
    certificates: Arc<Certificates>,
    router: Router,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "webhook: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(certificates.current());
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    return tracing::debug!(%peer, %err, "webhook: TLS handshake failed");
                }
                Err(_) => return tracing::debug!(%peer, "webhook: TLS handshake timed out"),
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = &mut connection => result,
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "webhook: connection ended with an error");
            }
        });
    }
}
