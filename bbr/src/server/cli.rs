//! Command-line flags (with environment fallbacks), named after upstream BBR's where they
//! overlap, and their translation into a validated [`RouterConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use switchyard_api::protocol::{BASE_MODEL_NAME_HEADER, INFERENCE_MODEL_HEADER};
use switchyard_runtime::args::{LogArgs, ServeArgs};
pub use switchyard_runtime::log::LogFormat;

use switchyard_runtime::budget::ByteBudget;
use switchyard_runtime::serve::DEFAULT_MAX_CONCURRENT_STREAMS;

use crate::config::{BodyMode, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BUFFERED_BYTES, RouterConfig};
use crate::error::{Error, Result};
use crate::extract::{DEFAULT_MAX_DEPTH, Extractor};
use crate::server::k8s::Scope;
use crate::server::tls::CertSource;

/// Envoy request body mode assumed when Envoy does not announce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BodyModeArg {
    /// `BUFFERED`.
    Buffered,
    /// `FULL_DUPLEX_STREAMED`.
    FullDuplexStreamed,
}

/// switchyard-bbr: Envoy ext_proc Body-Based Router — sets the routing header from the JSON
/// body's `model`.
// The shared groups carry the EPP's defaults; BBR's own ports and `BBR_*` environment
// variables are set on them here, so every flag keeps upstream BBR's spelling.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "switchyard-bbr",
    version,
    about,
    mut_arg("bind_address", |a| a.env("BBR_BIND_ADDRESS")),
    mut_arg("grpc_port", |a| a.env("BBR_GRPC_PORT").default_value("9004")),
    mut_arg("grpc_health_port", |a| a.env("BBR_GRPC_HEALTH_PORT").default_value("9005")),
    mut_arg("metrics_port", |a| a.env("BBR_METRICS_PORT")),
    mut_arg("log_format", |a| a.env("BBR_LOG_FORMAT")),
    mut_arg("verbosity", |a| a.env("BBR_VERBOSITY")),
)]
pub struct Args {
    /// The listeners' address and ports.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log format and verbosity.
    #[command(flatten)]
    pub log: LogArgs,

    /// Header set to the body's model.
    #[arg(long, env = "BBR_MODEL_HEADER", default_value = INFERENCE_MODEL_HEADER)]
    pub model_header: String,

    /// Also set upstream BBR's `X-Gateway-Model-Name`, for routes written for upstream.
    #[arg(long, env = "BBR_SET_MODEL_NAME_HEADER")]
    pub set_model_name_header: bool,

    /// Header set to the base model of a LoRA adapter (from the base-model mappings).
    #[arg(long, env = "BBR_BASE_MODEL_HEADER", default_value = BASE_MODEL_NAME_HEADER)]
    pub base_model_header: String,

    /// Forward JSON bodies without `model` (with no routing header) instead of answering 400.
    #[arg(long, env = "BBR_ALLOW_MISSING_MODEL")]
    pub allow_missing_model: bool,

    /// Largest request body accepted; larger bodies are answered 413.
    #[arg(long, env = "BBR_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most request-body bytes buffered across all requests in flight; a request that would
    /// overdraw it is answered 503 (retry later) instead of the process running out of memory.
    /// Keep it well under the container's memory limit.
    #[arg(long, env = "BBR_MAX_BUFFERED_BYTES", default_value_t = DEFAULT_MAX_BUFFERED_BYTES)]
    pub max_buffered_bytes: usize,

