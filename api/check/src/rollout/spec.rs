//! The rules one InferenceRollout can break on its own. They mirror the CRD's CEL
//! rules and schema bounds (which the API server enforces, so a file that passes
//! here is not refused there) and add what the controller refuses as
//! `InvalidSpec` at run time (`switchyard_rollout::plan::validate`): the step
//! order, which CEL cannot compare across list items, and the ModelSplit mode,
//! which it does not implement yet.

use super::Problem;
use switchyard_api::rollout::{
    AnalysisSpec, FULL_WEIGHT, InferenceRolloutSpec, MetricType, OnFail, RolloutTarget, SplitMode,
    Strategy, parse_duration_ms,
};

const STEPS_MAX: usize = 32;
const METRICS_MAX: usize = 16;

/// Every single-object rule `spec` breaks, in field order.
pub fn spec_problems(spec: &InferenceRolloutSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    target(&mut problems, &spec.target);
    strategy(&mut problems, &spec.strategy);
    let safety = &spec.safety;
    range(
        &mut problems,
        "spec.safety.minCanaryReadyEndpoints",
        safety.min_canary_ready_endpoints.into(),
        1,
        10_000,
    );
    if let Some(guard) = &safety.capacity_guard {
        range(
            &mut problems,
            "spec.safety.capacityGuard.headroomPercent",
            guard.headroom_percent.into(),
            0,
            1000,
        );
    }
    analysis(&mut problems, &spec.analysis);
    problems
}

fn target(problems: &mut Vec<Problem>, target: &RolloutTarget) {
    let at = |field: &str| format!("spec.target.{field}");
    match target.mode {
        SplitMode::PoolSplit => {
            if target.route.is_none() {
                problems.push(Problem::new(
                    at("route"),
                    "is required for mode: PoolSplit: write route: {name: <HTTPRoute>, ruleName: <the rule's name>}",
                ));
            }
            for (field, value) in [("stable", &target.stable), ("canary", &target.canary)] {
                if value.is_none() {
                    problems.push(Problem::new(
                        at(field),
                        format!("is required for mode: PoolSplit: write {field}: {{name: <InferencePool>}}"),
                    ));
                }
            }
        }
        SplitMode::ModelSplit => {
            if target.model_split.is_none() {
                problems.push(Problem::new(
                    at("modelSplit"),
                    "is required for mode: ModelSplit: write modelSplit: {rewriteRef: <InferenceModelRewrite>, model: <requested model>, stable: <modelRewrite>, canary: <modelRewrite>}",
                ));
            }
        }
    }
    if let Some(route) = &target.route {
        text(problems, &at("route.name"), &route.name, 253);
        text(problems, &at("route.ruleName"), &route.rule_name, 253);
    }
    for (field, backend) in [("stable", &target.stable), ("canary", &target.canary)] {
        if let Some(backend) = backend {
            text(problems, &at(&format!("{field}.name")), &backend.name, 253);
            text(problems, &at(&format!("{field}.kind")), &backend.kind, 63);
        }
    }
    if let (Some(stable), Some(canary)) = (&target.stable, &target.canary)
        && stable == canary
    {
        problems.push(Problem::new(
            at("canary"),
            format!(
                "must be a different backend than stable (both are {} {}): name the new version's pool here",
                stable.kind, stable.name
            ),
        ));
    }
    if let Some(split) = &target.model_split {
        text(
            problems,
            &at("modelSplit.rewriteRef"),
            &split.rewrite_ref,
            253,
        );
        for (field, value) in [
            ("model", &split.model),
            ("stable", &split.stable),
            ("canary", &split.canary),
        ] {
            text(
                problems,
                &at(&format!("modelSplit.{field}")),
                value,
                usize::MAX,
            );
        }
        if !split.stable.is_empty() && split.stable == split.canary {
            problems.push(Problem::new(
                at("modelSplit.canary"),
                format!(
                    "must differ from modelSplit.stable (both are {}): name the new model's modelRewrite here",
                    split.stable
                ),
            ));
        }
    }
}

