//! The PromQL behind each metric type (pure string building).
//!
//! Defaults read what a standard install exports, per arm through the arm
//! selector (`inference_pool="{{arm}}"` unless configured):
//! - latency and throughput from the model servers' vLLM metrics:
//!   `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`,
//!   `vllm:generation_tokens_total`, with `vllm:request_success_total` as the
//!   request count;
//! - errors and shedding from the EPP's `inference_objective_request_error_total`
//!   by `error_code` (`BadRequest` → 4xx, `Internal` → 5xx,
//!   `ResourceExhausted`/`ServiceUnavailable` → shed) over
//!   `inference_objective_request_total`.
//!
//! A metric's `query` replaces the value query of any type, with `{{arm}}`,
//! `{{selector}}`, `{{window}}` and `{{quantile}}` filled in; use it for
//! gateway-side status classes or other exporters.

use switchyard_api::protocol::epp_metrics::{
    BAD_REQUEST, ERROR_CODE_LABEL, INTERNAL, REQUEST_ERROR_TOTAL, REQUEST_TOTAL,
    RESOURCE_EXHAUSTED, SERVICE_UNAVAILABLE,
};
use switchyard_api::rollout::{MetricCheck, MetricType, StatusClass};

/// The backend names of the two arms.
#[derive(Clone, Copy, Debug)]
pub struct Arms<'a> {
    /// The canary backend's name.
    pub canary: &'a str,
    /// The stable backend's name.
    pub stable: &'a str,
}

/// The queries measuring one metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The canary's value.
    pub canary: String,
    /// The stable's value, when a limit compares with it.
    pub stable: Option<String>,
    /// The canary's request count, when the minimum applies.
    pub canary_requests: Option<String>,
}

const REQUESTS: &str = "sum(increase(vllm:request_success_total{{{selector}}}[{{window}}]))";
const TTFT: &str = "histogram_quantile({{quantile}}, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{{selector}}}[{{window}}])))";
const ITL: &str = "histogram_quantile({{quantile}}, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{{{selector}}}[{{window}}])))";
const TOKENS_PER_ENDPOINT: &str = "sum(rate(vllm:generation_tokens_total{{{selector}}}[{{window}}])) / count(up{{{selector}}} == 1)";

/// Builds the queries of `check` for a window of `window_secs`.
pub fn build(check: &MetricCheck, arm_selector: &str, arms: &Arms<'_>, window_secs: u64) -> Built {
    let value_template = match &check.query {
        Some(query) => query.clone(),
        None => default_template(check),
    };
    let needs_stable = check.max_delta_vs_stable.is_some()
        || check.max_ratio_vs_stable.is_some()
        || check.min_ratio_vs_stable.is_some();
    let requests_template = match check.type_ {
        MetricType::Query => None,
        MetricType::ErrorRate | MetricType::ShedRate => Some(epp_requests()),
        MetricType::Ttft | MetricType::InterTokenLatency | MetricType::OutputTokenThroughput => {
            Some(REQUESTS.to_owned())
        }
    };
    let render =
        |template: &str, arm: &str| render(template, arm_selector, arm, window_secs, check);
    Built {
        canary: render(&value_template, arms.canary),
        stable: needs_stable.then(|| render(&value_template, arms.stable)),
        canary_requests: requests_template.map(|t| render(&t, arms.canary)),
    }
}

fn default_template(check: &MetricCheck) -> String {
    match check.type_ {
        MetricType::ErrorRate => {
            let codes = error_codes(&check.status_classes);
            ratio_of_errors(&codes)
        }
        MetricType::ShedRate => {
            ratio_of_errors(&format!("{RESOURCE_EXHAUSTED}|{SERVICE_UNAVAILABLE}"))
        }
        MetricType::Ttft => TTFT.to_owned(),
        MetricType::InterTokenLatency => ITL.to_owned(),
        MetricType::OutputTokenThroughput => TOKENS_PER_ENDPOINT.to_owned(),
        // A Query without `query` is rejected by the CRD; measure nothing.
        MetricType::Query => "vector(0) unless vector(0)".to_owned(),
    }
}

/// The EPP's error codes of the status classes (both when none is given).
fn error_codes(classes: &[StatusClass]) -> String {
    // 4xx only when asked for: a client can send requests a model server
    // rejects at will, so counting them by default lets clients sway the gate.
    let client = classes.contains(&StatusClass::Client);
    let server = classes.is_empty() || classes.contains(&StatusClass::Server);
    match (client, server) {
        (true, true) => format!("{BAD_REQUEST}|{INTERNAL}"),
        (true, false) => BAD_REQUEST.into(),
        _ => INTERNAL.into(),
    }
}

