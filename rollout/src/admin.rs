//! The admin HTTP API (axum): read rollouts, and record admin actions on them.
//!
//! Routes (`R` = `/api/v1/namespaces/{ns}/inferencerollouts/{name}`):
//! - `GET /api/v1/inferencerollouts`, `GET R`, `GET R/analysis`;
//! - `POST R/pause {reason}`, `POST R/resume`, `POST R/promote {mode: step|full}`,
//!   `POST R/abort {reason}`, `POST R/retry`, `PUT R/weight {canary, unit: bp|percent}`;
//! - `GET /healthz`, `GET /metrics` (no authentication).
//!
//! Every action is recorded on the CR as `status.intent` (server-side apply,
//! field manager `inference-rollout-admin`), or in local mode in the rollout's
//! status file, so it survives restarts and the controller acts on it in its
//! next reconcile. `Idempotency-Key` becomes the intent's nonce (a repeat,
//! even of an action newer ones have replaced, is a no-op), `If-Match` must
//! equal the resourceVersion (412), a state that forbids the action answers
//! 409, a safety rule 422. Every write carries the resourceVersion it was
//! decided on, so a concurrent action that lost the race gets 409, never a
//! silent overwrite. One audit log line per action (target `audit`).

mod auth;
mod error;
mod handlers;
mod record;
pub mod transport;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use k8s_openapi::jiff::Timestamp;
use kube::Client;

pub use auth::{Authenticator, TokenFile, watch_token_file};
pub use error::AdminError;
pub use record::with_intent;

use crate::local::store::LocalStore;
use crate::metrics::Metrics;

/// The largest request body the admin API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The field manager of the admin API's status writes.
pub const ADMIN_FIELD_MANAGER: &str = "inference-rollout-admin";

/// Where rollouts are read and admin intents recorded.
#[derive(Clone)]
pub enum Store {
    /// InferenceRollout objects through the Kubernetes API.
    Kubernetes(Client),
    /// Local mode: the manifest directory and its status files.
    Local(Arc<LocalStore>),
}

impl Store {
    fn client(&self) -> Option<&Client> {
        match self {
            Self::Kubernetes(client) => Some(client),
            Self::Local(_) => None,
        }
    }
}

/// What every handler needs.
#[derive(Clone)]
pub struct AdminState {
    /// Where rollouts live.
    pub store: Store,
    /// Who may call.
    pub auth: Arc<Authenticator>,
    /// Request counters.
    pub metrics: Metrics,
    /// The clock; tests pin it.
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

/// The admin API's routes.
pub fn router(state: AdminState) -> Router {
    let r = "/api/v1/namespaces/{namespace}/inferencerollouts/{name}";
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(handlers::metrics))
        .route("/api/v1/inferencerollouts", get(handlers::list))
        .route(r, get(handlers::get_one))
        .route(&format!("{r}/analysis"), get(handlers::analysis))
        .route(&format!("{r}/pause"), post(handlers::pause))
        .route(&format!("{r}/resume"), post(handlers::resume))
        .route(&format!("{r}/promote"), post(handlers::promote))
        .route(&format!("{r}/abort"), post(handlers::abort))
        .route(&format!("{r}/retry"), post(handlers::retry))
        .route(&format!("{r}/weight"), put(handlers::set_weight))
        .fallback(handlers::not_found)
        // Action bodies are a few fields; axum's 2 MiB default is far more
        // than any needs.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[cfg(test)]
mod tests;
