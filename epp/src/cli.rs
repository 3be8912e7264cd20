//! Command-line flags of `switchyard-epp`, named and defaulted as upstream's EPP
//! (`pkg/epp/server/options.go@v1.5.0`) where they overlap, and their translation into
//! validated settings. Boolean flags accept Go's `--flag=false` spelling.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use switchyard_runtime::args::{LogArgs, ServeArgs};
pub use switchyard_runtime::log::LogFormat;

mod compat;

pub use compat::UpstreamArgs;

use crate::error::{Error, Result};
use crate::flow::{FlowControlConfig, HeaderTrust};
use crate::scheduling::SchedulerConfig;
use crate::scheduling::config::LoadOptions;
use crate::scrape::ScrapeConfig;
use crate::server::DEFAULT_MAX_BODY_BYTES;
use crate::server::grpc::{
    BufferLimits, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_RESPONSE_BUFFER_BYTES,
};
use crate::server::tls::CertSource;

/// How often `--cert-path` is checked for new files.
const CERT_POLL: Duration = Duration::from_secs(1);

/// switchyard-epp: the Endpoint Picker — an Envoy ext_proc server that picks the model
/// server for each request of one InferencePool.
// The shared groups carry the EPP's names and defaults; only the environment variables the
// EPP has always read are added here.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "switchyard-epp",
    version,
    about,
    mut_arg("bind_address", |a| a.env("EPP_BIND_ADDRESS")),
    mut_arg("log_format", |a| a.env("EPP_LOG_FORMAT")),
)]
pub struct Args {
    /// The InferencePool this EPP serves (Kubernetes mode; names the pool in standalone mode).
    #[arg(long, env = "POOL_NAME")]
    pub pool_name: Option<String>,

    /// The pool's namespace.
    #[arg(long, env = "NAMESPACE", default_value = "default")]
    pub pool_namespace: String,

    /// The pool's API group.
    #[arg(long, default_value = "inference.networking.k8s.io")]
    pub pool_group: String,

    /// Standalone mode: a YAML file of endpoints, objectives and rewrites (format in the
    /// `switchyard_epp::source::standalone` docs), reloaded when it changes. Replaces the
    /// Kubernetes pool watch.
    #[arg(long, env = "EPP_ENDPOINTS_FILE")]
    pub endpoints_file: Option<PathBuf>,

    /// How often the endpoints file is checked for changes.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub endpoints_file_poll_interval: Duration,

    /// The listeners' address and ports.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// EndpointPickerConfig file (upstream's format); upstream's defaults without it.
    #[arg(long)]
    pub config_file: Option<PathBuf>,

    /// EndpointPickerConfig as inline text (instead of --config-file).
    #[arg(long, conflicts_with = "config_file")]
    pub config_text: Option<String>,

    /// Length of the fallback list in x-gateway-destination-endpoint; overrides the picker's
    /// `maxNumOfEndpoints` (default 1).
    #[arg(long)]
    pub max_endpoints: Option<usize>,

    /// How often each endpoint's /metrics is scraped.
    #[arg(long, value_parser = parse_duration, default_value = "50ms")]
    pub refresh_metrics_interval: Duration,

    /// How often the pool gauges are refreshed (accepted for compatibility: ours are
    /// computed when /metrics is read).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub refresh_prometheus_metrics_interval: Duration,

    /// Age after which an endpoint's metrics count as stale in the pool gauges.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub metrics_staleness_threshold: Duration,

    /// Ignore the data plane's subset hint (envoy.lb.subset_hint).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_endpoint_subset_filter: bool,

    /// Serve ext_proc over TLS (ALPN h2): --cert-path, or a self-signed certificate.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub secure_serving: bool,

    /// Directory holding tls.crt and tls.key for --secure-serving.
    #[arg(long)]
    pub cert_path: Option<PathBuf>,

    /// Reload the --cert-path files when they change.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub enable_cert_reload: bool,

    /// Active-passive replicas: only the Lease holder reports ready.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub ha_enable_leader_election: bool,

    /// Largest request body buffered; larger ones are answered 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Budget of request and response body bytes buffered by all streams together; a
    /// request that does not fit is answered 503 (`rejected-buffer-budget`) rather than the
    /// EPP running out of memory. Keep it well under the container's memory limit.
    #[arg(long, default_value_t = DEFAULT_MAX_BUFFERED_BYTES)]
    pub max_buffered_bytes: usize,

    /// Largest non-streamed response body buffered (to restore a rewritten model name and
    /// read token usage); a larger one passes through unmodified.
    #[arg(long, default_value_t = DEFAULT_MAX_RESPONSE_BUFFER_BYTES)]
    pub max_response_buffer_bytes: usize,

    /// Honour the steering headers (objective, fairness id, TTL, x-gateway-model-name-rewrite)
    /// only on requests carrying this header (`name`), or this header with this value
    /// (`name=value`, a secret shared with the gateway), which the gateway must set and
    /// strip from client requests. Either way they, and this marker, are removed before
    /// upstream.
    #[arg(long, value_parser = parse_marker_name)]
    pub flow_control_trusted_header: Option<String>,