    /// Most ext_proc streams (requests in flight) per HTTP/2 connection from Envoy.
    #[arg(long, env = "BBR_GRPC_MAX_CONCURRENT_STREAMS",
          default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS)]
    pub grpc_max_concurrent_streams: u32,

    /// Deepest JSON nesting accepted (objects and arrays, the top-level object included).
    #[arg(long, env = "BBR_MAX_JSON_DEPTH", default_value_t = DEFAULT_MAX_DEPTH)]
    pub max_json_depth: usize,

    /// Request body mode assumed when Envoy does not announce one (Envoy < 1.33).
    #[arg(long, env = "BBR_DEFAULT_BODY_MODE", value_enum, default_value_t = BodyModeArg::Buffered)]
    pub default_body_mode: BodyModeArg,

    /// YAML file of base-model mappings (`- baseModel: … adapters: […]`), reloaded on change.
    #[arg(long, env = "BBR_BASE_MODEL_FILE")]
    pub base_model_file: Option<PathBuf>,

    /// How often the mapping file is checked for changes, in seconds.
    #[arg(long, env = "BBR_BASE_MODEL_FILE_POLL_SECONDS", default_value_t = 5)]
    pub base_model_file_poll_seconds: u64,

    /// Watch ConfigMaps labelled inference.networking.k8s.io/bbr-managed=true (GIE) or
    /// inference.llm-d.ai/ipp-managed=true (llm-d) for mappings.
    #[arg(long, env = "BBR_WATCH_CONFIGMAPS")]
    pub watch_configmaps: bool,

    /// BBR's home namespace for ConfigMap mappings; empty: the namespace BBR runs in (the
    /// pod's, from its service account, as the Kubernetes client reports it).
    #[arg(long, env = "NAMESPACE", default_value = "")]
    pub configmap_namespace: String,

    /// Also read mapping ConfigMaps from every other namespace (needs a ClusterRole). Their
    /// mappings only add names: they never override the file's or the home namespace's, and
    /// a conflicting claim is logged and counted in bbr_base_model_mapping_conflicts.
    #[arg(long, env = "BBR_WATCH_ALL_NAMESPACES")]
    pub watch_all_namespaces: bool,

    /// Serve ext_proc over TLS (ALPN h2), as upstream does by default: the certificate from
    /// --cert-path, or a self-signed one generated at start. `--secure-serving=false` serves
    /// plaintext HTTP/2.
    #[arg(long, env = "BBR_SECURE_SERVING", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub secure_serving: bool,

    /// Directory holding tls.crt and tls.key (a mounted TLS Secret) for --secure-serving;
    /// reloaded when they change. Empty: a self-signed certificate.
    #[arg(long, env = "BBR_CERT_PATH", default_value = "")]
    pub cert_path: String,

    /// How often the files in --cert-path are checked for changes, in seconds.
    #[arg(long, env = "BBR_CERT_POLL_SECONDS", default_value_t = 10)]
    pub cert_poll_seconds: u64,

    /// After SIGTERM, how long BBR keeps accepting new streams with health already
    /// NOT_SERVING, so gateways and Services notice before the port closes; in seconds.
    #[arg(long, env = "BBR_DRAIN_GRACE_PERIOD_SECONDS", default_value_t = 10)]
    pub drain_grace_period_seconds: u64,

    /// Longest wait for in-flight streams once BBR stopped accepting, in seconds.
    #[arg(long, env = "BBR_DRAIN_TIMEOUT_SECONDS", default_value_t = 30)]
    pub drain_timeout_seconds: u64,
}

impl Args {
    /// The per-stream configuration, validated.
    pub fn router_config(&self) -> Result<RouterConfig> {
        let extractor =
            Extractor::with_max_depth(self.max_json_depth).map_err(|e| Error::Config {
                flag: "--max-json-depth",
                reason: e.to_string(),
            })?;
        RouterConfig {
            model_header: self.model_header.clone(),
            set_upstream_model_header: self.set_model_name_header,
            base_model_header: self.base_model_header.clone(),
            allow_missing_model: self.allow_missing_model,
            max_body_bytes: self.max_body_bytes,
            extractor,
            default_body_mode: match self.default_body_mode {
                BodyModeArg::Buffered => BodyMode::Buffered,
                BodyModeArg::FullDuplexStreamed => BodyMode::FullDuplexStreamed,
            },
            budget: ByteBudget::new(self.max_buffered_bytes),
        }
        .validate()
    }

    /// The three listener addresses, checked to be distinct.
    pub fn addresses(&self) -> Result<[SocketAddr; 3]> {
        self.serve.addresses().map_err(|e| match e {
            switchyard_runtime::Error::Flag { flag, reason } => Error::Config { flag, reason },
            other => Error::Config {
                flag: "--grpc-port/--grpc-health-port/--metrics-port",
                reason: other.to_string(),
            },
        })
    }