fn strategy(problems: &mut Vec<Problem>, strategy: &Strategy) {
    let at = |field: &str| format!("spec.strategy.{field}");
    let steps = &strategy.steps;
    if steps.is_empty() {
        problems.push(Problem::new(
            at("steps"),
            "must have at least 1 entry: write steps: [{weight: 500}, {weight: 2500}] (canary weights in basis points, 10000 = 100 %)",
        ));
    } else if steps.len() > STEPS_MAX {
        problems.push(Problem::new(
            at("steps"),
            format!(
                "has {} entries; at most {STEPS_MAX} are allowed",
                steps.len()
            ),
        ));
    }
    let max_weight = strategy.max_weight;
    for (i, step) in steps.iter().enumerate() {
        let path = at(&format!("steps[{i}].weight"));
        let weight = step.weight;
        if !(1..=FULL_WEIGHT).contains(&weight) {
            range(problems, &path, weight.into(), 1, FULL_WEIGHT.into());
        } else if weight > max_weight {
            problems.push(Problem::new(
                &path,
                format!(
                    "is {weight}, above maxWeight {max_weight}: lower the step or raise spec.strategy.maxWeight"
                ),
            ));
        }
        if let Some(first) = steps[..i].iter().position(|s| s.weight == weight) {
            problems.push(Problem::new(
                &path,
                format!("{weight} repeats steps[{first}]: step weights must be unique; remove one"),
            ));
        } else if let Some(previous) = i.checked_sub(1).map(|p| steps[p].weight)
            && weight < previous
        {
            problems.push(Problem::new(
                &path,
                format!(
                    "{weight} comes after {previous}: steps must be strictly increasing (the controller refuses this spec as InvalidSpec); reorder them"
                ),
            ));
        }
        if let Some(duration) = &step.min_duration {
            self::duration(problems, &at(&format!("steps[{i}].minDuration")), duration);
        }
    }
    duration(
        problems,
        &at("analysisInterval"),
        &strategy.analysis_interval,
    );
    range(
        problems,
        &at("successfulChecksPerStep"),
        strategy.successful_checks_per_step.into(),
        1,
        1000,
    );
    range(
        problems,
        &at("failureThreshold"),
        strategy.failure_threshold.into(),
        1,
        1000,
    );
    duration(problems, &at("settleTime"), &strategy.settle_time);
    duration(
        problems,
        &at("progressDeadline"),
        &strategy.progress_deadline,
    );
    range(
        problems,
        &at("maxWeight"),
        max_weight.into(),
        1,
        FULL_WEIGHT.into(),
    );
}