    /// Whose steering headers are believed: `auto` (with --flow-control-trusted-header, the
    /// marked requests; otherwise `never` against Kubernetes and `always` standalone),
    /// `always` (every client: only behind a gateway that strips them) or `never`.
    #[arg(long, value_enum, default_value_t = ClientHeaderTrust::Auto)]
    pub trust_client_headers: ClientHeaderTrust,

    /// Make InferenceModelRewrite's weighted choice sticky per session: requests carrying
    /// the same value of this header (e.g. `x-session-id`) get the same target model.
    /// Unset, or on requests without the header, each request draws anew.
    #[arg(long, value_parser = parse_header_name)]
    pub model_rewrite_session_header: Option<String>,

    /// Longest wait for in-flight streams once the EPP stopped accepting after SIGTERM.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,

    /// After SIGTERM, how long the EPP keeps accepting with health already NOT_SERVING, so
    /// gateways and Services notice before the port closes.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain_grace_period: Duration,

    /// Most ext_proc streams (requests in flight) per HTTP/2 connection from Envoy.
    #[arg(long, default_value_t = switchyard_runtime::serve::DEFAULT_MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_concurrent_streams: u32,

    /// Log format and verbosity.
    #[command(flatten)]
    pub log: LogArgs,

    /// Upstream's flags, mapped or accepted with a warning.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

/// `--trust-client-headers`: whose steering headers (priority, fairness, TTL, forced
/// rewrite) the EPP believes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ClientHeaderTrust {
    /// The marked requests with `--flow-control-trusted-header`; otherwise nobody's against
    /// Kubernetes and everybody's in standalone mode (`--endpoints-file`).
    #[default]
    Auto,
    /// Every request's: only behind a gateway that strips client copies.
    Always,
    /// Nobody's: every request is priority 0 in the default flow.
    Never,
}

/// Parses a Go duration (`50ms`, `2s`, `1m30s`) or a bare number of seconds, as the EPP's
/// time flags always have ([`switchyard_runtime::duration::parse_or_seconds`]).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    switchyard_runtime::duration::parse_or_seconds(text.trim()).map_err(|err| err.to_string())
}

impl Args {
    /// Installs the logger: `--log-format`/`--v`, overridden by upstream's zap flags.
    pub fn init_logging(&self) {
        let format = self.upstream.log_format().unwrap_or(self.log.log_format);
        let level = self
            .upstream
            .log_level()
            .unwrap_or_else(|| switchyard_runtime::log::level_for_verbosity(self.log.verbosity));
        switchyard_runtime::log::init(format, level);
    }

    /// One line per given upstream flag that has no effect here, saying why; the binary
    /// logs them as warnings at start-up.
    pub fn ignored_flag_warnings(&self) -> Vec<String> {
        self.upstream.warnings()
    }

    /// `--max-buffered-bytes` and `--max-response-buffer-bytes`.
    pub fn buffer_limits(&self) -> BufferLimits {
        BufferLimits::new(self.max_buffered_bytes, self.max_response_buffer_bytes)
    }

