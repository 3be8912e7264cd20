//! The I/O shell: the ext_proc gRPC server (plain or TLS), gRPC health, Prometheus metrics
//! and the pool source, started together and drained together.
//!
//! [`start`] binds every listener first (so a port clash fails startup naming the address),
//! then serves until [`Running::shutdown`], which follows the workspace's one drain sequence
//! ([`switchyard_runtime::shutdown`]): health turns NOT_SERVING (and a leader steps down), the
//! listeners keep accepting through the drain grace (none unless
//! [`Running::with_drain_grace`] sets one), then stop while flow control dispatches what is
//! queued, and in-flight ext_proc streams finish (bounded by the drain timeout). The pool
//! source, the scrapers and flow control run until the streams are done.

pub mod convert;
pub mod grpc;
pub mod health;
pub mod tls;
pub mod wiring;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::serve::{Listening, ServeFailure, ServeLimits, Servers, grpc_builder};
use switchyard_runtime::shutdown::{Drain, Tasks};
use switchyard_runtime::tls::Certificates;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::datastore::Datastore;
use crate::error::{Error, Result};
use crate::flow::metrics::FlowCollector;
use crate::flow::{
    Detector, FlowControlConfig, FlowController, FlowMetrics, HeaderTrust, SnapshotProbe,
};
use crate::metrics::{self, Metrics};
use crate::scheduling::Scheduler;
use crate::scrape::{self, ScrapeConfig};
use crate::source::PoolSource;
use grpc::{EppService, Shared};
use health::{HealthService, Readiness};
use tls::CertSource;

/// Default largest request body the EPP buffers.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Everything [`start`] needs.
pub struct Options {
    /// The scheduler (from `--config-file`, or upstream's defaults).
    pub scheduler: Scheduler,
    /// ext_proc gRPC listener.
    pub grpc_addr: SocketAddr,
    /// gRPC health listener.
    pub health_addr: SocketAddr,
    /// `/metrics` listener.
    pub metrics_addr: SocketAddr,
    /// `Some`: serve ext_proc over TLS with this certificate.
    pub tls: Option<CertSource>,
    /// `--disable-endpoint-subset-filter`.
    pub disable_subset_filter: bool,
    /// Largest request body buffered (413 above).
    pub max_body_bytes: usize,
    /// Whether readiness waits for leadership.
    pub leader_election: bool,
    /// Longest wait for in-flight streams on shutdown.
    pub drain_timeout: Duration,
    /// Most ext_proc streams per HTTP/2 connection (`--grpc-max-concurrent-streams`).
    pub max_concurrent_streams: u32,
    /// How endpoints' `/metrics` are scraped (its `metrics` field is replaced by the EPP's).
    pub scrape: ScrapeConfig,
    /// The `flowControl` section; when enabled, requests pass the flow controller.
    pub flow_control: FlowControlConfig,
    /// Whose flow headers are believed.
    pub header_trust: HeaderTrust,
    /// The header that makes model rewrites sticky per session (none: per request).
    pub rewrite_session_header: Option<String>,
    /// `--max-buffered-bytes` and `--max-response-buffer-bytes`.
    pub buffers: grpc::BufferLimits,
}

/// A running EPP.
pub struct Running {
    /// Bound ext_proc address (useful with port 0).
    pub grpc_addr: SocketAddr,
    /// Bound health address.
    pub health_addr: SocketAddr,
    /// Bound metrics address.
    pub metrics_addr: SocketAddr,
    datastore: Arc<Datastore>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    flow_metrics: Option<Arc<FlowMetrics>>,
    tasks: Tasks<Error>,
    /// Cancelled the moment the drain starts: leader election releases the lease then, so
    /// another replica takes over while this one still serves its grace period.
    stepping_down: CancellationToken,
    drain: Drain,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let serve_error = |source| Error::from(ServeFailure { what, addr, source });
    let listener = TcpListener::bind(addr).await.map_err(serve_error)?;
    let bound = listener.local_addr().map_err(serve_error)?;
    Ok((listener, bound))
}

