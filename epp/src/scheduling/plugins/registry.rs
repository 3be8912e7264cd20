//! The registry: every plugin type Switchyard knows (llm-d-router v0.10's and GIE's names),
//! listed once with its [`Role`], and the types upstream marks Alpha. A type Switchyard
//! does not implement is listed with the text saying what to use instead.

use super::{
    KvCacheScorer, LoraAffinityScorer, PickerKind, QueueScorer, Role, RunningRequestsScorer,
    SERVED_ENDPOINT_VERIFIER, affinity, filters, implied, labels, load, no_parameters, scorers,
};

/// Every plugin type Switchyard knows, listed once, with its role.
pub static PLUGINS: &[(&str, Role)] = &[
    ("utilization-detector", Role::Filter(filters::utilization)),
    (
        "header-based-testing-filter",
        Role::Filter(filters::test_selection),
    ),
    ("decode-filter", Role::Filter(labels::decode)),
    ("prefill-filter", Role::Filter(labels::prefill)),
    ("encode-filter", Role::Filter(labels::encode)),
    ("label-selector-filter", Role::Filter(labels::selector)),
    (
        "prefix-cache-affinity-filter",
        Role::Filter(affinity::prefix_cache_affinity),
    ),
    (
        "queue-scorer",
        Role::Scorer(|n, t, p| no_parameters(n, t, p).map(|()| Box::new(QueueScorer) as _)),
    ),
    (
        "running-requests-size-scorer",
        Role::Scorer(|n, t, p| {
            no_parameters(n, t, p).map(|()| Box::new(RunningRequestsScorer) as _)
        }),
    ),
    (
        "kv-cache-utilization-scorer",
        Role::Scorer(|n, t, p| no_parameters(n, t, p).map(|()| Box::new(KvCacheScorer) as _)),
    ),
    // Its parameters also drive prompt hashing; the config decoder keeps them.
    ("prefix-cache-scorer", Role::Scorer(scorers::prefix_cache)),
    (
        "lora-affinity-scorer",
        Role::Scorer(|n, t, p| no_parameters(n, t, p).map(|()| Box::new(LoraAffinityScorer) as _)),
    ),
    ("token-load-scorer", Role::Scorer(scorers::token_load)),
    ("load-aware-scorer", Role::Scorer(load::load_aware)),
    ("active-request-scorer", Role::Scorer(load::active_request)),
    ("context-length-aware", Role::Scorer(load::context_length)),
    ("max-score-picker", Role::Picker(PickerKind::MaxScore)),
    ("random-picker", Role::Picker(PickerKind::Random)),
    (
        "weighted-random-picker",
        Role::Picker(PickerKind::WeightedRandom),
    ),
    (SERVED_ENDPOINT_VERIFIER, Role::Response),
    ("single-profile-handler", Role::Implied(no_parameters)),
    (
        "approx-prefix-cache-producer",
        Role::Implied(implied::approx_prefix),
    ),
    (
        "metrics-data-source",
        Role::Implied(implied::metrics_source),
    ),
    (
        "core-metrics-extractor",
        Role::Implied(implied::metrics_extractor),
    ),
    ("token-producer", Role::Implied(implied::token_producer)),
    ("openai-parser", Role::Implied(no_parameters)),
    // The one body parser also reads Anthropic Messages (`/v1/messages`).
    ("anthropic-parser", Role::Implied(no_parameters)),
    ("fcfs-ordering-policy", Role::Implied(no_parameters)),
    ("edf-ordering-policy", Role::Implied(no_parameters)),
    (
        "global-strict-fairness-policy",
        Role::Implied(no_parameters),
    ),
    ("round-robin-fairness-policy", Role::Implied(no_parameters)),
    ("concurrency-detector", Role::Implied(implied::flow_checked)),
    (
        "static-usage-limit-policy",
        Role::Implied(implied::flow_checked),
    ),
    (
        "priority-holdback-policy",
        Role::Implied(implied::flow_checked),
    ),
    (
        "inflight-load-producer",
        Role::Implied(implied::inflight_load),
    ),
    ("k8s-notification-source", Role::Implied(no_parameters)),
    (
        "disagg-profile-handler",
        Role::Unsupported(
            "prefill/decode disaggregation comes with the P/D work; until then run one \
             `default` profile with decode-filter",
        ),
    ),
    (
        "pd-profile-handler",
        Role::Unsupported("prefill/decode disaggregation comes with the P/D work"),
    ),
    (
        "prefix-based-pd-decider",
        Role::Unsupported("prefill/decode disaggregation comes with the P/D work"),
    ),
    (
        "always-disagg-pd-decider",
        Role::Unsupported("prefill/decode disaggregation comes with the P/D work"),
    ),
    (
        "always-disagg-multimodal-decider",
        Role::Unsupported("encode/prefill/decode disaggregation comes with the P/D work"),
    ),
    (
        "precise-prefix-cache-producer",
        Role::Unsupported(
            "precise prefix routing over KV events comes with the precise-prefix work; \
             use prefix-cache-scorer (approximate) meanwhile",
        ),
    ),
    (
        "precise-prefix-cache-scorer",
        Role::Unsupported(
            "precise prefix routing over KV events comes with the precise-prefix work; \
             use prefix-cache-scorer (approximate) meanwhile",
        ),
    ),
    (
        "endpoint-notification-source",
        Role::Unsupported(
            "it feeds precise-prefix-cache-producer, which comes with the precise-prefix \
             work; remove it together with that producer",
        ),
    ),
    (
        "data-parallel-profile-handler",
        Role::Unsupported(
            "deprecated upstream (use single-profile-handler with Istio >= 1.28.1): each \
             data-parallel rank is its own endpoint (one per target port) and is routed to \
             directly; remove it",
        ),
    ),
    (
        "session-affinity-scorer",
        Role::Unsupported(
            "use prefix-cache-scorer: a session's turns share their prefix, which keeps them \
             on one endpoint",
        ),
    ),
    (
        "session-affinity-filter",
        Role::Unsupported("use prefix-cache-affinity-filter"),
    ),
    (
        "no-hit-lru-scorer",
        Role::Unsupported("use load-aware-scorer or queue-scorer to spread cold prompts"),
    ),
    (
        "probabilistic-admitter",
        Role::Unsupported(
            "enable the flowControl feature gate: its saturation detector sheds \
             priority<0 work under load",
        ),
    ),
    (
        "program-aware-fairness",
        Role::Unsupported("use round-robin-fairness-policy"),
    ),
    (
        "agent-identity",
        Role::Unsupported("send x-gateway-inference-fairness-id from a trusted gateway instead"),
    ),
    (
        "utilization-filter",
        Role::Unsupported("use utilization-detector in the profile as a filter"),
    ),
    (
        "active-request-filter",
        Role::Unsupported("use utilization-detector in the profile as a filter"),
    ),
    (
        "slo-headroom-tier-filter",
        Role::Unsupported("latency-SLO routing is not implemented; use token-load-scorer"),
    ),
    (
        "predicted-latency-scorer",
        Role::Unsupported("latency-SLO routing is not implemented; use token-load-scorer"),
    ),
    (
        "predicted-latency-producer",
        Role::Unsupported("latency-SLO routing is not implemented; use token-load-scorer"),
    ),
    (
        "latency-slo-admitter",
        Role::Unsupported("latency-SLO admission is not implemented; use flowControl"),
    ),
    (
        "latency-scorer",
        Role::Unsupported("latency-SLO routing is not implemented; use token-load-scorer"),
    ),
    (
        "slo-deadline-ordering-policy",
        Role::Unsupported("use edf-ordering-policy (deadline = arrival + TTL)"),
    ),
    (
        "soft-reflective-ceiling-policy",
        Role::Unsupported("use priority-holdback-policy or static-usage-limit-policy"),
    ),
    (
        "sheddable-eviction-filter",
        Role::Unsupported(
            "eviction of in-flight requests is not implemented; leave flowControl.enableEviction off",
        ),
    ),
    (
        "priority-then-time-eviction-order-policy",
        Role::Unsupported(
            "eviction of in-flight requests is not implemented; leave flowControl.enableEviction off",
        ),
    ),
    (
        "vllmgrpc-parser",
        Role::Unsupported(
            "gRPC inference is not parsed; serve the OpenAI HTTP API (openai-parser)",
        ),
    ),
    (
        "passthrough-parser",
        Role::Unsupported(
            "only OpenAI and Anthropic Messages bodies are parsed (openai-parser, \
             anthropic-parser)",
        ),
    ),
    (
        "vllmhttp-parser",
        Role::Unsupported(
            "only OpenAI and Anthropic Messages bodies are parsed (openai-parser, \
             anthropic-parser)",
        ),
    ),
    (
        "sglanghttp-parser",
        Role::Unsupported(
            "only OpenAI and Anthropic Messages bodies are parsed (openai-parser, \
             anthropic-parser)",
        ),
    ),
    (
        "vertexai-parser",
        Role::Unsupported(
            "only OpenAI and Anthropic Messages bodies are parsed (openai-parser, \
             anthropic-parser)",
        ),
    ),
    (
        "request-attribute-reporter",
        Role::Unsupported("token usage is counted by the EPP's own metrics; remove it"),
    ),
    (
        "header-profile-handler",
        Role::Unsupported(
            "run one InferencePool (and EPP) per profile and route on the header in the HTTPRoute",
        ),
    ),
    (
        "header-label-affinity-scorer",
        Role::Unsupported("use label-selector-filter in a profile per pool"),
    ),
    (
        "by-label",
        Role::Unsupported("renamed upstream: use label-selector-filter"),
    ),
    (
        "by-label-selector",
        Role::Unsupported("renamed upstream: use label-selector-filter"),
    ),
    (
        "topology-extractor",
        Role::Unsupported("topology-aware routing is not implemented; remove it"),
    ),
    (
        "topology-affinity-filter",
        Role::Unsupported(
            "topology-aware routing is not implemented; use label-selector-filter on topology labels",
        ),
    ),
    (
        "topology-affinity-scorer",
        Role::Unsupported(
            "topology-aware routing is not implemented; use label-selector-filter on topology labels",
        ),
    ),
    (
        "endpoint-attribute-filter",
        Role::Unsupported("use label-selector-filter on pod labels"),
    ),
    (
        "endpoint-attribute-scorer",
        Role::Unsupported("use label-selector-filter on pod labels"),
    ),
    (
        "dcgm-data-source",
        Role::Unsupported(
            "GPU utilisation from DCGM is not scraped; kv-cache-utilization-scorer reads the engine's own load",
        ),
    ),
    (
        "dcgm-extractor",
        Role::Unsupported(
            "GPU utilisation from DCGM is not scraped; kv-cache-utilization-scorer reads the engine's own load",
        ),
    ),
    (
        "burst-prefix-cache-producer",
        Role::Unsupported("use prefix-cache-scorer with token-load-scorer"),
    ),
    (
        "p2p-source-producer",
        Role::Unsupported("KV transfer between servers comes with the P/D work"),
    ),
    (
        "disaggregatedset-rollout-screener",
        Role::Unsupported("prefill/decode disaggregation comes with the P/D work"),
    ),
    (
        "models-data-source",
        Role::Unsupported("models are read from the InferenceObjectives and rewrites"),
    ),
    (
        "models-extractor",
        Role::Unsupported("models are read from the InferenceObjectives and rewrites"),
    ),
    (
        "models-responder",
        Role::Unsupported("GET /v1/models is not answered by the EPP yet"),
    ),
    (
        "file-discovery",
        Role::Unsupported("run standalone with --endpoints-file"),
    ),
    (
        "multimodal-producer",
        Role::Unsupported("multimodal routing is not implemented; remove it"),
    ),
    (
        "mm-cache-affinity-scorer",
        Role::Unsupported("multimodal routing is not implemented; remove it"),
    ),
    (
        "session-id-producer",
        Role::Unsupported("sessions are not tracked; remove it"),
    ),
    (
        "output-length-bucket",
        Role::Unsupported("output-length headers are not set; remove it"),
    ),
];

/// The plugin types upstream marks Alpha: configuring one needs
/// `--allow-experimental-plugins`, as upstream's `ValidatePluginStability`.
pub static ALPHA: &[&str] = &[
    "disaggregatedset-rollout-screener",
    "session-affinity-filter",
    "endpoint-attribute-filter",
    "topology-affinity-filter",
    "utilization-filter",
    "session-affinity-scorer",
    "header-label-affinity-scorer",
    "models-responder",
    "topology-extractor",
    "dcgm-data-source",
    "dcgm-extractor",
    "header-profile-handler",
    "endpoint-attribute-scorer",
    "topology-affinity-scorer",
    "burst-prefix-cache-producer",
    "p2p-source-producer",
    "sheddable-eviction-filter",
    "priority-then-time-eviction-order-policy",
    "priority-holdback-policy",
    "soft-reflective-ceiling-policy",
    "agent-identity",
    "output-length-bucket",
];
