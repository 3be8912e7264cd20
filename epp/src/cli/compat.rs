//! The flags upstream's EPPs take that Switchyard's own spelling does not cover (GIE v1.5's
//! `pkg/epp/server/options.go`, llm-d-router v0.10's, and controller-runtime's zap flags), so
//! an upstream Deployment's `args:` start Switchyard unchanged.
//!
//! Each flag is either mapped onto Switchyard's behaviour (logging, the engine metric names,
//! the scrape path, feature gates, experimental plugins) or accepted and reported by
//! [`UpstreamArgs::warnings`] with one line saying why it has no effect. A flag that would
//! change nothing here (e.g. `--tracing=false`) is accepted silently.

use std::time::Duration;

use clap::ArgAction;

use crate::error::{Error, Result};
use crate::scrape::engine::{EngineConfig, EngineRegistry, MetricSpec};

/// Upstream flags kept for compatibility; see the module docs.
// Every field is an Option so "not given" is told apart from "given with upstream's
// default": only given flags can warrant a warning.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpstreamArgs {
    /// controller-runtime's log encoder: `json` or `console` (→ --log-format json|text).
    #[arg(long, value_parser = ["json", "console"])]
    pub zap_encoder: Option<String>,

    /// controller-runtime's log level: `debug`, `info`, `error`, `panic`, or a verbosity
    /// number as for --v (overrides --v).
    #[arg(long, value_parser = parse_zap_level)]
    pub zap_log_level: Option<&'static str>,

    /// controller-runtime's development mode: console encoder and debug level unless
    /// --zap-encoder / --zap-log-level say otherwise.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub zap_devel: Option<bool>,

    /// Accepted for compatibility (Rust logs carry no Go stack traces).
    #[arg(long)]
    pub zap_stacktrace_level: Option<String>,

    /// Accepted for compatibility (log timestamps are always RFC 3339).
    #[arg(long)]
    pub zap_time_encoding: Option<String>,

    /// Queued-requests metric of the default engine (upstream: engineConfigs).
    #[arg(long)]
    pub total_queued_requests_metric: Option<String>,

    /// Running-requests metric of the default engine.
    #[arg(long)]
    pub total_running_requests_metric: Option<String>,

    /// KV-cache utilisation (0–1) metric of the default engine.
    #[arg(long)]
    pub kv_cache_usage_percentage_metric: Option<String>,

    /// LoRA info metric of the default engine (vLLM label format).
    #[arg(long)]
    pub lora_info_metric: Option<String>,

    /// Cache info metric of the default engine.
    #[arg(long)]
    pub cache_info_metric: Option<String>,

    /// Scheme of the model servers' metrics endpoint; only `http` is supported.
    #[arg(long, value_parser = ["http", "https"])]
    pub model_server_metrics_scheme: Option<String>,

    /// Path of the model servers' metrics endpoint (default /metrics).
    #[arg(long)]
    pub model_server_metrics_path: Option<String>,

    /// Deprecated upstream; accepted (metrics are scraped on each endpoint's own port).
    #[arg(long)]
    pub model_server_metrics_port: Option<u16>,

    /// Accepted for compatibility (metrics are scraped over plain HTTP).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub model_server_metrics_https_insecure_skip_verify: Option<bool>,

    /// Accepted; the EPP's /metrics has no Kubernetes authentication (restrict the port
    /// with a NetworkPolicy).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub metrics_endpoint_auth: Option<bool>,

    /// Let the EndpointPickerConfig use plugins upstream marks Alpha.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub allow_experimental_plugins: Option<bool>,

    /// Feature gates, added to the config's `featureGates` (`name` or `name=false`).
    #[arg(long, value_delimiter = ',')]
    pub feature_gates: Vec<String>,

    /// Upstream's pool-less mode (pods by label selector); not supported: use an
    /// InferencePool (--pool-name) or --endpoints-file.
    #[arg(long)]
    pub endpoint_selector: Option<String>,

    /// The pods' ports in --endpoint-selector mode.
    #[arg(long, value_delimiter = ',')]
    pub endpoint_target_ports: Vec<u16>,

    /// Accepted for compatibility (no OpenTelemetry exporter).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub tracing: Option<bool>,

    /// Accepted for compatibility (gRPC health is always served).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub health_checking: Option<bool>,

    /// Accepted for compatibility (no Go profiler).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub enable_pprof: Option<bool>,

    /// Accepted for compatibility (stream counts are always exported).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub enable_grpc_stream_metrics: Option<bool>,

    /// Accepted for compatibility (every engine is recognised by its pod label).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub enable_multi_engine: Option<bool>,

    /// Pod label naming the engine; only upstream's default is supported.
    #[arg(long)]
    pub engine_label_key: Option<String>,

    /// Accepted; endpoint scores are not sent to the proxy.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub emit_endpoint_scores: Option<bool>,

    /// Accepted; the ext_proc listener always negotiates TLS 1.2 or 1.3.
    #[arg(long)]
    pub tls_min_version: Option<String>,

    /// Accepted; the ext_proc listener uses rustls' safe cipher suites.
    #[arg(long, value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,

    /// Accepted; /metrics is served over plain HTTP.
    #[arg(long)]
    pub metrics_cert_dir: Option<String>,

    /// Accepted; /metrics is served over plain HTTP.
    #[arg(long)]
    pub metrics_client_ca_file: Option<String>,

    /// Accepted; requests are bounded by --max-body-bytes instead.
    #[arg(long)]
    pub grpc_max_recv_msg_size: Option<String>,

    /// Accepted; responses are bounded by --max-response-buffer-bytes instead.
    #[arg(long)]
    pub grpc_max_send_msg_size: Option<String>,

    /// Accepted; fairness-id metric labels are always capped (1000 values plus `other`).
    #[arg(long)]
    pub fairness_id_metric_label_limit: Option<u32>,

    /// Accepted; plugin state follows each request's lifetime.
    #[arg(long, value_parser = super::parse_duration)]
    pub plugin_state_staleness_threshold: Option<Duration>,

    /// Accepted; set the KUBECONFIG environment variable instead.
    #[arg(long)]
    pub kubeconfig: Option<String>,
}

