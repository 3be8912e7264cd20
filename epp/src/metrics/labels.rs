//! Per-model metric handles, resolved once per `(model, target, priority)` and cached in an
//! arc-swap map keyed by a hash of the labels, so recording takes no lock and allocates
//! nothing once a model has been seen. Names pass the [`LabelPolicy`] first, so only short,
//! plain names the pool knows (or a few others) become label values.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchyard_api::protocol::epp_metrics as names;

use crate::metrics::policy::LabelPolicy;
pub use crate::metrics::policy::OVERFLOW_LABEL;

/// Distinct `(model, target, priority)` combinations tracked; later ones are reported with
/// the model labels `other`, as llm-d does. llm-d allows 1,000, but one combination puts
/// about 145 series on the page (17 KB with short names, 51 KB at the 128-byte label cap),
/// so 1,000 would pass the rollout controller's 8 MiB read cap ([`super::MAX_PAGE_BYTES`]);
/// 128 stays under it even at the longest names.
pub const MAX_MODEL_LABELS: usize = 128;

/// Upstream's error codes, in the order of [`ModelHandles::errors`], and the classes of
/// the model servers' response statuses, in the order of [`ModelHandles::responses`]: the
/// metric contract the rollout controller reads, defined in `switchyard_api`.
pub use switchyard_api::protocol::epp_metrics::{ERROR_CODES, RESPONSE_CLASSES};

/// The labels of one request.
#[derive(Clone, Copy, Debug)]
pub struct ModelLabels<'a> {
    /// The model the client asked for (empty when the body had none).
    pub model_name: &'a str,
    /// The model it was served as.
    pub target_model_name: &'a str,
    /// The request's priority (from its InferenceObjective).
    pub priority: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model_name: String,
    target_model_name: String,
    priority: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    model_name: String,
    target_model_name: String,
    error_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    model_name: String,
    target_model_name: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    model_name: String,
    target_model_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    model_name: String,
}

/// The resolved handles for one label combination.
#[derive(Debug)]
pub struct ModelHandles {
    /// `inference_objective_request_total`.
    pub requests: Counter,
    /// `inference_objective_request_error_total`, by [`ERROR_CODES`].
    pub errors: [Counter; ERROR_CODES.len()],
    /// `inference_objective_request_duration_seconds`.
    pub duration: Histogram,
    /// `inference_objective_request_sizes`.
    pub request_sizes: Histogram,
    /// `inference_objective_running_requests`.
    pub running: Gauge,
    /// `inference_objective_input_tokens`, from the response's usage.
    pub input_tokens: Histogram,
    /// `inference_objective_output_tokens`, from the response's usage.
    pub output_tokens: Histogram,
    /// `inference_objective_prompt_cached_tokens`, when the server reports them.
    pub prompt_cached_tokens: Histogram,
    /// `inference_objective_request_ttft_seconds`: request start to the first
    /// token event of a streamed response.
    pub ttft: Histogram,
    /// `inference_objective_request_tpot_seconds`: a streamed response's time
    /// after its first token ÷ its output tokens after the first.
    pub tpot: Histogram,
    /// `switchyard_epp_model_server_responses_total`, by [`RESPONSE_CLASSES`].
    pub responses: [Counter; RESPONSE_CLASSES.len()],
}

impl ModelHandles {
    /// Counts an error by the HTTP status of the local reply.
    pub fn error(&self, status: u16) {
        let code = match status {
            400 | 413 => 0,
            429 => 1,
            503 => 2,
            _ => 3,
        };
        if let Some(counter) = self.errors.get(code) {
            counter.inc();
        }
    }

    /// Counts a model server's response by its status class (a status
    /// outside 200..=599 is not counted).
    pub fn response(&self, status: u16) {
        let class = match status {
            200..=299 => 0,
            300..=399 => 1,
            429 => 3,
            400..=499 => 2,
            500..=599 => 4,
            _ => return,
        };
        if let Some(counter) = self.responses.get(class) {
            counter.inc();
        }
    }
}

struct Entry {
    model: Box<str>,
    target: Box<str>,
    priority: i64,
    handles: Arc<ModelHandles>,
}

/// The per-model families and the handle cache.
pub struct ModelFamilies {
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<PairLabels, Histogram>,
    sizes: Family<PairLabels, Histogram>,
    running: Family<NameLabel, Gauge>,
    input_tokens: Family<PairLabels, Histogram>,
    output_tokens: Family<PairLabels, Histogram>,
    cached_tokens: Family<PairLabels, Histogram>,
    ttft: Family<PairLabels, Histogram>,
    tpot: Family<PairLabels, Histogram>,
    responses: Family<ResponseLabels, Counter>,
    cache: ArcSwap<HashMap<u64, Vec<Arc<Entry>>>>,
    /// Which model names become label values.
    policy: LabelPolicy,
}

