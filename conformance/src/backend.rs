//! A loopback HTTP backend that answers every request with its own name, so a test can tell
//! which route Envoy took.
//!
//! Response: header `x-switchyard-backend: <name>` and a JSON body
//! `{"backend", "method", "path", "model", "body_bytes"}`, where `model` is the
//! `x-gateway-inference-model` header the backend received (set by an ext_proc server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::envoy::bootstrap::MODEL_HEADER;
use crate::error::{Error, Result};

/// Response header naming the backend that answered.
pub const BACKEND_HEADER: &str = "x-switchyard-backend";

/// A running backend; stops when dropped.
#[derive(Debug)]
pub struct TestBackend {
    name: String,
    addr: SocketAddr,
    state: Arc<BackendState>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct BackendState {
    name: String,
    requests: AtomicU64,
}

// === impl TestBackend ===

impl TestBackend {
    /// Starts a backend on an ephemeral loopback port.
    pub async fn start(name: impl Into<String>) -> Result<Self> {
        Self::start_on(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a backend on `addr`.
    pub async fn start_on(name: impl Into<String>, addr: SocketAddr) -> Result<Self> {
        let name = name.into();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(Error::io(format!("binding backend {name} to {addr}")))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("reading the backend's address"))?;
        let state = Arc::new(BackendState {
            name: name.clone(),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .fallback(answer)
            // Tests send large bodies through BUFFERED ext_proc; the backend must not be the
            // limit.
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&state));
        let task = tokio::spawn({
            let name = name.clone();
            async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(backend = %name, %err, "backend stopped");
                }
            }
        });
        tracing::debug!(backend = %name, %addr, "backend listening");
        Ok(Self {
            name,
            addr,
            state,
            task,
        })
    }

    /// The backend's name, as it appears in its answers.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(state): State<Arc<BackendState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let model = headers
        .get(MODEL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json = json!({
        "backend": state.name,
        "method": method.as_str(),
        "path": uri.path(),
        "model": model,
        "body_bytes": body.len(),
    });
    (
        [
            (BACKEND_HEADER, state.name.clone()),
            ("content-type", "application/json".to_owned()),
        ],
        json.to_string(),
    )
}