/// Upstream's default engine-type pod label.
const ENGINE_LABEL_KEY: &str = "inference.networking.k8s.io/engine-type";

/// Reads `--zap-log-level`: zap's level names or a positive verbosity.
fn parse_zap_level(text: &str) -> std::result::Result<&'static str, String> {
    match text.trim() {
        "debug" => Ok("debug"),
        "info" => Ok("info"),
        "warn" => Ok("warn"),
        "error" | "dpanic" | "panic" | "fatal" => Ok("error"),
        other => other
            .parse::<u8>()
            .map(switchyard_runtime::log::level_for_verbosity)
            .map_err(|_| {
                format!(
                    "`{other}` is not a zap level; write debug, info, error or a number such as 3"
                )
            }),
    }
}

impl UpstreamArgs {
    /// The log format the zap flags ask for, if they ask.
    pub fn log_format(&self) -> Option<super::LogFormat> {
        match self.zap_encoder.as_deref() {
            Some("json") => Some(super::LogFormat::Json),
            Some(_) => Some(super::LogFormat::Text),
            None if self.zap_devel == Some(true) => Some(super::LogFormat::Text),
            None => None,
        }
    }

    /// The log level the zap flags ask for, if they ask.
    pub fn log_level(&self) -> Option<&'static str> {
        self.zap_log_level
            .or((self.zap_devel == Some(true)).then_some("debug"))
    }

    /// The default engine's config with the metric-name flags applied, when any is given
    /// (upstream GIE v1.5 read them for every pod; the vLLM names are the defaults).
    pub fn engines(&self) -> Result<Option<EngineRegistry>> {
        let flags = [
            &self.total_queued_requests_metric,
            &self.total_running_requests_metric,
            &self.kv_cache_usage_percentage_metric,
            &self.lora_info_metric,
            &self.cache_info_metric,
        ];
        if flags.iter().all(|f| f.is_none()) {
            return Ok(None);
        }
        let spec =
            |value: &Option<String>, current: Option<MetricSpec>, flag: &'static str| match value
                .as_deref()
                .map(str::trim)
            {
                None => Ok(current),
                Some("") => Ok(None),
                Some(text) => MetricSpec::parse(text, flag).map(Some),
            };
        let base = EngineConfig::vllm();
        let engine = EngineConfig {
            queued_requests: spec(
                &self.total_queued_requests_metric,
                base.queued_requests.clone(),
                "--total-queued-requests-metric",
            )?,
            running_requests: spec(
                &self.total_running_requests_metric,
                base.running_requests.clone(),
                "--total-running-requests-metric",
            )?,
            kv_usage: spec(
                &self.kv_cache_usage_percentage_metric,
                base.kv_usage.clone(),
                "--kv-cache-usage-percentage-metric",
            )?,
            lora: spec(
                &self.lora_info_metric,
                base.lora.clone(),
                "--lora-info-metric",
            )?,
            cache_info: spec(
                &self.cache_info_metric,
                base.cache_info.clone(),
                "--cache-info-metric",
            )?,
            ..base
        };
        let name = engine.name.clone();
        EngineRegistry::new(vec![engine], &name).map(Some)
    }

    /// The metrics path from `--model-server-metrics-path`, after checking the scheme.
    pub fn metrics_path(&self) -> Result<Option<String>> {
        if self.model_server_metrics_scheme.as_deref() == Some("https") {
            return Err(Error::Flag {
                flag: "--model-server-metrics-scheme",
                reason: "model servers are scraped over plain HTTP; `https` is not supported \
                         yet — drop the flag or set it to `http`"
                    .into(),
            });
        }
        Ok(self.model_server_metrics_path.clone())
    }

    /// Whether Alpha plugins may be configured.
    pub fn experimental_plugins(&self) -> bool {
        self.allow_experimental_plugins == Some(true)
    }

    /// Fails for `--endpoint-selector` (upstream's pool-less mode), which needs a
    /// replacement Switchyard has.
    pub fn check_pool_source(&self, has_pool_name: bool, has_file: bool) -> Result<()> {
        if self.endpoint_selector.is_some() && !has_pool_name && !has_file {
            return Err(Error::Flag {
                flag: "--endpoint-selector",
                reason: "selecting pods by label without an InferencePool is not supported; \
                         create an InferencePool and pass --pool-name, or list the endpoints \
                         in --endpoints-file"
                    .into(),
            });
        }
        Ok(())
    }

    /// One line per given flag that changes nothing here, saying why.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut warn = |flag: &str, why: &str| {
            out.push(format!("flag --{flag} has no effect in Switchyard: {why}"));
        };
        if self.zap_stacktrace_level.is_some() {
            warn("zap-stacktrace-level", "Rust logs carry no Go stack traces");
        }
        if self.zap_time_encoding.is_some() {
            warn("zap-time-encoding", "log timestamps are always RFC 3339");
        }
        if self.model_server_metrics_port.is_some() {
            warn(
                "model-server-metrics-port",
                "metrics are scraped on each endpoint's own target port",
            );
        }
        if self
            .model_server_metrics_https_insecure_skip_verify
            .is_some()
        {
            warn(
                "model-server-metrics-https-insecure-skip-verify",
                "metrics are scraped over plain HTTP",
            );
        }
        if self.metrics_endpoint_auth == Some(true) {
            warn(
                "metrics-endpoint-auth",
                "/metrics has no Kubernetes token authentication; restrict the metrics port \
                 with a NetworkPolicy",
            );
        }
        if self.endpoint_selector.is_some() || !self.endpoint_target_ports.is_empty() {
            warn(
                "endpoint-selector/--endpoint-target-ports",
                "the pool comes from --pool-name or --endpoints-file",
            );
        }
        if self.tracing == Some(true) {
            warn("tracing", "no OpenTelemetry exporter is built in");
        }
        if self.enable_pprof == Some(true) {
            warn("enable-pprof", "there is no Go profiler to serve");
        }
        if self.emit_endpoint_scores == Some(true) {
            warn(
                "emit-endpoint-scores",
                "endpoint scores are not sent to the proxy",
            );
        }
        if self
            .engine_label_key
            .as_deref()
            .is_some_and(|k| k != ENGINE_LABEL_KEY)
        {
            warn(
                "engine-label-key",
                "engines are recognised by the inference.networking.k8s.io/engine-type label",
            );
        }
        if self.tls_min_version.is_some() || !self.tls_cipher_suites.is_empty() {
            warn(
                "tls-min-version/--tls-cipher-suites",
                "the ext_proc listener always offers TLS 1.2 and 1.3 with rustls' safe suites",
            );
        }
        if self.metrics_cert_dir.is_some() || self.metrics_client_ca_file.is_some() {
            warn(
                "metrics-cert-dir/--metrics-client-ca-file",
                "/metrics is served over plain HTTP",
            );
        }
        if self.grpc_max_recv_msg_size.is_some() || self.grpc_max_send_msg_size.is_some() {
            warn(
                "grpc-max-recv-msg-size/--grpc-max-send-msg-size",
                "bodies are bounded by --max-body-bytes and --max-response-buffer-bytes",
            );
        }
        if self.fairness_id_metric_label_limit.is_some() {
            warn(
                "fairness-id-metric-label-limit",
                "fairness-id labels are always capped at 1000 values plus `other`",
            );
        }
        if self.plugin_state_staleness_threshold.is_some() {
            warn(
                "plugin-state-staleness-threshold",
                "plugin state lives exactly as long as its request",
            );
        }
        if self.kubeconfig.is_some() {
            warn(
                "kubeconfig",
                "set the KUBECONFIG environment variable instead",
            );
        }
        out
    }
}