fn duration_histogram() -> Histogram {
    // 5 ms to about 5.5 min.
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

fn size_histogram() -> Histogram {
    // 64 B to 64 MiB.
    Histogram::new(exponential_buckets(64.0, 4.0, 11))
}

fn token_histogram() -> Histogram {
    // 1 to about 1M tokens.
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

fn ttft_histogram() -> Histogram {
    // 1 ms to about 2 min, 1.5× apart: fine enough for a quantile compared
    // between two pool versions.
    Histogram::new(exponential_buckets(0.001, 1.5, 30))
}

fn tpot_histogram() -> Histogram {
    // 0.5 ms to about 3 s.
    Histogram::new(exponential_buckets(0.0005, 1.5, 22))
}

fn key(model: &str, target: &str, priority: i64) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&priority.to_le_bytes());
    let seed = xxhash_rust::xxh3::xxh3_64(model.as_bytes());
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(target.as_bytes(), seed);
    xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, seed)
}

impl ModelFamilies {
    /// Registers the families under upstream's names.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            names::REQUEST,
            "Requests scheduled, by model, target model and priority",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            names::REQUEST_ERROR,
            "Requests answered with an error by the EPP, by error code",
            errors.clone(),
        );
        let duration = Family::<PairLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            names::REQUEST_DURATION_SECONDS,
            "Time from the request's headers to its end",
            duration.clone(),
        );
        let sizes = Family::<PairLabels, Histogram>::new_with_constructor(
            size_histogram as fn() -> Histogram,
        );
        registry.register(
            names::REQUEST_SIZES,
            "Request body sizes in bytes",
            sizes.clone(),
        );
        let running = Family::<NameLabel, Gauge>::default();
        registry.register(
            names::RUNNING_REQUESTS,
            "Requests scheduled and not yet complete",
            running.clone(),
        );
        let [input_tokens, output_tokens, cached_tokens] = [
            (
                names::INPUT_TOKENS,
                "Prompt tokens per request, from the response's usage",
            ),
            (
                names::OUTPUT_TOKENS,
                "Completion tokens per request, from the response's usage",
            ),
            (
                names::PROMPT_CACHED_TOKENS,
                "Prompt tokens served from the model server's prefix cache",
            ),
        ]
        .map(|(name, help)| {
            let family = Family::<PairLabels, Histogram>::new_with_constructor(
                token_histogram as fn() -> Histogram,
            );
            registry.register(name, help, family.clone());
            family
        });
        let ttft = Family::<PairLabels, Histogram>::new_with_constructor(
            ttft_histogram as fn() -> Histogram,
        );
        registry.register(
            names::REQUEST_TTFT_SECONDS,
            "Time from the request's headers to the first token of its streamed response",
            ttft.clone(),
        );
        let tpot = Family::<PairLabels, Histogram>::new_with_constructor(
            tpot_histogram as fn() -> Histogram,
        );
        registry.register(
            names::REQUEST_TPOT_SECONDS,
            "Time per output token of a streamed response, after its first token",
            tpot.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            names::MODEL_SERVER_RESPONSES,
            "Model server responses by status class (429 apart from the other 4xx)",
            responses.clone(),
        );
        Self {
            requests,
            errors,
            duration,
            sizes,
            running,
            input_tokens,
            output_tokens,
            cached_tokens,
            ttft,
            tpot,
            responses,
            cache: ArcSwap::default(),
            policy: LabelPolicy::default(),
        }
    }

    /// Model names the pool knows (in `datastore`'s snapshot) get their own label values.
    pub fn learn_models_from(&mut self, datastore: std::sync::Arc<crate::datastore::Datastore>) {
        self.policy.learn_models_from(datastore);
    }

    /// The handles for `labels`, created on first use.
    pub fn handles(&self, labels: ModelLabels<'_>) -> Arc<ModelHandles> {
        let ModelLabels {
            model_name,
            target_model_name,
            priority,
        } = labels;
        // Names already admitted are found at once; the policy (a walk over the pool's
        // models) runs only on a miss.
        let k = key(model_name, target_model_name, priority);
        if let Some(found) = self.find(k, model_name, target_model_name, priority) {
            return found;
        }
        let model_name = self.policy.label(model_name);
        let target_model_name = self.policy.label(target_model_name);
        let k = key(model_name, target_model_name, priority);
        if let Some(found) = self.find(k, model_name, target_model_name, priority) {
            return found;
        }
        let full = self.cache.load().values().map(Vec::len).sum::<usize>() >= MAX_MODEL_LABELS;
        let (model, target) = if full {
            (OVERFLOW_LABEL, OVERFLOW_LABEL)
        } else {
            (model_name, target_model_name)
        };
        let k = key(model, target, priority);
        if let Some(found) = self.find(k, model, target, priority) {
            return found;
        }
        let entry = Arc::new(Entry {
            model: model.into(),
            target: target.into(),
            priority,
            handles: Arc::new(self.resolve(model, target, priority)),
        });
        let handles = Arc::clone(&entry.handles);
        self.cache.rcu(|current| {
            let mut next = HashMap::clone(current);
            let bucket = next.entry(k).or_default();
            if !bucket
                .iter()
                .any(|e| &*e.model == model && &*e.target == target && e.priority == priority)
            {
                bucket.push(Arc::clone(&entry));
            }
            next
        });
        handles
    }

    fn find(&self, k: u64, model: &str, target: &str, priority: i64) -> Option<Arc<ModelHandles>> {
        self.cache.load().get(&k).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| &*e.model == model && &*e.target == target && e.priority == priority)
                .map(|e| Arc::clone(&e.handles))
        })
    }

    fn resolve(&self, model: &str, target: &str, priority: i64) -> ModelHandles {
        let pair = PairLabels {
            model_name: model.to_owned(),
            target_model_name: target.to_owned(),
        };
        ModelHandles {
            requests: self.requests.get_or_create_owned(&RequestLabels {
                model_name: model.to_owned(),
                target_model_name: target.to_owned(),
                priority: priority.to_string(),
            }),
            errors: ERROR_CODES.map(|error_code| {
                self.errors.get_or_create_owned(&ErrorLabels {
                    model_name: model.to_owned(),
                    target_model_name: target.to_owned(),
                    error_code,
                })
            }),
            duration: self.duration.get_or_create_owned(&pair),
            request_sizes: self.sizes.get_or_create_owned(&pair),
            running: self.running.get_or_create_owned(&NameLabel {
                model_name: model.to_owned(),
            }),
            input_tokens: self.input_tokens.get_or_create_owned(&pair),
            output_tokens: self.output_tokens.get_or_create_owned(&pair),
            prompt_cached_tokens: self.cached_tokens.get_or_create_owned(&pair),
            ttft: self.ttft.get_or_create_owned(&pair),
            tpot: self.tpot.get_or_create_owned(&pair),
            responses: RESPONSE_CLASSES.map(|status_class| {
                self.responses.get_or_create_owned(&ResponseLabels {
                    model_name: model.to_owned(),
                    target_model_name: target.to_owned(),
                    status_class,
                })
            }),
        }
    }
}

