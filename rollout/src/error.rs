//! The crate's single error type.

/// Everything that can go wrong in the rollout controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTPRoute does not hold what the rollout targets.
    #[error("HTTPRoute {route:?}: {message}")]
    Route {
        /// The route's name.
        route: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The InferenceModelRewrite does not hold what a ModelSplit rollout targets.
    #[error("InferenceModelRewrite {rewrite:?}: {message}")]
    Rewrite {
        /// The rewrite's name.
        rewrite: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The rollout's spec cannot be followed.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// Building a JSON document failed.
    #[error("cannot encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A Prometheus query failed.
    #[error("Prometheus query {query:?} at {address}: {message}")]
    Prometheus {
        /// The server's base URL.
        address: String,
        /// The PromQL sent.
        query: String,
        /// What went wrong, said so that it can be fixed.
        message: String,
    },

    /// A rollout's Prometheus address is not in `--prometheus-allowed-addresses`.
    #[error("{0}")]
    PrometheusNotAllowed(String),

    /// Scraping an EPP's metrics failed.
    #[error("EPP metrics at {url}: {message}")]
    Epp {
        /// The metrics URL.
        url: String,
        /// What went wrong, said so that it can be fixed.
        message: String,
    },

    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {action}")]
    Kube {
        /// What was being done, e.g. `patch HTTPRoute llm/route`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A file of the local mode (manifest, route, status) cannot be used.
    #[error("{path}: {message}")]
    LocalFile {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// This replica no longer holds the leader Lease.
    #[error("lost leadership: {0}")]
    LostLeadership(String),

    /// The webhook's TLS listener or certificate cannot be used.
    #[error("webhook TLS: {0}")]
    Tls(String),

    /// The admin API's flags do not fit together, or its certificate cannot be used.
    #[error("admin API: {0}")]
    Admin(String),

    /// Another controller changed the weights between our read and write.
    #[error("HTTPRoute {route:?} changed under us (the JSON Patch test failed)")]
    Conflict {
        /// The route's name.
        route: String,
    },

    /// Someone changed the rewrite's rule between our read and write.
    #[error("InferenceModelRewrite {rewrite:?} changed under us (the JSON Patch test failed)")]
    RewriteConflict {
        /// The rewrite's name.
        rewrite: String,
    },
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Route { .. } => "route",
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Encode { .. } => "encode",
            Self::Prometheus { .. } => "prometheus",
            Self::PrometheusNotAllowed(_) => "prometheus_not_allowed",
            Self::Epp { .. } => "epp",
            Self::Kube { .. } => "kube",
            Self::Rewrite { .. } => "rewrite",
            Self::Conflict { .. } | Self::RewriteConflict { .. } => "conflict",
            Self::LostLeadership(_) => "lost_leadership",
            Self::LocalFile { .. } => "local_file",
            Self::Tls(_) => "tls",
            Self::Admin(_) => "admin",
        }
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
