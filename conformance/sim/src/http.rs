//! The real-time driver: OpenAI-compatible model-server replicas over HTTP (axum).
//!
//! Each replica is one listener, one axum router and one engine task ([`actor`]). Every
//! response carries `x-inference-pod: <replica name>` so tests can see where a request
//! went.

pub mod actor;
mod admin;
mod error;
mod infer;
pub mod openai;
mod pad;
mod seen;
mod stream;

pub use seen::{SeenHeader, SeenHeaders};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::ApiError;

use crate::engine::{Engine, EngineConfig};
use crate::error::SimError;
use crate::faults::{FaultState, Faults};
use crate::kv::BlockHasher;
use crate::metrics::EngineKind;
use crate::rng::mix;

/// How generated text is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Random one-token words; output length drawn like llm-d-inference-sim.
    #[default]
    Random,
    /// Repeat the prompt (the last message for chat), up to the output length.
    Echo,
}

/// Everything one replica needs.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Replica name (`x-inference-pod`).
    pub name: String,
    /// Names the base model answers to (the first is the metrics `model_name`).
    pub served_model_names: Vec<String>,
    /// LoRA adapters registered at start.
    pub adapters: Vec<String>,
    /// Engine shape.
    pub engine: EngineConfig,
    /// Metric names.
    pub kind: EngineKind,
    /// Text generation mode.
    pub mode: Mode,
    /// Multiplies every step cost; 0 makes the engine instantaneous (load tests).
    pub time_scale: f64,
    /// Root of block-hash chains.
    pub hash_seed: u64,
    /// Seed for output lengths and fault draws.
    pub seed: u64,
    /// Faults active from the start.
    pub faults: Faults,
    /// Capacity of the command channel into the engine task.
    pub command_queue: usize,
}

impl ReplicaOptions {
    /// A small-profile replica serving `model`, real time, no faults.
    pub fn new(name: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            served_model_names: vec![model.into()],
            adapters: Vec::new(),
            engine: EngineConfig::default(),
            kind: EngineKind::Vllm,
            mode: Mode::Random,
            time_scale: 1.0,
            hash_seed: 0,
            seed: 0,
            faults: Faults::default(),
            command_queue: 4096,
        }
    }
}

/// State shared by a replica's handlers.
pub(crate) struct Shared {
    pub name: String,
    pub pod_header: HeaderValue,
    pub served: Vec<String>,
    pub mode: Mode,
    pub hasher: BlockHasher,
    pub max_model_len: usize,
    pub tx: mpsc::Sender<actor::Command>,
    pub faults: Arc<ArcSwap<FaultState>>,
    pub draws: AtomicU64,
    pub seed: u64,
    pub created: u64,
    /// The `x-` request headers that reached this replica ([`seen`]).
    pub seen: seen::SeenLock,
}

impl Shared {
    /// A fresh 64-bit random value (lock-free: a counter through the SplitMix finaliser).
    pub fn draw(&self) -> u64 {
        mix(self.seed
            ^ self
                .draws
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// An injected failure for this request, per the current faults.
    pub fn injected(&self) -> Result<(), ApiError> {
        let state = self.faults.load();
        if state.faults.failure_injection_rate <= 0.0 {
            return Ok(());
        }
        match state.next_injected_status(self.draw()) {
            Some(code) => Err(SimError::Injected(code).into()),
            None => Ok(()),
        }
    }
}

pub(crate) type AppState = Arc<Shared>;

/// A running replica.
#[derive(Debug)]
pub struct ReplicaHandle {
    /// Replica name.
    pub name: String,
    /// Bound address.
    pub addr: SocketAddr,
    server: JoinHandle<()>,
}

impl ReplicaHandle {
    /// Stops serving. Open connections are dropped; the engine task ends once the last
    /// handler holding its channel is gone.
    pub fn shutdown(&self) {
        self.server.abort();
    }

    /// Waits until the server stops (it only stops on error or [`Self::shutdown`]).
    pub async fn join(mut self) {
        // A cancelled task is the normal way to stop; nothing to report.
        let _ = (&mut self.server).await;
    }
}

impl Drop for ReplicaHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a replica on `listener`: spawns its engine task and its HTTP server on the
/// current Tokio runtime.
pub fn spawn_replica(
    listener: TcpListener,
    opts: ReplicaOptions,
) -> Result<ReplicaHandle, SimError> {
    let addr = listener.local_addr()?;
    if opts.served_model_names.is_empty() {
        return Err(SimError::Config(
            "at least one served model name is needed".into(),
        ));
    }
    opts.faults.validate().map_err(SimError::Config)?;
    let pod_header = HeaderValue::from_str(&opts.name).map_err(|_| {
        SimError::Config(format!(
            "replica name {:?} is not a valid header value",
            opts.name
        ))
    })?;
    let faults = Arc::new(ArcSwap::from_pointee(FaultState::new(
        opts.faults.clone(),
        Instant::now(),
    )));
    let (tx, rx) = mpsc::channel(opts.command_queue.max(1));
    let engine = Engine::new(opts.engine.clone(), opts.adapters.iter().cloned());
    tokio::spawn(actor::run(
        engine,
        rx,
        actor::ActorConfig {
            kind: opts.kind,
            model_name: opts.served_model_names[0].clone(),
            time_scale: opts.time_scale,
            faults: Arc::clone(&faults),
        },
    ));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shared = Arc::new(Shared {
        name: opts.name.clone(),
        pod_header,
        served: opts.served_model_names.clone(),
        mode: opts.mode,
        hasher: BlockHasher::new(opts.hash_seed, opts.engine.block_size),
        max_model_len: opts.engine.max_model_len,
        tx,
        faults,
        draws: AtomicU64::new(0),
        seed: opts.seed ^ mix(addr.port().into()),
        created,
        seen: seen::SeenLock::default(),
    });
    let app = router(shared);
    let name = opts.name.clone();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(replica = %name, error = %e, "server stopped");
        }
    });
    tracing::info!(replica = %opts.name, %addr, "replica listening");
    Ok(ReplicaHandle {
        name: opts.name,
        addr,
        server,
    })
}

fn router(state: AppState) -> Router {
    // The inference routes: their headers are recorded, and the padding fault applies.
    let inference = Router::new()
        .route("/v1/chat/completions", post(infer::chat))
        .route("/v1/completions", post(infer::completions))
        .route("/v1/embeddings", post(infer::embeddings))
        .route("/v1/responses", post(infer::responses))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pad::pad_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            seen::record,
        ));
    Router::new()
        .merge(inference)
        .route("/v1/models", get(admin::models))
        .route("/health", get(admin::health))
        .route("/health/ready", get(admin::ready))
        .route("/metrics", get(admin::metrics))
        .route("/v1/load_lora_adapter", post(admin::load_lora))
        .route("/v1/unload_lora_adapter", post(admin::unload_lora))
        .route(
            "/admin/faults",
            get(admin::get_faults).post(admin::set_faults),
        )
        .route("/admin/headers", get(seen::report).delete(seen::clear))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            pod_header,
        ))
        .with_state(state)
}

/// Stamps every response (errors and 404s included) with the replica name.
async fn pod_header(State(state): State<AppState>, mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("x-inference-pod", state.pod_header.clone());
    resp
}