#[cfg(test)]
mod contract_tests {
    //! The page the EPP writes, read back strictly with the names and label values of
    //! `switchyard_api::protocol::epp_metrics`, as the rollout controller reads it.

    #![allow(clippy::unwrap_used)]

    use switchyard_api::protocol::epp_metrics as names;
    use switchyard_runtime::promtext::{Exposition, MetricType};

    use super::ModelLabels;
    use crate::metrics::Metrics;

    #[test]
    fn the_page_reads_back_with_the_shared_names() {
        let metrics = Metrics::new();
        let handles = metrics.model(ModelLabels {
            model_name: "m",
            target_model_name: "t",
            priority: 0,
        });
        handles.requests.inc();
        handles.error(429);
        handles.response(503);
        handles.output_tokens.observe(7.0);
        handles.ttft.observe(0.1);
        let text = metrics.encode().unwrap();
        let page = Exposition::parse_strict(&text).unwrap();
        let arm = [
            (names::MODEL_NAME_LABEL, "m"),
            (names::TARGET_MODEL_NAME_LABEL, "t"),
        ];
        assert_eq!(page.get(names::REQUEST_TOTAL, &arm), Some(1.0));
        assert_eq!(page.type_of(names::REQUEST), Some(MetricType::Counter));
        let shed = [(names::ERROR_CODE_LABEL, names::RESOURCE_EXHAUSTED)];
        assert_eq!(page.get(names::REQUEST_ERROR_TOTAL, &shed), Some(1.0));
        let server_errors = [(names::STATUS_CLASS_LABEL, "5xx")];
        assert_eq!(
            page.get(names::MODEL_SERVER_RESPONSES_TOTAL, &server_errors),
            Some(1.0)
        );
        assert_eq!(page.get(names::OUTPUT_TOKENS_SUM, &arm), Some(7.0));
        assert!(page.has(names::REQUEST_TTFT_SECONDS));
        assert_eq!(
            page.type_of(names::REQUEST_TTFT_SECONDS),
            Some(MetricType::Histogram)
        );
    }
}