/// Binds, starts the pool source and serves.
pub async fn start<S: PoolSource>(options: Options, source: S) -> Result<Running> {
    let Options {
        scheduler,
        grpc_addr,
        health_addr,
        metrics_addr,
        tls,
        disable_subset_filter,
        max_body_bytes,
        leader_election,
        drain_timeout,
        max_concurrent_streams,
        mut scrape,
        flow_control,
        header_trust,
        rewrite_session_header,
        buffers,
    } = options;
    scrape.validate()?;
    let (grpc_listener, grpc_bound) = bind("gRPC", grpc_addr).await?;
    let (health_listener, health_bound) = bind("gRPC health", health_addr).await?;
    let (metrics_listener, metrics_bound) = bind("metrics", metrics_addr).await?;

    let mut tasks = Tasks::new();
    // What in-flight streams depend on (certificates, the pool, its metrics, flow control)
    // stops only after the servers drained.
    let cancel = tasks.background_token().clone();
    let tls = tls
        .map(|source| Certificates::load_and_watch(&source, tls::ALPN, &cancel))
        .transpose()
        .map_err(|e| Error::Tls(format!("--secure-serving/--cert-path: {e}")))?;
    let datastore = Arc::new(Datastore::with_prefix_sizing(
        scheduler.config().prefix_sizing(),
    ));
    let readiness = Arc::new(Readiness::new(leader_election));
    let (flow, flow_metrics) = if flow_control.enabled {
        let (controller, metrics) = spawn_flow_control(flow_control, &datastore, &mut tasks);
        (Some(controller), Some(metrics))
    } else {
        (None, None)
    };
    let mut registry = Metrics::new();
    registry.learn_models_from(Arc::clone(&datastore));
    if let Some(figures) = &flow_metrics {
        registry.register_collector(FlowCollector::new(
            Arc::clone(figures),
            Arc::clone(&datastore),
        ));
    }
    let metrics = Arc::new(registry);

    // The pool's whole data path: the source's membership and the scrapers' metrics, both
    // written by one owner task; the first state from the source marks the pool synced.
    scrape.metrics = metrics.scrape();
    let synced = Arc::clone(&readiness);
    tasks.spawn_background(scrape::run_pool(
        source,
        Arc::clone(&datastore),
        scrape,
        move || synced.set_synced(),
        cancel.clone(),
    ));

    let service = EppService::new(Arc::new(Shared {
        datastore: Arc::clone(&datastore),
        scheduler,
        disable_subset_filter,
        max_body_bytes,
        metrics: Arc::clone(&metrics),
        flow,
        header_trust,
        rewrite_session_header,
        buffers,
    }))
    .into_server();
    let router = grpc_builder(max_concurrent_streams).add_service(service);
    Servers {
        grpc: Listening {
            service: router,
            listener: grpc_listener,
        },
        tls,
        health: Listening {
            service: Routes::new(HealthService::new(Arc::clone(&readiness))),
            listener: health_listener,
        },
        metrics: Listening {
            service: metrics::router(Arc::clone(&metrics), Arc::clone(&datastore)),
            listener: metrics_listener,
        },
        limits: ServeLimits::default(),
    }
    .spawn(&mut tasks, Error::Serve);

    tracing::info!(
        grpc = %grpc_bound,
        health = %health_bound,
        metrics = %metrics_bound,
        "switchyard-epp serving",
    );
    Ok(Running {
        grpc_addr: grpc_bound,
        health_addr: health_bound,
        metrics_addr: metrics_bound,
        datastore,
        readiness,
        metrics,
        flow_metrics,
        tasks,
        stepping_down: CancellationToken::new(),
        drain: Drain {
            grace: Duration::ZERO,
            timeout: drain_timeout,
        },
    })
}

/// Starts the flow controller over the datastore. When the listeners stop it drains
/// (everything queued is dispatched while the pool has endpoints); once the streams are done
/// it is shut down (whatever is left is answered 503 `rejected-shutting-down`) and its actor
/// awaited.
fn spawn_flow_control(
    config: FlowControlConfig,
    datastore: &Arc<Datastore>,
    tasks: &mut Tasks<Error>,
) -> (FlowController, Arc<FlowMetrics>) {
    let config = Arc::new(config);
    let probe = SnapshotProbe::new(
        Arc::clone(datastore),
        Detector::new(config.detector.clone()),
    );
    let metrics = Arc::new(FlowMetrics::default());
    let (controller, actor) = FlowController::spawn(config, probe, Arc::clone(&metrics));
    let stopper = controller.clone();
    let listeners_stopped = tasks.token().clone();
    let streams_done = tasks.background_token().clone();
    tasks.spawn_background(async move {
        listeners_stopped.cancelled().await;
        stopper.drain();
        streams_done.cancelled().await;
        stopper.shutdown();
        if let Err(err) = actor.await {
            tracing::warn!(%err, "flow-control actor ended abnormally");
        }
        Ok(())
    });
    tracing::info!("flow control enabled");
    (controller, metrics)
}

impl Running {
    /// Flow control's figures, when it is enabled.
    pub fn flow_metrics(&self) -> Option<Arc<FlowMetrics>> {
        self.flow_metrics.clone()
    }

    /// The pool datastore (the scraper publishes metrics into it).
    pub fn datastore(&self) -> Arc<Datastore> {
        Arc::clone(&self.datastore)
    }

    /// What health checks report (leader election sets leadership here).
    pub fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.readiness)
    }

    /// The EPP's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Cancelled once the EPP's streams have drained; background tasks stop on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.tasks.background_token().clone()
    }

    /// Cancelled when the drain starts (health turns NOT_SERVING): leader election stops on
    /// it and releases the lease at once.
    pub fn step_down_token(&self) -> CancellationToken {
        self.stepping_down.clone()
    }

    /// Keeps the listeners accepting for `grace` after health turned NOT_SERVING on
    /// shutdown, so a client that has not yet seen the health change is still served.
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.drain.grace = grace;
        self
    }

    /// Runs a background task (leader election) that is awaited on drain, after the
    /// streams; an `Err` from it ends [`Running::wait_for_failure`].
    pub fn spawn(&mut self, task: impl Future<Output = Result<()>> + Send + 'static) {
        self.tasks.spawn_background(task);
    }

    /// Waits until a task fails (an `Err`); returns `Ok` once every task ended cleanly.
    pub async fn wait_for_failure(&mut self) -> Result<()> {
        let grpc_addr = self.grpc_addr;
        let panicked = |join| Error::Serve(ServeFailure::panicked(grpc_addr, join));
        self.tasks.wait_for_failure(panicked).await
    }

    /// Drains: health NOT_SERVING and the lease released, the grace, stop accepting (flow
    /// control dispatching what is queued), let in-flight streams finish (bounded by the
    /// drain timeout), then stop the background work.
    pub async fn shutdown(self) -> Result<()> {
        let readiness = self.readiness;
        let stepping_down = self.stepping_down;
        self.tasks
            .drain(self.drain, async move {
                readiness.set_draining();
                stepping_down.cancel();
            })
            .await;
        Ok(())
    }
}
