//! Command line of `switchyard-rollout`: `serve` runs the controller and the
//! admin API; the other subcommands call a running admin API.

pub mod client;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};
pub use switchyard_runtime::log::LogFormat;

/// switchyard-rollout: metric-gated canary weights on HTTPRoutes for
/// InferencePools (InferenceRollout, rollout.switchyard.dev/v1alpha1).
#[derive(Debug, Parser)]
#[command(name = "switchyard-rollout", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller and the admin API (in a cluster or with a kubeconfig).
    Serve(ServeArgs),
    /// List every InferenceRollout.
    List(ClientArgs),
    /// Show one rollout: phase, step, weights, conditions, verdicts.
    Get(TargetArgs),
    /// Stop progress; weights stay where they are.
    Pause(ReasonArgs),
    /// Carry on after a pause (a manual gate moves to the next step).
    Resume(TargetArgs),
    /// Skip the current step's analysis (or go straight to 100 % with --full).
    Promote(PromoteArgs),
    /// Send all traffic back to stable and stop.
    Abort(ReasonArgs),
    /// Start again at step 0 after an abort or a rollback.
    Retry(TargetArgs),
    /// Set the canary weight by hand (pauses progress).
    SetWeight(WeightArgs),
}

/// Flags of `serve`.
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Address of the admin API, `/healthz` and `/metrics`.
    #[arg(long, env = "ROLLOUT_ADMIN_ADDRESS", default_value = "127.0.0.1:9443")]
    pub admin_address: SocketAddr,

    /// Allow the admin API on a non-loopback address; it must then serve TLS
    /// (--admin-tls-cert-dir or --admin-tls-self-signed), since callers send
    /// apiserver bearer tokens.
    #[arg(long, env = "ROLLOUT_ADMIN_ALLOW_REMOTE")]
    pub admin_allow_remote: bool,

    /// Serve the admin API over HTTPS with `tls.crt` and `tls.key` from this
    /// directory (a mounted TLS Secret; re-read when it rotates).
    #[arg(
        long,
        env = "ROLLOUT_ADMIN_TLS_CERT_DIR",
        conflicts_with = "admin_tls_self_signed"
    )]
    pub admin_tls_cert_dir: Option<PathBuf>,

    /// Serve the admin API over HTTPS with a certificate generated at start for
    /// `localhost`: encrypted, but clients cannot verify it (the CLI needs
    /// --insecure-skip-tls-verify). Use --admin-tls-cert-dir for a verifiable one.
    #[arg(long, env = "ROLLOUT_ADMIN_TLS_SELF_SIGNED")]
    pub admin_tls_self_signed: bool,

    /// The audience admin bearer tokens must be bound to (TokenReview
    /// `audiences`): mint them with `kubectl create token <sa> --audience
    /// switchyard-rollout`. Empty: the apiserver's own audience, so any token
    /// it accepts, including ones meant for the apiserver itself.
    #[arg(
        long,
        env = "ROLLOUT_ADMIN_TOKEN_AUDIENCE",
        default_value = "switchyard-rollout"
    )]
    pub admin_token_audience: String,

    /// Authenticate admin callers with this token file (`<token> <user>` per
    /// line) instead of TokenReview and SubjectAccessReview.
    #[arg(long, env = "ROLLOUT_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Run the controller without leader election (only with a single replica).
    #[arg(long, env = "ROLLOUT_LEADER_ELECTION_DISABLED")]
    pub leader_election_disabled: bool,

    /// Namespace of the leader Lease (the pod's own, through the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,

    /// Name of the leader Lease.
    #[arg(long, default_value = "switchyard-rollout")]
    pub leader_election_lease: String,

    /// How long a leader's Lease lasts without renewal, in seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=600))]
    pub leader_election_lease_seconds: u64,

    /// This replica's identity in the Lease (the pod name, through the downward API).
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,

    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Local mode: read InferenceRollouts and HTTPRoutes from this manifest
    /// directory (e.g. conformance/examples/quickstart) and rewrite the route
    /// files' weights instead of talking to Kubernetes.
    #[arg(long, env = "ROLLOUT_LOCAL_DIR")]
    pub local: Option<PathBuf>,

    /// Local mode: where each rollout's status file is kept.
    #[arg(long, default_value = "target/rollout-state", requires = "local")]
    pub local_state_dir: PathBuf,

    /// Local mode: the running Envoy's configuration directory
    /// (`target/up/envoy` under `cargo xtask up`); its routes are replaced
    /// after each weight write. Unset: only the route files change.
    #[arg(long, requires = "local")]
    pub local_envoy_dir: Option<PathBuf>,

    /// Local mode: the stack's gateway port (as given to `cargo xtask up --port`).
    #[arg(long, default_value_t = 8080, requires = "local")]
    pub local_port: u16,

    /// Local mode: the stack's Envoy admin port (`cargo xtask up --admin-port`).
    #[arg(long, default_value_t = 19000, requires = "local")]
    pub local_admin_port: u16,

    /// Local mode: the stack's first process port (`cargo xtask up --first-port`).
    #[arg(long, default_value_t = 8100, requires = "local")]
    pub local_first_port: u16,

    /// Local mode: milliseconds between passes over the rollouts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=600_000), requires = "local")]
    pub local_interval_ms: u64,

    /// The Prometheus servers InferenceRollouts may query, comma-separated
    /// (`http://host[:port][/path-prefix]`): a rollout naming any other address
    /// gets NoData and a status message naming this flag, and no request is
    /// sent. Empty: no Prometheus source is allowed (the EPP source still works).
    /// Not used in local mode, whose manifests are one's own.
    #[arg(
        long,
        env = "ROLLOUT_PROMETHEUS_ALLOWED_ADDRESSES",
        value_delimiter = ','
    )]
    pub prometheus_allowed_addresses: Vec<String>,

    /// The validating admission webhook.
    #[command(flatten)]
    pub webhook: Box<crate::webhook::WebhookArgs>,
}

