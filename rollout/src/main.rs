//! `switchyard-rollout`: `serve` runs the controller and the admin API until
//! SIGTERM; the other subcommands call the admin API.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use switchyard_rollout::admin::{self, AdminState, Authenticator, Store, TokenFile, transport};
use switchyard_rollout::cli::{Cli, Command, LogFormat, ServeArgs, client};
use switchyard_rollout::controller;
use switchyard_rollout::lease::{LeaderElector, default_identity};
use switchyard_rollout::local;
use switchyard_rollout::metrics::Metrics;
use switchyard_rollout::prometheus::AllowedAddresses;
use switchyard_runtime::shutdown::terminated;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("switchyard-rollout: {err:#}");
                ExitCode::FAILURE
            }
        },
        command => match client::run(&command).await {
            Ok(outcome) => {
                let text = serde_json::to_string_pretty(&outcome.body).unwrap_or_default();
                if (200..300).contains(&outcome.status) {
                    println!("{text}");
                    ExitCode::SUCCESS
                } else {
                    let message = outcome.body["error"]["message"]
                        .as_str()
                        .map_or(text.clone(), str::to_owned);
                    eprintln!("switchyard-rollout: HTTP {}: {message}", outcome.status);
                    ExitCode::FAILURE
                }
            }
            Err(err) => {
                eprintln!("switchyard-rollout: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(format: LogFormat) {
    switchyard_runtime::log::init(format, "info");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.local {
        return serve_local(dir, &args).await;
    }
    // Validate everything that needs no cluster before connecting to one.
    check_admin_address(&args)?;
    let auth = match &args.admin_token_file {
        Some(path) => read_token_file(path)?,
        None => Authenticator::Kubernetes {
            audiences: audiences(&args.admin_token_audience),
        },
    };
    let admin_tls = transport::certificates(&args)?;
    let prometheus_allowed =
        AllowedAddresses::parse(&args.prometheus_allowed_addresses).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(args.admin_address)
        .await
        .with_context(|| format!("binding the admin API to {}", args.admin_address))?;
    init_logging(args.log_format);
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    switchyard_rollout::webhook::start(&args.webhook, client.clone(), shutdown.clone())
        .await
        .context("starting the validating webhook")?;
    let state = AdminState {
        store: Store::Kubernetes(client.clone()),
        auth: watched(auth, args.admin_token_file.as_deref(), &shutdown),
        metrics: metrics.clone(),
        clock: Arc::new(k8s_openapi::jiff::Timestamp::now),
    };
    let admin = transport::spawn(
        listener,
        admin_tls,
        admin::router(state),
        args.admin_address,
        shutdown.clone(),
    );
    let elector = (!args.leader_election_disabled).then(|| {
        let identity = args
            .leader_election_identity
            .clone()
            .unwrap_or_else(default_identity);
        tracing::info!(%identity, lease = %args.leader_election_lease, "leader election on");
        LeaderElector::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_lease,
            &identity,
            std::time::Duration::from_secs(args.leader_election_lease_seconds),
        )
    });
    let leading = lead(
        elector,
        client,
        metrics,
        prometheus_allowed,
        shutdown.clone(),
    );
    let mut leading = std::pin::pin!(leading);
    let result = tokio::select! {
        result = &mut leading => result,
        () = terminated("the controller") => {
            tracing::info!("shutting down");
            shutdown.cancel();
            leading.await
        }
    };
    shutdown.cancel();
    admin
        .await
        .context("admin API task")?
        .context("admin API")?;
    result
}

/// Local mode: the manifest directory's rollouts, no Kubernetes; the admin API
/// runs when a token file authenticates its callers.
async fn serve_local(dir: &std::path::Path, args: &ServeArgs) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("--local {} is not a directory", dir.display());
    }
    check_admin_address(args)?;
    let auth = args
        .admin_token_file
        .as_deref()
        .map(read_token_file)
        .transpose()?;
    let listener = match &auth {
        Some(_) => Some(
            tokio::net::TcpListener::bind(args.admin_address)
                .await
                .with_context(|| format!("binding the admin API to {}", args.admin_address))?,
        ),
        None => None,
    };
    init_logging(args.log_format);
    let plan = switchyard_local::plan::PlanOptions {
        listener_port: args.local_port,
        admin_port: args.local_admin_port,
        first_port: args.local_first_port,
        ..Default::default()
    };
    let options = local::serve::LocalOptions {
        manifest_dir: dir.to_path_buf(),
        state_dir: args.local_state_dir.clone(),
        interval: std::time::Duration::from_millis(args.local_interval_ms),
        plan,
        envoy_dir: args.local_envoy_dir.clone(),
        status_lock: Arc::default(),
    };
    let shutdown = CancellationToken::new();
    let admin_tls = transport::certificates(args)?;
    let admin = match (auth, listener) {
        (Some(auth), Some(listener)) => {
            let store = local::store::LocalStore::new(
                options.manifest_dir.clone(),
                options.state_dir.clone(),
                Arc::clone(&options.status_lock),
            );
            let state = AdminState {
                store: Store::Local(Arc::new(store)),
                auth: watched(auth, args.admin_token_file.as_deref(), &shutdown),
                metrics: Metrics::new(),
                clock: Arc::new(k8s_openapi::jiff::Timestamp::now),
            };
            Some(transport::spawn(
                listener,
                admin_tls,
                admin::router(state),
                args.admin_address,
                shutdown.clone(),
            ))
        }
        _ => {
            tracing::info!("no admin API: pass --admin-token-file to serve it in local mode");
            None
        }
    };
    let run = local::serve::run(options, shutdown.clone());
    let mut run = std::pin::pin!(run);
    tokio::select! {
        () = &mut run => {}
        () = terminated("the controller") => {
            tracing::info!("shutting down");
            shutdown.cancel();
            run.await;
        }
    }
    shutdown.cancel();
    if let Some(admin) = admin {
        admin
            .await
            .context("admin API task")?
            .context("admin API")?;
    }
    Ok(())
}

