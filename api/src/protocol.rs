//! Every header, dynamic-metadata key and Kubernetes label or annotation that
//! more than one component (BBR, EPP, rollout, the Envoy config, the charts)
//! must spell the same way; [`epp_metrics`] holds the EPP's metric names and label values,
//! which the rollout controller reads.
//!
//! Header names are lowercase: HTTP/2 (and Envoy, which lowercases HTTP/1 names
//! internally) only carries lowercase names, and Envoy's route header matchers
//! and ext_proc header mutations compare names as stored. Upstream documents some
//! of these in mixed case (e.g. `X-Gateway-Model-Name`); on the wire it is the
//! same header.

pub mod epp_metrics;

// --- Request headers set by BBR, matched by HTTPRoutes ---

/// Switchyard's routing header: BBR copies the body's `model` here, and
/// HTTPRoute header matches select the InferencePool from it. Our own name;
/// keep it configurable in BBR.
pub const INFERENCE_MODEL_HEADER: &str = "x-gateway-inference-model";

/// Upstream BBR's routing header (`X-Gateway-Model-Name`, lowercased), set by its
/// default body-field-to-header plugin. Kept so routes written for upstream work.
pub const MODEL_NAME_HEADER: &str = "x-gateway-model-name";

/// The base model of the requested model (a LoRA adapter resolves to its base),
/// set by BBR's base-model plugin and matched by upstream's multi-pool routes.
pub const BASE_MODEL_NAME_HEADER: &str = "x-gateway-base-model-name";

// --- Request headers read by the EPP ---

/// Names the InferenceObjective (by `metadata.name`) whose priority applies.
pub const INFERENCE_OBJECTIVE_HEADER: &str = "x-gateway-inference-objective";

/// The flow (tenant) id fairness is computed over; [`DEFAULT_FAIRNESS_ID`] when absent.
pub const INFERENCE_FAIRNESS_ID_HEADER: &str = "x-gateway-inference-fairness-id";

/// The fairness id of requests that carry no [`INFERENCE_FAIRNESS_ID_HEADER`].
pub const DEFAULT_FAIRNESS_ID: &str = "default-flow";

/// Forces the target model, bypassing InferenceModelRewrite rules.
pub const MODEL_NAME_REWRITE_HEADER: &str = "x-gateway-model-name-rewrite";

/// The request id; the EPP generates and injects one when absent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

// --- The EPP's routing answer ---

/// The chosen endpoint(s): `ip:port`, or an ordered comma-separated fallback list
/// `ip:port,ip:port` (IPv6 bracketed). Set both as a request header, read by the
/// ORIGINAL_DST cluster, and under [`ENVOY_LB_METADATA_NAMESPACE`]; the two values
/// must be identical.
pub const DESTINATION_ENDPOINT_HEADER: &str = "x-gateway-destination-endpoint";

/// Dynamic-metadata key (under [`ENVOY_LB_METADATA_NAMESPACE`]) with the same
/// value as [`DESTINATION_ENDPOINT_HEADER`].
pub const DESTINATION_ENDPOINT_KEY: &str = DESTINATION_ENDPOINT_HEADER;

/// Dynamic-metadata key, under [`ENVOY_LB_METADATA_NAMESPACE`] in the response
/// phase, where the data plane reports the endpoint (`ip:port`) it actually used.
pub const DESTINATION_ENDPOINT_SERVED_KEY: &str = "x-gateway-destination-endpoint-served";

/// Dynamic-metadata key, under [`SUBSET_HINT_METADATA_NAMESPACE`], listing the
/// only endpoints (`["ip:port", …]`) the EPP may choose from. Absent: the whole
/// pool is eligible; present but empty or with no eligible entry: 503.
pub const DESTINATION_ENDPOINT_SUBSET_KEY: &str = "x-gateway-destination-endpoint-subset";

/// Optional dynamic-metadata key carrying the endpoints' scores, for debugging.
pub const DESTINATION_ENDPOINT_SCORES_KEY: &str = "x-gateway-destination-endpoint-scores";

/// The dynamic-metadata namespace of the routing answer and the served endpoint.
pub const ENVOY_LB_METADATA_NAMESPACE: &str = "envoy.lb";

/// The filter-metadata namespace of the subset hint sent to the EPP.
pub const SUBSET_HINT_METADATA_NAMESPACE: &str = "envoy.lb.subset_hint";

/// Response header naming why a request was dropped before reaching a model
/// server (`rejected-saturated`, `rejected-no-endpoints`, …; llm-d's name).
pub const REQUEST_DROPPED_REASON_HEADER: &str = "x-llm-d-request-dropped-reason";

// --- Kubernetes labels and annotations ---

/// Pod label naming the model-server engine (`vllm`, `sglang`, …), which selects
/// the metric names the EPP scrapes.
pub const ENGINE_TYPE_LABEL: &str = "inference.networking.k8s.io/engine-type";

/// Pod annotation restricting which of the pool's target ports the EPP uses on
/// that pod; absent means all of them. (Value format: see the EPP's datastore.)
pub const ACTIVE_PORTS_ANNOTATION: &str = "inference.networking.k8s.io/active-ports";

/// ConfigMap label marking BBR's base-model/adapter mappings (value `"true"`).
pub const BBR_MANAGED_LABEL: &str = "inference.networking.k8s.io/bbr-managed";

/// llm-d's spelling of [`BBR_MANAGED_LABEL`], still honoured.
pub const LLM_D_BBR_MANAGED_LABEL: &str = "inference.llm-d.ai/ipp-managed";

/// InferencePool annotation exporting the pool to the cluster set (value `ClusterSet`).
pub const EXPORT_ANNOTATION: &str = "inference.networking.x-k8s.io/export";

// --- gRPC ---

/// The gRPC service name Envoy health-checks an ext_proc server with.
pub const EXT_PROC_SERVICE_NAME: &str = "envoy.service.ext_proc.v3.ExternalProcessor";