/// How the client subcommands reach the admin API.
#[derive(Debug, Clone, ClapArgs)]
pub struct ClientArgs {
    /// Base URL of the admin API.
    #[arg(long, env = "ROLLOUT_SERVER", default_value = "http://127.0.0.1:9443")]
    pub server: String,

    /// Bearer token (a service-account token in a cluster, or one from the token file).
    #[arg(long, env = "ROLLOUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// PEM file of the CA that signed the admin API's certificate (https://
    /// servers); the system's roots are not used.
    #[arg(long, env = "ROLLOUT_CERTIFICATE_AUTHORITY")]
    pub certificate_authority: Option<PathBuf>,

    /// Do not verify the admin API's certificate (the self-signed one, through
    /// `kubectl port-forward`): the traffic is still encrypted, but whoever sits
    /// between you and the server could pose as it and read your token.
    #[arg(long, conflicts_with = "certificate_authority")]
    pub insecure_skip_tls_verify: bool,
}

/// A rollout as `namespace/name` (or `name` in `default`).
#[derive(Debug, Clone, ClapArgs)]
pub struct TargetArgs {
    /// The rollout: `namespace/name`, or `name` for the `default` namespace.
    pub rollout: String,

    /// Makes a repeated command a no-op (sent as `Idempotency-Key`).
    #[arg(long)]
    pub idempotency_key: Option<String>,

    /// Only act if the rollout's resourceVersion is still this (`If-Match`).
    #[arg(long)]
    pub if_match: Option<String>,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// A target plus a reason.
#[derive(Debug, ClapArgs)]
pub struct ReasonArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Why (recorded on the rollout and in its events).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `promote` flags.
#[derive(Debug, ClapArgs)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Go straight to 100 % canary (still subject to the safety clamps).
    #[arg(long)]
    pub full: bool,
}

/// `set-weight` flags.
#[derive(Debug, ClapArgs)]
pub struct WeightArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The canary's weight in basis points (10000 = 100 %), or percent with --percent.
    #[arg(long)]
    pub canary: f64,

    /// Read --canary as a percentage.
    #[arg(long)]
    pub percent: bool,
}

/// Splits `namespace/name` (or `name` → `default`).
pub fn split_target(text: &str) -> Result<(String, String), String> {
    let (namespace, name) = match text.split_once('/') {
        Some((namespace, name)) => (namespace, name),
        None => ("default", text),
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !valid(namespace) || !valid(name) {
        return Err(format!(
            "{text:?} is not namespace/name (lowercase letters, digits, '-', '.')"
        ));
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, split_target};

    #[test]
    fn targets_split_into_namespace_and_name() {
        assert_eq!(
            split_target("llm/qwen").unwrap(),
            ("llm".into(), "qwen".into())
        );
        assert_eq!(
            split_target("qwen").unwrap(),
            ("default".into(), "qwen".into())
        );
        for bad in ["", "/x", "x/", "Llm/qwen", "a/b/c", "a b"] {
            assert!(split_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serve_defaults_to_a_loopback_admin_address() {
        let cli = Cli::try_parse_from(["switchyard-rollout", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.admin_address.ip().is_loopback());
        assert!(!args.admin_allow_remote);
    }

    #[test]
    fn set_weight_needs_a_canary_weight() {
        let err =
            Cli::try_parse_from(["switchyard-rollout", "set-weight", "llm/qwen"]).unwrap_err();
        assert!(err.to_string().contains("--canary"), "{err}");
        let cli = Cli::try_parse_from([
            "switchyard-rollout",
            "set-weight",
            "llm/qwen",
            "--canary",
            "2.5",
            "--percent",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::SetWeight(ref w) if w.percent && w.canary == 2.5));
    }
}