fn check_admin_address(args: &ServeArgs) -> anyhow::Result<()> {
    Ok(transport::check_address(args)?)
}

/// `--admin-token-audience` as TokenReview audiences (none when empty).
fn audiences(flag: &str) -> Vec<String> {
    let flag = flag.trim();
    if flag.is_empty() {
        Vec::new()
    } else {
        vec![flag.to_owned()]
    }
}

/// How often the admin token file is re-read, so a revoked token stops working
/// without a restart.
const TOKEN_FILE_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// The authenticator, with its token file (if any) re-read until shutdown.
fn watched(
    auth: Authenticator,
    token_file: Option<&std::path::Path>,
    shutdown: &CancellationToken,
) -> Arc<Authenticator> {
    let auth = Arc::new(auth);
    if let Some(path) = token_file {
        tokio::spawn(admin::watch_token_file(
            Arc::clone(&auth),
            path.to_path_buf(),
            TOKEN_FILE_POLL,
            shutdown.clone(),
        ));
    }
    auth
}

fn read_token_file(path: &std::path::Path) -> anyhow::Result<Authenticator> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --admin-token-file {}", path.display()))?;
    let file = TokenFile::parse(&text)
        .map_err(|err| anyhow::anyhow!("--admin-token-file {}: {err}", path.display()))?;
    Ok(Authenticator::TokenFile(file))
}

/// Runs the controller while this replica leads (always, without an elector).
/// Returns an error when leadership is lost, so the process exits and restarts
/// as a follower.
async fn lead(
    elector: Option<LeaderElector>,
    client: kube::Client,
    metrics: Metrics,
    prometheus_allowed: AllowedAddresses,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let run = controller::run(
        client,
        metrics,
        prometheus_allowed,
        shutdown.clone().cancelled_owned(),
    );
    let Some(elector) = elector else {
        run.await;
        return Ok(());
    };
    let candidate = tokio::select! {
        candidate = elector.acquire() => candidate,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!("leading: controller started");
    tokio::select! {
        () = run => Ok(()),
        lost = elector.hold(candidate) => Err(lost.into()),
    }
}