fn analysis(problems: &mut Vec<Problem>, analysis: &AnalysisSpec) {
    let source = &analysis.source;
    match (&source.epp, &source.prometheus) {
        (Some(_), Some(_)) | (None, None) => problems.push(Problem::new(
            "spec.analysis.source",
            "must set exactly one of epp or prometheus: write source: {epp: {}} to read the EPP's metrics, or source: {prometheus: {address: http://prometheus:9090, armSelector: <selector>}}",
        )),
        _ => {}
    }
    if let Some(epp) = &source.epp {
        duration(
            problems,
            "spec.analysis.source.epp.scrapeInterval",
            &epp.scrape_interval,
        );
    }
    if let Some(prometheus) = &source.prometheus {
        let at = "spec.analysis.source.prometheus";
        if !prometheus.address.starts_with("http://") && !prometheus.address.starts_with("https://")
        {
            problems.push(Problem::new(
                format!("{at}.address"),
                format!(
                    "must be an http:// or https:// URL, got {:?}: write address: http://<host>:9090",
                    prometheus.address
                ),
            ));
        }
        text(
            problems,
            &format!("{at}.armSelector"),
            &prometheus.arm_selector,
            1024,
        );
        duration(problems, &format!("{at}.timeout"), &prometheus.timeout);
    }
    if analysis.min_requests_per_window < 0 {
        problems.push(Problem::new(
            "spec.analysis.minRequestsPerWindow",
            format!(
                "must be 0 or more, got {}",
                analysis.min_requests_per_window
            ),
        ));
    }
    range(
        problems,
        "spec.analysis.noData.limit",
        analysis.no_data.limit.into(),
        1,
        1000,
    );
    if analysis.metrics.len() > METRICS_MAX {
        problems.push(Problem::new(
            "spec.analysis.metrics",
            format!(
                "has {} entries; at most {METRICS_MAX} are allowed",
                analysis.metrics.len()
            ),
        ));
    }
    for (i, metric) in analysis.metrics.iter().enumerate() {
        let at = |field: &str| format!("spec.analysis.metrics[{i}]{field}");
        text(problems, &at(".name"), &metric.name, 63);
        if let Some(first) = analysis.metrics[..i]
            .iter()
            .position(|m| m.name == metric.name)
        {
            problems.push(Problem::new(
                at(".name"),
                format!(
                    "{:?} repeats metrics[{first}]: metric names must be unique; rename one",
                    metric.name
                ),
            ));
        }
        let limits = [
            metric.max,
            metric.min,
            metric.max_delta_vs_stable,
            metric.max_ratio_vs_stable,
            metric.min_ratio_vs_stable,
        ];
        if limits.iter().all(Option::is_none) {
            problems.push(Problem::new(
                at(""),
                "must set at least one limit: max, min, maxDeltaVsStable, maxRatioVsStable or minRatioVsStable (e.g. maxRatioVsStable: 1.2)",
            ));
        }
        if metric.type_ == MetricType::Query {
            if metric.query.is_none() {
                problems.push(Problem::new(
                    at(".query"),
                    "is required for type: Query: write the PromQL, e.g. query: sum(rate(errors{pool=\"{{arm}}\"}[{{window}}]))",
                ));
            }
            if source.prometheus.is_none() {
                problems.push(Problem::new(
                    at(".type"),
                    "Query runs PromQL, which needs spec.analysis.source.prometheus: set the Prometheus source or use a built-in type (ErrorRate, ShedRate, TTFT, InterTokenLatency, OutputTokenThroughput)",
                ));
            }
        }
        if metric.type_ == MetricType::ShedRate && metric.on_fail == Some(OnFail::Rollback) {
            problems.push(Problem::new(
                at(".onFail"),
                "ShedRate is a capacity signal and can only pause: write onFail: Pause, or leave onFail out",
            ));
        }
        if let Some(quantile) = metric.quantile
            && !(0.0..=1.0).contains(&quantile)
        {
            problems.push(Problem::new(
                at(".quantile"),
                format!("must be between 0 and 1, got {quantile}: write 0.95 for p95"),
            ));
        }
        if let Some(query) = &metric.query {
            text(problems, &at(".query"), query, 4096);
        }
    }
}

/// A string of 1 to `max` characters.
fn text(problems: &mut Vec<Problem>, path: &str, value: &str, max: usize) {
    let length = value.chars().count();
    if length == 0 {
        problems.push(Problem::new(path, "must not be empty"));
    } else if length > max {
        problems.push(Problem::new(
            path,
            format!("is {length} characters long; at most {max} are allowed"),
        ));
    }
}

fn range(problems: &mut Vec<Problem>, path: &str, value: i64, min: i64, max: i64) {
    if !(min..=max).contains(&value) {
        problems.push(Problem::new(
            path,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
}

fn duration(problems: &mut Vec<Problem>, path: &str, value: &str) {
    if parse_duration_ms(value).is_none() {
        problems.push(Problem::new(
            path,
            format!(
                "{value:?} is not a duration: write 1 to 4 parts of a number and h, m, s or ms, like 90s or 1m30s"
            ),
        ));
    }
}
