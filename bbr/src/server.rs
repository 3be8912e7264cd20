//! The I/O shell: the ext_proc gRPC server, gRPC health, Prometheus metrics and the sources of
//! base-model mappings, started together and drained together.
//!
//! [`start`] binds every listener first (so a port clash fails startup with the address), then
//! serves until [`Running::shutdown`], which follows the workspace's one drain sequence
//! ([`switchyard_runtime::shutdown`]): health turns NOT_SERVING, the listeners keep accepting
//! through the drain grace (none unless [`Running::with_drain_grace`] sets one), then stop, and
//! in-flight ext_proc streams finish (bounded by the drain timeout).

pub mod cli;
pub mod grpc;
pub mod k8s;
pub mod mappings;
pub mod metrics;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer;
use switchyard_runtime::serve::{
    DEFAULT_MAX_CONCURRENT_STREAMS, Listening, ServeFailure, ServeLimits, Servers, grpc_builder,
};
use switchyard_runtime::shutdown::{Drain, Tasks};
use switchyard_runtime::tls::Certificates;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::RouterConfig;
use crate::error::{Error, Result};
use grpc::BbrService;
use mappings::MappingStore;
use metrics::Metrics;

/// Everything [`start`] needs.
pub struct Options {
    /// Per-stream behaviour.
    pub config: RouterConfig,
    /// ext_proc gRPC listener.
    pub grpc_addr: SocketAddr,
    /// gRPC health listener.
    pub health_addr: SocketAddr,
    /// `/metrics` listener.
    pub metrics_addr: SocketAddr,
    /// Mapping file and its poll interval.
    pub base_model_file: Option<(PathBuf, Duration)>,
    /// Kubernetes client and the namespaces whose ConfigMaps hold mappings.
    pub config_maps: Option<(kube::Client, k8s::Scope)>,
    /// Longest wait for in-flight streams on shutdown.
    pub drain_timeout: Duration,
    /// Most ext_proc streams per HTTP/2 connection (`--grpc-max-concurrent-streams`).
    pub max_concurrent_streams: u32,
    /// TLS on the ext_proc listener (`--secure-serving`); `None` serves plaintext HTTP/2.
    pub tls: Option<tls::CertSource>,
}

impl Options {
    /// Every listener on 127.0.0.1 with a port the kernel picks, the default router, no
    /// mappings, no TLS, a 5 s drain: what tests and load stacks start BBR with in-process.
    pub fn on_loopback() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            config: RouterConfig::default(),
            grpc_addr: any,
            health_addr: any,
            metrics_addr: any,
            base_model_file: None,
            config_maps: None,
            drain_timeout: Duration::from_secs(5),
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            tls: None,
        }
    }
}

/// A running BBR.
pub struct Running {
    /// Bound ext_proc address (useful with port 0).
    pub grpc_addr: SocketAddr,
    /// Bound health address.
    pub health_addr: SocketAddr,
    /// Bound metrics address.
    pub metrics_addr: SocketAddr,
    /// The shared metrics.
    pub metrics: Arc<Metrics>,
    /// The shared mappings.
    pub mappings: Arc<MappingStore>,
    health: HealthReporter,
    tasks: Tasks<Error>,
    drain: Drain,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeFailure { what, addr, source }.into())
}

fn local(what: &'static str, listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|source| ServeFailure { what, addr, source }.into())
}

/// Binds, loads the mappings and serves.
pub async fn start(options: Options) -> Result<Running> {
    let Options {
        config,
        grpc_addr,
        health_addr,
        metrics_addr,
        base_model_file,
        config_maps,
        drain_timeout,
        max_concurrent_streams,
        tls,
    } = options;
    let grpc_listener = bind("gRPC", grpc_addr).await?;
    let health_listener = bind("gRPC health", health_addr).await?;
    let metrics_listener = bind("metrics", metrics_addr).await?;
    let grpc_bound = local("gRPC", &grpc_listener, grpc_addr)?;
    let health_bound = local("gRPC health", &health_listener, health_addr)?;
    let metrics_bound = local("metrics", &metrics_listener, metrics_addr)?;

    let metrics = Arc::new(Metrics::new());
    let mappings = Arc::new(MappingStore::new(metrics.clone()));
    let mut tasks = Tasks::new();
    // Mapping sources and certificate reloads serve the streams still draining: they stop
    // with the background work, after the servers.
    let cancel = tasks.background_token().clone();

    if let Some((path, interval)) = base_model_file {
        let poller = mappings::watch_file(path, interval, mappings.clone(), cancel.clone()).await?;
        tasks.spawn_background(async move {
            let _ = poller.await;
            Ok(())
        });
    }
    if let Some((client, scope)) = config_maps {
        for labelled in k8s::WATCHED_LABELS {
            let (client, namespace) = (client.clone(), scope.clone());
            let store = mappings.clone();
            let cancel = cancel.clone();
            tasks.spawn_background(async move {
                k8s::watch_config_maps(client, namespace, labelled, store, cancel).await;
                Ok(())
            });
        }
    }

    metrics.watch_budget(&config.budget);
    let service = BbrService::new(Arc::new(config), mappings.clone(), metrics.clone());
    let grpc = grpc_builder(max_concurrent_streams).add_service(service.into_server());
    let certificates = match &tls {
        Some(source) => Some(
            Certificates::load_and_watch(source, tls::ALPN, &cancel)
                .map_err(|e| Error::Tls(e.to_string()))?,
        ),
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_serving::<ExternalProcessorServer<BbrService>>()
        .await;
    Servers {
        grpc: Listening {
            service: grpc,
            listener: grpc_listener,
        },
        tls: certificates,
        health: Listening {
            service: Routes::new(health_service),
            listener: health_listener,
        },
        metrics: Listening {
            service: switchyard_runtime::metrics::router(metrics.clone()),
            listener: metrics_listener,
        },
        limits: ServeLimits::default(),
    }
    .spawn(&mut tasks, Error::Serve);

    tracing::info!(
        grpc = %grpc_bound,
        health = %health_bound,
        metrics = %metrics_bound,
        tls = ?tls,
        "switchyard-bbr serving",
    );
    Ok(Running {
        grpc_addr: grpc_bound,
        health_addr: health_bound,
        metrics_addr: metrics_bound,
        metrics,
        mappings,
        health,
        tasks,
        drain: Drain {
            grace: Duration::ZERO,
            timeout: drain_timeout,
        },
    })
}

impl Running {
    /// Keeps the listeners accepting for `grace` after health turned NOT_SERVING on
    /// shutdown, so a client that has not yet seen the health change is still served.
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.drain.grace = grace;
        self
    }

    /// Waits until a server fails (an `Err`) — normally forever.
    pub async fn wait_for_failure(&mut self) -> Result<()> {
        let grpc_addr = self.grpc_addr;
        let panicked = |join| Error::Serve(ServeFailure::panicked(grpc_addr, join));
        self.tasks.wait_for_failure(panicked).await
    }

    /// Drains: health NOT_SERVING, the grace, stop accepting, let in-flight streams finish
    /// (bounded by the drain timeout).
    pub async fn shutdown(self) -> Result<()> {
        let health = self.health;
        self.tasks
            .drain(self.drain, async move {
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                health
                    .set_not_serving::<ExternalProcessorServer<BbrService>>()
                    .await;
            })
            .await;
        Ok(())
    }
}
