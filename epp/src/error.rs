//! The EPP's one error type. Every message names what is wrong and what to
//! change, because the reader is a platform engineer looking at a log line or a
//! failed rollout, not at this code.

/// Everything that can go wrong in the EPP outside the per-request pick (whose
/// only outcome besides success is [`crate::scheduling::NoCapacity`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model server's exposition lacks a metric its engine config requires.
    #[error(
        "the {engine} metrics have no sample matching `{spec}` ({semantic}); check that the pod label \
         `inference.networking.k8s.io/engine-type` names the right engine (vllm, sglang, \
         trtllm-serve, triton-tensorrt-llm) or set `{field}` in the core-metrics-extractor's engineConfigs"
    )]
    MetricMissing {
        /// The engine config in use.
        engine: String,
        /// What the metric means (e.g. "queued requests").
        semantic: &'static str,
        /// The selector that matched nothing.
        spec: String,
        /// The engineConfigs field that holds the selector.
        field: &'static str,
    },

    /// A metric selector (`name{label=value}`) in an engine config is malformed.
    #[error(
        "invalid metric selector `{spec}` in engineConfigs.{field}: {reason}; write it as `name` or `name{{label=value,…}}`"
    )]
    MetricSpec {
        /// The offending selector text.
        spec: String,
        /// The engineConfigs field holding it.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The EndpointPickerConfig is not valid YAML or does not match its schema.
    #[error("invalid EndpointPickerConfig: {0}")]
    ConfigSyntax(String),

    /// The EndpointPickerConfig is well-formed but inconsistent.
    #[error("invalid EndpointPickerConfig: {0}")]
    Config(String),

    /// A plugin's `type` names no plugin Switchyard knows.
    #[error("unknown plugin type `{type_}` (plugin `{name}`); known types: {known}")]
    UnknownPluginType {
        /// The plugin's name in the config.
        name: String,
        /// The unknown type.
        type_: String,
        /// Every plugin type Switchyard implements, comma-separated.
        known: String,
    },

    /// A plugin type upstream defines that Switchyard does not implement yet.
    #[error(
        "plugin type `{type_}` (plugin `{name}`) is an upstream plugin Switchyard does not implement; \
         remove it from the config or use one of: {known}"
    )]
    UnsupportedPluginType {
        /// The plugin's name in the config.
        name: String,
        /// The recognised but unsupported type.
        type_: String,
        /// Every plugin type Switchyard implements, comma-separated.
        known: String,
    },

    /// A plugin's `parameters` do not fit its type.
    #[error("plugin `{name}` ({type_}): invalid parameters: {reason}")]
    PluginParameters {
        /// The plugin's name in the config.
        name: String,
        /// The plugin's type.
        type_: String,
        /// What is wrong.
        reason: String,
    },

    /// A model server's KV-cache event message could not be decoded.
    #[error("KV event: {0}")]
    KvEvent(String),

    /// The proxy broke the ext_proc message order.
    #[error("ext_proc protocol violation: {0}")]
    Protocol(String),

    /// An ext_proc message is not well-formed (it carries no request field).
    #[error("malformed ext_proc message: {0}")]
    MalformedMessage(&'static str),

    /// The `flowControl` section (or its saturation detector) is invalid.
    #[error("invalid EndpointPickerConfig: {field}: {reason}")]
    FlowControlConfig {
        /// The offending field, as a path (`flowControl.priorityBands[0].maxBytes`).
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A listener could not be bound or a server stopped (`switchyard-epp` shell).
    #[error(transparent)]
    Serve(#[from] switchyard_runtime::serve::ServeFailure),

    /// A flag's value is unusable.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag, e.g. `--grpc-port`.
        flag: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// The standalone endpoints file cannot be read or is invalid.
    #[error("endpoints file {path}: {reason}")]
    EndpointsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// The serving certificate cannot be loaded or generated.
    #[error("TLS: {0}")]
    Tls(String),

    /// A pod annotation or label the EPP reads holds a value it cannot use.
    #[error("pod {pod}: {reason}")]
    PodMetadata {
        /// The pod's name.
        pod: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// Scraping one endpoint's metrics failed.
    #[error(
        "scraping {endpoint} at {address} failed ({reason}): {detail}; check that the model server \
         serves Prometheus text on the pool's target port at the configured metrics path"
    )]
    Scrape {
        /// The endpoint's name.
        endpoint: String,
        /// The address scraped.
        address: std::net::SocketAddr,
        /// A short, stable reason (`connect`, `timeout`, `too_large`, …).
        reason: &'static str,
        /// What happened.
        detail: String,
    },
}

/// `Result` with the EPP's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for metrics and structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Scrape { .. } => "scrape",
            Self::MetricMissing { .. } => "metric_missing",
            Self::MetricSpec { .. } => "metric_spec",
            Self::ConfigSyntax(_) => "config_syntax",
            Self::Config(_) => "config",
            Self::UnknownPluginType { .. } => "unknown_plugin_type",
            Self::UnsupportedPluginType { .. } => "unsupported_plugin_type",
            Self::PluginParameters { .. } => "plugin_parameters",
            Self::PodMetadata { .. } => "pod_metadata",
            Self::FlowControlConfig { .. } => "flow_control_config",
            Self::Protocol(_) | Self::MalformedMessage(_) => "protocol",
            Self::Serve(_) => "serve",
            Self::Flag { .. } => "flag",
            Self::EndpointsFile { .. } => "endpoints_file",
            Self::Tls(_) => "tls",
            Self::KvEvent(_) => "kv_event",
        }
    }
}

/// The status an ext_proc stream ends with when it fails: the one place an [`Error`] becomes a
/// gRPC status.
///
/// Always an error status, never a clean end of stream: if the stream closed with OK, Envoy
/// would carry on *without* the EPP and forward the request to whatever destination the client
/// supplied, even with a fail-closed filter. An error status makes Envoy fail the request.
impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::MalformedMessage(_) => tonic::Status::invalid_argument(message),
            // The proxy's processing mode does not match what the EPP serves.
            Error::Protocol(_) => tonic::Status::failed_precondition(message),
            Error::ConfigSyntax(_)
            | Error::Config(_)
            | Error::UnknownPluginType { .. }
            | Error::UnsupportedPluginType { .. }
            | Error::PluginParameters { .. }
            | Error::FlowControlConfig { .. }
            | Error::MetricSpec { .. }
            | Error::Flag { .. }
            | Error::EndpointsFile { .. } => tonic::Status::failed_precondition(message),
            Error::MetricMissing { .. }
            | Error::Scrape { .. }
            | Error::PodMetadata { .. }
            | Error::KvEvent(_) => tonic::Status::unavailable(message),
            Error::Serve(_) | Error::Tls(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests;