    /// The `EndpointPickerConfig` text from `--config-file` or `--config-text`, if any.
    fn config_yaml(&self) -> Result<Option<String>> {
        match (&self.config_file, &self.config_text) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| Error::Flag {
                    flag: "--config-file",
                    reason: format!("cannot read {}: {e}", path.display()),
                }),
            (None, text) => Ok(text.clone()),
        }
    }

    /// The scheduler configuration: the config file or text, else upstream's defaults, with
    /// `--max-endpoints` applied.
    pub fn scheduler_config(&self) -> Result<SchedulerConfig> {
        let mut config = match self.config_yaml()? {
            Some(text) => SchedulerConfig::from_yaml_with(&text, &self.load_options())?,
            None => SchedulerConfig::default(),
        };
        if let Some(n) = self.max_endpoints {
            if n == 0 {
                return Err(Error::Flag {
                    flag: "--max-endpoints",
                    reason: "must be at least 1".into(),
                });
            }
            config.picker.max_endpoints = n;
        }
        Ok(config)
    }

    /// What the config loader takes from flags: `--allow-experimental-plugins` and
    /// `--feature-gates`.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            allow_experimental: self.upstream.experimental_plugins(),
            feature_gates: self.upstream.feature_gates.clone(),
        }
    }

    /// The `flowControl` section of the same file (off unless its feature gate is on,
    /// in the file or in `--feature-gates`).
    pub fn flow_control_config(&self) -> Result<FlowControlConfig> {
        let mut config = match self.config_yaml()? {
            Some(text) => FlowControlConfig::from_yaml(&text)?,
            None => FlowControlConfig::default(),
        };
        if let Some(on) = self.load_options().gate("flowControl") {
            config.enabled = on;
        }
        Ok(config)
    }

    /// Whose steering headers are believed (`--trust-client-headers`,
    /// `--flow-control-trusted-header`): the safe choice by default — nobody's against
    /// Kubernetes, where clients reach the EPP through a shared gateway.
    pub fn header_trust(&self) -> Result<HeaderTrust> {
        let marker = self.flow_control_trusted_header.clone();
        let conflict = |mode: &str| Error::Flag {
            flag: "--trust-client-headers",
            reason: format!(
                "`{mode}` contradicts --flow-control-trusted-header; drop one of them \
                 (`auto` honours the marked requests)"
            ),
        };
        match (self.trust_client_headers, marker) {
            (ClientHeaderTrust::Auto, Some(marker)) => Ok(match marker.split_once('=') {
                Some((header, value)) => HeaderTrust::WhenMarkedWith {
                    header: header.to_owned(),
                    value: value.to_owned(),
                },
                None => HeaderTrust::WhenMarked(marker),
            }),
            (ClientHeaderTrust::Auto, None) if self.endpoints_file.is_some() => {
                Ok(HeaderTrust::Always)
            }
            (ClientHeaderTrust::Auto, None) => Ok(HeaderTrust::Never),
            (ClientHeaderTrust::Always, None) => Ok(HeaderTrust::Always),
            (ClientHeaderTrust::Never, None) => Ok(HeaderTrust::Never),
            (ClientHeaderTrust::Always, Some(_)) => Err(conflict("always")),
            (ClientHeaderTrust::Never, Some(_)) => Err(conflict("never")),
        }
    }

    /// How model servers' `/metrics` are scraped.
    pub fn scrape_config(&self) -> Result<ScrapeConfig> {
        let mut config = ScrapeConfig {
            interval: self.refresh_metrics_interval,
            ..ScrapeConfig::default()
        };
        if let Some(text) = self.config_yaml()? {
            SchedulerConfig::apply_data_layer(&text, &mut config)?;
        }
        // Flags win over the file, as upstream's flags fed the same settings before
        // the data layer existed.
        if let Some(engines) = self.upstream.engines()? {
            config.engines = std::sync::Arc::new(engines);
        }
        if let Some(path) = self.upstream.metrics_path()? {
            config.path = path;
        }
        config.validate()?;
        Ok(config)
    }

    /// The three listener addresses, checked to be distinct.
    pub fn addresses(&self) -> Result<[SocketAddr; 3]> {
        self.serve.addresses().map_err(|e| match e {
            switchyard_runtime::Error::Flag { flag, reason } => Error::Flag { flag, reason },
            other => Error::Flag {
                flag: "--grpc-port/--grpc-health-port/--metrics-port",
                reason: other.to_string(),
            },
        })
    }

    /// The TLS certificate source, `None` when `--secure-serving=false`.
    pub fn cert_source(&self) -> Option<CertSource> {
        if !self.secure_serving {
            return None;
        }
        Some(match &self.cert_path {
            Some(path) => CertSource::Dir {
                path: path.clone(),
                poll: self.enable_cert_reload.then_some(CERT_POLL),
            },
            None => CertSource::SelfSigned,
        })
    }

    /// The pool's namespace (`--pool-namespace`, env `NAMESPACE`, else `default`).
    pub fn namespace(&self) -> String {
        let ns = self.pool_namespace.trim();
        if ns.is_empty() {
            "default".to_owned()
        } else {
            ns.to_owned()
        }
    }

    /// The pool name: `--pool-name`, else `standalone` with an endpoints file.
    pub fn pool_name(&self) -> Result<String> {
        self.upstream
            .check_pool_source(self.pool_name.is_some(), self.endpoints_file.is_some())?;
        match (&self.pool_name, &self.endpoints_file) {
            (Some(name), _) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
            (_, Some(_)) => Ok("standalone".to_owned()),
            _ => Err(Error::Flag {
                flag: "--pool-name",
                reason: "give the InferencePool to serve (--pool-name) or run standalone \
                         with --endpoints-file"
                    .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;

/// A header name as Envoy passes it to ext_proc: validated and lowercased.
fn parse_header_name(value: &str) -> std::result::Result<String, String> {
    http::HeaderName::from_bytes(value.as_bytes())
        .map(|name| name.as_str().to_owned())
        .map_err(|_| {
            format!("`{value}` is not an HTTP header name; write a token such as `x-session-id`")
        })
}

/// A trust marker, `name` or `name=value`: a header name (lowercased, as Envoy passes names
/// to ext_proc) that is not a pseudo-header nor one of the steering headers it vouches for,
/// and a non-empty value when one is given.
fn parse_marker_name(value: &str) -> std::result::Result<String, String> {
    let (name, required) = match value.trim().split_once('=') {
        Some((name, required)) => (name, Some(required.trim())),
        None => (value.trim(), None),
    };
    let name = parse_header_name(name)?;
    if crate::trust::STRIPPED_HEADERS.contains(&name.as_str()) {
        return Err(format!(
            "`{name}` is a steering header, not a marker; name a header only the gateway \
             sets, such as `x-switchyard-trusted-caller`"
        ));
    }
    match required {
        Some("") => Err(format!(
            "`{value}` gives no value after `=`; write `{name}` or `{name}=<secret>`"
        )),
        Some(required) => Ok(format!("{name}={required}")),
        None => Ok(name),
    }
}