    /// The mapping file's poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.base_model_file_poll_seconds.max(1))
    }

    /// The TLS certificate source, `None` with `--secure-serving=false`.
    pub fn cert_source(&self) -> Result<Option<CertSource>> {
        let dir = self.cert_path.trim();
        match (self.secure_serving, dir.is_empty()) {
            (false, true) => Ok(None),
            (false, false) => Err(Error::Config {
                flag: "--cert-path",
                reason: "is set but --secure-serving=false; drop one of them".into(),
            }),
            (true, true) => Ok(Some(CertSource::SelfSigned)),
            (true, false) => Ok(Some(CertSource::Dir {
                path: dir.into(),
                poll: Some(Duration::from_secs(self.cert_poll_seconds.max(1))),
            })),
        }
    }

    /// `--grpc-max-concurrent-streams`, validated.
    pub fn max_concurrent_streams(&self) -> Result<u32> {
        if self.grpc_max_concurrent_streams == 0 {
            return Err(Error::Config {
                flag: "--grpc-max-concurrent-streams",
                reason: format!(
                    "must be at least 1 (the default is {DEFAULT_MAX_CONCURRENT_STREAMS})"
                ),
            });
        }
        Ok(self.grpc_max_concurrent_streams)
    }

    /// The namespaces of ConfigMap mappings: `--configmap-namespace`, or else
    /// `running_in` (the client's namespace, the pod's own in a cluster), plus every other
    /// namespace with `--watch-all-namespaces`.
    pub fn config_map_scope(&self, running_in: &str) -> Scope {
        let home = match self.configmap_namespace.trim() {
            "" => running_in,
            set => set,
        };
        Scope {
            home: home.to_owned(),
            all_namespaces: self.watch_all_namespaces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("switchyard-bbr").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_match_upstream_ports() {
        let args = parse(&[]);
        let [grpc, health, metrics] = args.addresses().unwrap();
        assert_eq!(
            (grpc.port(), health.port(), metrics.port()),
            (9004, 9005, 9090)
        );
        let config = args.router_config().unwrap();
        assert_eq!(config.model_header, "x-gateway-inference-model");
        assert_eq!(config.max_body_bytes, 32 * 1024 * 1024);
        assert_eq!(config.extractor.max_depth(), 128);
        assert!(!config.allow_missing_model);
        assert_eq!(args.log.log_format, LogFormat::Json);
    }

    #[test]
    fn flags_reach_the_config() {
        let args = parse(&[
            "--model-header",
            "x-model",
            "--set-model-name-header",
            "--allow-missing-model",
            "--max-body-bytes",
            "1000",
            "--max-json-depth",
            "16",
            "--default-body-mode",
            "full-duplex-streamed",
            "--log-format",
            "text",
            "-v",
            "3",
        ]);
        let config = args.router_config().unwrap();
        assert_eq!(config.model_header, "x-model");
        assert!(config.set_upstream_model_header && config.allow_missing_model);
        assert_eq!(config.max_body_bytes, 1000);
        assert_eq!(config.extractor.max_depth(), 16);
        assert_eq!(config.default_body_mode, BodyMode::FullDuplexStreamed);
        assert_eq!(args.log.log_format, LogFormat::Text);
        assert_eq!(args.log.verbosity, 3);
    }

    #[test]
    fn secure_serving_follows_upstream() {
        // TLS by default with a self-signed certificate, as upstream BBR.
        assert_eq!(
            parse(&[]).cert_source().unwrap(),
            Some(CertSource::SelfSigned)
        );
        assert_eq!(
            parse(&["--secure-serving=false"]).cert_source().unwrap(),
            None
        );
        assert_eq!(
            parse(&["--secure-serving", "--cert-path", "/etc/bbr/tls"])
                .cert_source()
                .unwrap(),
            Some(CertSource::Dir {
                path: "/etc/bbr/tls".into(),
                poll: Some(Duration::from_secs(10)),
            })
        );
        let err = parse(&["--secure-serving=false", "--cert-path", "/etc/bbr/tls"])
            .cert_source()
            .unwrap_err();
        assert!(err.to_string().contains("--cert-path"), "{err}");
    }

    /// H8: the ConfigMap namespace used to default to every namespace; it is now the
    /// namespace BBR runs in, and every namespace only on request.
    #[test]
    fn h8_config_maps_are_read_in_the_pods_namespace_by_default() {
        // (NAMESPACE in the environment would set the flag; the test does not rely on it.)
        let args = Args::try_parse_from(["switchyard-bbr", "--configmap-namespace="]).unwrap();
        assert_eq!(args.config_map_scope("serving"), Scope::home("serving"));
        let args = parse(&["--configmap-namespace", "models"]);
        assert_eq!(args.config_map_scope("serving"), Scope::home("models"));
        let args = parse(&["--configmap-namespace", "models", "--watch-all-namespaces"]);
        assert_eq!(
            args.config_map_scope("serving"),
            Scope {
                home: "models".into(),
                all_namespaces: true,
            }
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["--max-json-depth", "0"])
            .router_config()
            .unwrap_err();
        assert!(err.to_string().contains("--max-json-depth"), "{err}");
        let err = parse(&["--metrics-port", "9004"]).addresses().unwrap_err();
        assert!(err.to_string().contains("9004"), "{err}");
        let err = parse(&["--model-header", "Bad Header"])
            .router_config()
            .unwrap_err();
        assert!(err.to_string().contains("--model-header"), "{err}");
    }
}