/// The EPP's scheduled requests of the arm over the window.
fn epp_requests() -> String {
    format!("sum(increase({REQUEST_TOTAL}{{{{{{selector}}}}}}[{{{{window}}}}]))")
}

fn ratio_of_errors(codes: &str) -> String {
    format!(
        "(sum(increase({REQUEST_ERROR_TOTAL}{{{{{{selector}}}}, {ERROR_CODE_LABEL}=~\"{codes}\"}}[{{{{window}}}}])) or vector(0)) / {}",
        epp_requests()
    )
}

/// Fills in `{{selector}}` (itself holding `{{arm}}`), `{{arm}}`, `{{window}}`
/// and `{{quantile}}`.
fn render(
    template: &str,
    arm_selector: &str,
    arm: &str,
    window_secs: u64,
    check: &MetricCheck,
) -> String {
    let escaped = arm.replace('\\', "\\\\").replace('"', "\\\"");
    let selector = arm_selector.replace("{{arm}}", &escaped);
    template
        .replace("{{selector}}", &selector)
        .replace("{{arm}}", &escaped)
        .replace("{{window}}", &format!("{}s", window_secs.max(1)))
        .replace("{{quantile}}", &check.effective_quantile().to_string())
}

#[cfg(test)]
mod tests {
    use switchyard_api::rollout::{MetricCheck, MetricType, StatusClass};

    use super::{Arms, build};

    const ARMS: Arms<'static> = Arms {
        canary: "qwen-canary",
        stable: "qwen",
    };
    const SELECTOR: &str = "inference_pool=\"{{arm}}\"";

    #[test]
    fn ttft_quantile_per_arm_with_stable_only_when_compared() {
        let mut check = MetricCheck::new("ttft", MetricType::Ttft);
        check.quantile = Some(0.99);
        check.max = Some(2.0);
        let built = build(&check, SELECTOR, &ARMS, 90);
        assert_eq!(
            built.canary,
            "histogram_quantile(0.99, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{inference_pool=\"qwen-canary\"}[90s])))"
        );
        assert_eq!(built.stable, None);
        assert_eq!(
            built.canary_requests.as_deref(),
            Some("sum(increase(vllm:request_success_total{inference_pool=\"qwen-canary\"}[90s]))")
        );
        check.max_ratio_vs_stable = Some(1.2);
        let built = build(&check, SELECTOR, &ARMS, 90);
        assert!(built.stable.unwrap().contains("inference_pool=\"qwen\"}"));
    }

    #[test]
    fn m10_an_error_rate_without_status_classes_queries_5xx_only() {
        let check = MetricCheck::new("errors", MetricType::ErrorRate);
        let canary = build(&check, SELECTOR, &ARMS, 60).canary;
        assert!(canary.contains("error_code=~\"Internal\""), "{canary}");
        assert!(!canary.contains("BadRequest"), "{canary}");
    }

    #[test]
    fn error_rate_selects_codes_by_class() {
        let mut check = MetricCheck::new("5xx", MetricType::ErrorRate);
        check.status_classes = vec![StatusClass::Server];
        check.max = Some(0.01);
        let built = build(&check, SELECTOR, &ARMS, 60);
        assert_eq!(
            built.canary,
            "(sum(increase(inference_objective_request_error_total{inference_pool=\"qwen-canary\", error_code=~\"Internal\"}[60s])) or vector(0)) / sum(increase(inference_objective_request_total{inference_pool=\"qwen-canary\"}[60s]))"
        );
        check.status_classes = vec![StatusClass::Client];
        assert!(
            build(&check, SELECTOR, &ARMS, 60)
                .canary
                .contains("error_code=~\"BadRequest\"")
        );
        let shed = MetricCheck::new("shed", MetricType::ShedRate);
        assert!(
            build(&shed, SELECTOR, &ARMS, 60)
                .canary
                .contains("ResourceExhausted|ServiceUnavailable")
        );
    }

    #[test]
    fn user_query_fills_every_placeholder_and_escapes_the_arm() {
        let mut check = MetricCheck::new("evals", MetricType::Query);
        check.query = Some("sum(increase(eval_failures_total{pool=\"{{arm}}\",{{selector}}}[{{window}}])) * {{quantile}}".into());
        check.max = Some(0.0);
        let arms = Arms {
            canary: "we\"ird",
            stable: "s",
        };
        let built = build(&check, "job=\"{{arm}}\"", &arms, 0);
        assert_eq!(
            built.canary,
            "sum(increase(eval_failures_total{pool=\"we\\\"ird\",job=\"we\\\"ird\"}[1s])) * 0.95"
        );
        assert_eq!(built.canary_requests, None);
    }
}
