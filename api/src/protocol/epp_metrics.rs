//! The EPP's exported metric contract: the family names, the label names and the label
//! values that the EPP writes and the rollout controller reads (from the EPP's page, or
//! through Prometheus queries). Defined once here so the writer and the readers cannot
//! drift apart.
//!
//! A counter family is registered under its bare name and exposed with `_total`
//! (prometheus-client appends it), so both spellings are given; a histogram is exposed as
//! `_bucket`, `_sum` and `_count` series of its family name.

// --- Families written per (model, target model, priority) ---

/// Counter: requests the EPP scheduled, by `model_name`, `target_model_name`, `priority`.
pub const REQUEST: &str = "inference_objective_request";
/// [`REQUEST`] as exposed.
pub const REQUEST_TOTAL: &str = "inference_objective_request_total";

/// Counter: requests the EPP answered itself with an error, by [`ERROR_CODE_LABEL`].
pub const REQUEST_ERROR: &str = "inference_objective_request_error";
/// [`REQUEST_ERROR`] as exposed.
pub const REQUEST_ERROR_TOTAL: &str = "inference_objective_request_error_total";

/// Histogram: time from a request's headers to its end.
pub const REQUEST_DURATION_SECONDS: &str = "inference_objective_request_duration_seconds";
/// Histogram: request body sizes in bytes.
pub const REQUEST_SIZES: &str = "inference_objective_request_sizes";
/// Gauge: requests scheduled and not yet complete, by `model_name`.
pub const RUNNING_REQUESTS: &str = "inference_objective_running_requests";
/// Histogram: prompt tokens per request.
pub const INPUT_TOKENS: &str = "inference_objective_input_tokens";
/// Histogram: completion tokens per request.
pub const OUTPUT_TOKENS: &str = "inference_objective_output_tokens";
/// The sum series of [`OUTPUT_TOKENS`]: all completion tokens reported.
pub const OUTPUT_TOKENS_SUM: &str = "inference_objective_output_tokens_sum";
/// Histogram: prompt tokens served from the model server's prefix cache.
pub const PROMPT_CACHED_TOKENS: &str = "inference_objective_prompt_cached_tokens";
/// Histogram: time to the first token of a streamed response.
pub const REQUEST_TTFT_SECONDS: &str = "inference_objective_request_ttft_seconds";
/// Histogram: time per output token of a streamed response, after the first.
pub const REQUEST_TPOT_SECONDS: &str = "inference_objective_request_tpot_seconds";

/// Counter: model server responses by [`STATUS_CLASS_LABEL`] (Switchyard's own family).
pub const MODEL_SERVER_RESPONSES: &str = "switchyard_epp_model_server_responses";
/// [`MODEL_SERVER_RESPONSES`] as exposed.
pub const MODEL_SERVER_RESPONSES_TOTAL: &str = "switchyard_epp_model_server_responses_total";

// --- Pool families ---

/// Gauge: ready endpoints of the pool, by [`POOL_NAME_LABEL`].
pub const POOL_READY_PODS: &str = "inference_pool_ready_pods";

// --- Label names ---

/// The model the client asked for.
pub const MODEL_NAME_LABEL: &str = "model_name";
/// The model the request was served as (after InferenceModelRewrite).
pub const TARGET_MODEL_NAME_LABEL: &str = "target_model_name";
/// One of [`ERROR_CODES`], on [`REQUEST_ERROR`].
pub const ERROR_CODE_LABEL: &str = "error_code";
/// One of [`RESPONSE_CLASSES`], on [`MODEL_SERVER_RESPONSES`].
pub const STATUS_CLASS_LABEL: &str = "status_class";
/// The InferencePool's name, on the pool families.
pub const POOL_NAME_LABEL: &str = "name";
/// A histogram bucket's upper bound.
pub const BUCKET_BOUND_LABEL: &str = "le";

// --- Label values ---

/// Upstream's error code for a request the EPP refused as malformed (HTTP 400).
pub const BAD_REQUEST: &str = "BadRequest";
/// Upstream's error code for a request shed or refused for lack of capacity (HTTP 429).
pub const RESOURCE_EXHAUSTED: &str = "ResourceExhausted";
/// Upstream's error code for a request with no endpoint to go to (HTTP 503).
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
/// Upstream's error code for the EPP's own failures (HTTP 500).
pub const INTERNAL: &str = "Internal";

/// Every error code, in the order the EPP keeps its per-code counters and the rollout
/// controller its totals.
pub const ERROR_CODES: [&str; 4] = [
    BAD_REQUEST,
    RESOURCE_EXHAUSTED,
    SERVICE_UNAVAILABLE,
    INTERNAL,
];

/// The classes of the model servers' response statuses, in the order the EPP keeps its
/// counters and the rollout controller its totals. 429 is kept apart from the other 4xx:
/// it is a server shedding load, not a client's mistake, and a canary rollout pauses on
/// shedding but rolls back on errors.
pub const RESPONSE_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "429", "5xx"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_are_the_families_plus_their_suffix() {
        for (family, exposed, suffix) in [
            (REQUEST, REQUEST_TOTAL, "_total"),
            (REQUEST_ERROR, REQUEST_ERROR_TOTAL, "_total"),
            (
                MODEL_SERVER_RESPONSES,
                MODEL_SERVER_RESPONSES_TOTAL,
                "_total",
            ),
            (OUTPUT_TOKENS, OUTPUT_TOKENS_SUM, "_sum"),
        ] {
            assert_eq!(exposed.strip_suffix(suffix), Some(family), "{exposed}");
        }
    }
}
