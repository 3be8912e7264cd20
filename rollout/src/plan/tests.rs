//! Planner tests: a small simulated world (route, readiness, clock) around
//! `plan`, table tests per transition, and property tests of the invariants.

mod admin;
mod flow;
mod model_split;
mod props;
mod safety;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{
    AnalysisSpec, BackendTarget, InferenceRolloutStatus, Intent, IntentAction, MetricCheck,
    MetricType, MetricVerdict, RolloutTarget, RouteTarget, Safety, SplitMode, Strategy, Verdict,
    Weights,
};

use super::{Decision, Observations, RouteObservation, WindowResult, analysis_window, plan};
use crate::route::RouteView;

/// A PoolSplit spec with these step weights, 1-minute windows, 2 checks per
/// step, threshold 2, no settle time, and one ErrorRate and one ShedRate metric.
fn spec(weights: &[i32]) -> InferenceRolloutSpec {
    let mut strategy = Strategy::with_weights(weights);
    strategy.successful_checks_per_step = 2;
    strategy.failure_threshold = 2;
    strategy.settle_time = "0s".into();
    strategy.analysis_interval = "1m".into();
    strategy.progress_deadline = "10m".into();
    let mut errors = MetricCheck::new("errors", MetricType::ErrorRate);
    errors.max = Some(0.01);
    let mut shed = MetricCheck::new("shed", MetricType::ShedRate);
    shed.max = Some(0.05);
    InferenceRolloutSpec {
        paused: false,
        target: RolloutTarget {
            mode: SplitMode::PoolSplit,
            route: Some(RouteTarget {
                name: "llm-route".into(),
                rule_name: "chat".into(),
                drift_policy: Default::default(),
            }),
            stable: Some(BackendTarget::pool("stable")),
            canary: Some(BackendTarget::pool("canary")),
            model_split: None,
        },
        strategy,
        safety: Safety::default(),
        analysis: AnalysisSpec {
            metrics: vec![errors, shed],
            ..AnalysisSpec::default()
        },
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn verdict(name: &str, verdict: Verdict) -> MetricVerdict {
    MetricVerdict {
        name: name.into(),
        canary: None,
        stable: None,
        samples: None,
        verdict,
        message: format!("{verdict:?}"),
    }
}

/// The route, the pools and the clock, plus what the controller persisted.
struct World {
    spec: InferenceRolloutSpec,
    status: InferenceRolloutStatus,
    route: RouteView,
    /// Whether the gateway accepts each new route generation at once.
    parents_follow: bool,
    canary_ready: u32,
    stable_ready: u32,
    now: i64,
    /// What the next due window measures: one verdict per metric.
    next_verdicts: Vec<MetricVerdict>,
    conflict_with: Option<String>,
    route_missing: Option<String>,
    decisions: Vec<Decision>,
}

impl World {
    fn new(spec: InferenceRolloutSpec) -> Self {
        Self {
            spec,
            status: InferenceRolloutStatus::default(),
            route: RouteView {
                rule_index: 0,
                stable_index: 0,
                canary_index: 1,
                stable_weight: Some(1),
                canary_weight: Some(0),
                generation: Some(1),
                parents_accepted: true,
            },
            parents_follow: true,
            canary_ready: 2,
            stable_ready: 2,
            now: 0,
            next_verdicts: vec![
                verdict("errors", Verdict::Pass),
                verdict("shed", Verdict::Pass),
            ],
            conflict_with: None,
            route_missing: None,
            decisions: Vec::new(),
        }
    }

    fn observations(&self) -> Observations {
        let now = at(self.now);
        let analysis = analysis_window(&self.spec, &self.status, now).map(|window| WindowResult {
            end: window.end,
            verdicts: self.next_verdicts.clone(),
        });
        Observations {
            now,
            generation: Some(1),
            route: match &self.route_missing {
                Some(message) => RouteObservation::Missing(message.clone()),
                None => RouteObservation::Found(self.route.clone()),
            },
            canary_ready: self.canary_ready,
            stable_ready: self.stable_ready,
            analysis,
            conflict_with: self.conflict_with.clone(),
        }
    }

    /// One reconcile: plan, then do what the shell does (write the route,
    /// keep the status).
    fn tick(&mut self) -> &Decision {
        let decision = plan(&self.spec, &self.status, &self.observations());
        if let Some(weights) = decision.write {
            self.set_route(weights.stable, weights.canary);
        }
        self.status = decision.status.clone();
        self.decisions.push(decision);
        self.decisions.last().unwrap()
    }

    /// Someone (us or another actor) writes the route's weights.
    fn set_route(&mut self, stable: i32, canary: i32) {
        self.route.stable_weight = Some(stable);
        self.route.canary_weight = Some(canary);
        self.route.generation = Some(self.route.generation.unwrap_or(0) + 1);
        self.route.parents_accepted = self.parents_follow;
    }

    fn advance(&mut self, seconds: i64) {
        self.now += seconds;
    }

    /// Ticks, then moves the clock a minute, `n` times.
    fn run_minutes(&mut self, n: usize) {
        for _ in 0..n {
            self.tick();
            self.advance(60);
        }
    }

    fn intent(&mut self, action: IntentAction, nonce: &str) -> &mut Intent {
        self.status.intent = Some(Intent {
            action,
            nonce: nonce.into(),
            by: "alice".into(),
            at: Time(at(self.now)),
            mode: None,
            canary_weight: None,
            reason: String::new(),
        });
        self.status.intent.as_mut().unwrap()
    }

    fn phase(&self) -> switchyard_api::rollout::Phase {
        self.status.phase.unwrap()
    }

    fn route_weights(&self) -> (i32, i32) {
        self.route.effective()
    }

    fn step(&self) -> i32 {
        self.status.current_step.unwrap()
    }

    fn desired(&self) -> Weights {
        self.status.weights.as_ref().unwrap().desired.unwrap()
    }

    fn all_event_reasons(&self) -> Vec<&'static str> {
        self.decisions
            .iter()
            .flat_map(|d| d.events.iter().map(|e| e.reason))
            .collect()
    }

    fn last_events(&self) -> Vec<&'static str> {
        self.decisions
            .last()
            .unwrap()
            .events
            .iter()
            .map(|e| e.reason)
            .collect()
    }

    fn condition(&self, type_: &str) -> (&str, &str) {
        let c = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap();
        (c.status.as_str(), c.reason.as_str())
    }
}
