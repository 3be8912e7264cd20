//! HTTPRoute rules → an ordered route table, before any Envoy syntax.
//!
//! Order follows Gateway API precedence across all routes: an exact path beats a regular
//! expression, which beats a prefix, longer prefixes beat shorter ones, then a method match,
//! then more header matches; ties keep the routes sorted by namespace/name and their rules and
//! matches in the order written. A regular expression's place is ours to choose (the API
//! leaves it to implementations).

use std::collections::BTreeSet;
use std::time::Duration;

use switchyard_api::HttpRoute;
use switchyard_api::httproute::{HttpBackendRef, HttpRouteRule};
use switchyard_api::legacy::LEGACY_GROUP;
use switchyard_api::reference::{INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};

pub(super) mod rules;

use rules::{rule_matches, rule_timeout};

use super::manifests::namespace_of;
use super::{Manifests, PoolKey, Warning};

/// A condition on the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// The path equals this.
    Exact(String),
    /// The path starts with these segments (`/` matches every path; `/v1` matches `/v1` and
    /// `/v1/models` but not `/v10`).
    Prefix(String),
    /// The path matches this RE2 expression.
    Regex(String),
}

/// A condition on one request header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderCondition {
    /// The header name, lowercase.
    pub name: String,
    /// The value, or the RE2 expression when `regex`.
    pub value: String,
    /// Whether `value` is a regular expression.
    pub regex: bool,
}

/// Everything a request must satisfy to take a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The path condition.
    pub path: PathMatch,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderCondition>,
    /// The HTTP method, when the rule names one.
    pub method: Option<String>,
    /// Whether `x-gateway-destination-endpoint` must be present: the first of a `FailOpen`
    /// pair of routes, taken once the picker has answered.
    pub destination_present: bool,
}

/// Where a share of a rule's traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The pool's ORIGINAL_DST cluster, through its picker.
    Pool {
        /// The pool.
        pool: PoolKey,
        /// Whether the pool's picker may be bypassed when it is down.
        fail_open: bool,
    },
    /// The round-robin cluster of a `FailOpen` pool's endpoints, taken when its picker did
    /// not answer (the picker still runs first).
    Fallback(PoolKey),
    /// A backendRef that cannot be served (a missing pool, a Service): its share gets 500.
    Invalid,
}

/// A backend and its weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedBackend {
    /// Where the traffic goes.
    pub backend: Backend,
    /// Its share is `weight / sum(weights)`; always positive.
    pub weight: u32,
}

/// What a route does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Split the traffic between backends.
    Forward(Vec<WeightedBackend>),
    /// Answer locally.
    Respond {
        /// The HTTP status.
        status: u16,
        /// The body, one line saying why.
        body: String,
    },
}

/// One Envoy route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRoute {
    /// `namespace/route/rule/match`, as shown in Envoy's access log.
    pub name: String,
    /// The conditions.
    pub matches: RouteMatch,
    /// The action.
    pub action: RouteAction,
    /// The rule's `timeouts.request` (zero: none); the gateway's default when unset.
    pub timeout: Option<Duration>,
}

/// Plans the route table of every HTTPRoute; problems that stop the translation go to
/// `problems`.
pub(super) fn plan(
    manifests: &Manifests,
    problems: &mut Vec<String>,
) -> (Vec<PlannedRoute>, Vec<Warning>) {
    let pools: BTreeSet<PoolKey> = manifests.pool_keys().into_iter().collect();
    let fail_open = manifests.fail_open_pools();
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    let mut routes: Vec<&HttpRoute> = manifests.routes.iter().collect();
    routes.sort_by_key(|route| (namespace_of(*route), route.metadata.name.as_deref()));
    for route in routes {
        let namespace = namespace_of(route);
        let name = route.metadata.name.as_deref().unwrap_or("<unnamed>");
        let object = format!("HTTPRoute {namespace}/{name}");
        let context = RuleContext {
            namespace,
            object: &object,
            pools: &pools,
            fail_open: &fail_open,
        };
        if route.spec.extra.contains_key("hostnames") {
            warnings.push(Warning {
                object: object.clone(),
                message: "spec.hostnames is ignored: the local gateway answers every host name"
                    .to_owned(),
            });
        }
        for (rule_index, rule) in route.spec.rules().iter().enumerate() {
            let rule_name = rule
                .name
                .clone()
                .unwrap_or_else(|| format!("rule{rule_index}"));
            let prefix = format!("{namespace}/{name}/{rule_name}");
            let at = format!("spec.rules[{rule_index}]");
            let Some(action) = rule_action(&context, rule, &at, problems, &mut warnings) else {
                continue;
            };
            let timeout = rule_timeout(rule, &object, &at, problems, &mut warnings);
            let matches = rule_matches(rule, &object, &at, problems);
            for (match_index, matches) in matches.into_iter().enumerate() {
                candidates.push(Candidate {
                    rank: Rank::of(&matches),
                    order: candidates.len(),
                    route: PlannedRoute {
                        name: format!("{prefix}/match{match_index}"),
                        matches,
                        action: action.clone(),
                        timeout,
                    },
                });
            }
        }
    }
    candidates.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.order.cmp(&b.order)));
    let mut planned = Vec::new();
    for candidate in candidates {
        expand_fail_open(candidate.route, &mut planned);
    }
    planned.push(PlannedRoute {
        name: "no-matching-rule".to_owned(),
        matches: RouteMatch {
            path: PathMatch::Prefix("/".to_owned()),
            headers: Vec::new(),
            method: None,
            destination_present: false,
        },
        action: RouteAction::Respond {
            status: 404,
            body: "no HTTPRoute rule matches this request\n".to_owned(),
        },
        timeout: None,
    });
    (planned, warnings)
}

struct RuleContext<'a> {
    namespace: &'a str,
    object: &'a str,
    pools: &'a BTreeSet<PoolKey>,
    fail_open: &'a BTreeSet<PoolKey>,
}

struct Candidate {
    rank: Rank,
    order: usize,
    route: PlannedRoute,
}

/// Gateway API precedence, compared field by field, greater first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// Exact 2, regular expression 1, prefix 0.
    path_kind: u8,
    /// The prefix's length (0 for the others).
    prefix_len: usize,
    has_method: bool,
    headers: usize,
}

impl Rank {
    fn of(matches: &RouteMatch) -> Self {
        let (path_kind, prefix_len) = match &matches.path {
            PathMatch::Exact(_) => (2, 0),
            PathMatch::Regex(_) => (1, 0),
            PathMatch::Prefix(prefix) => (0, prefix.len()),
        };
        Self {
            path_kind,
            prefix_len,
            has_method: matches.method.is_some(),
            headers: matches.headers.len(),
        }
    }
}

/// A route that sends traffic to a `FailOpen` pool becomes two: with the destination header
/// (the picker answered) to the pools, then without it to the fallback. The weights are the
/// same, so Envoy — which draws the weighted choice from the stream id, stable across route
/// cache clears — picks the same pool in both.
fn expand_fail_open(route: PlannedRoute, planned: &mut Vec<PlannedRoute>) {
    let RouteAction::Forward(backends) = &route.action else {
        planned.push(route);
        return;
    };
    let any_fail_open = backends.iter().any(|b| {
        matches!(
            b.backend,
            Backend::Pool {
                fail_open: true,
                ..
            }
        )
    });
    if !any_fail_open {
        planned.push(route);
        return;
    }
    let fallback = backends
        .iter()
        .map(|b| WeightedBackend {
            backend: match &b.backend {
                Backend::Pool {
                    pool,
                    fail_open: true,
                } => Backend::Fallback(pool.clone()),
                other => other.clone(),
            },
            weight: b.weight,
        })
        .collect();
    let mut picked = route.clone();
    picked.matches.destination_present = true;
    planned.push(picked);
    planned.push(PlannedRoute {
        name: format!("{}/picker-down", route.name),
        matches: route.matches,
        action: RouteAction::Forward(fallback),
        timeout: route.timeout,
    });
}

/// The rule's action, or `None` (with a problem recorded) when it cannot be served.
fn rule_action(
    context: &RuleContext<'_>,
    rule: &HttpRouteRule,
    at: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
) -> Option<RouteAction> {
    let object = context.object;
    if rule.extra.contains_key("filters") {
        problems.push(format!(
            "{object}: {at}.filters is not supported by the local gateway: remove the filters \
             (or test them on a cluster)"
        ));
        return None;
    }
    for ignored in ["retry", "sessionPersistence"] {
        if rule.extra.contains_key(ignored) {
            warnings.push(Warning {
                object: object.to_owned(),
                message: format!("{at}.{ignored} is ignored by the local gateway"),
            });
        }
    }
    let mut backends = Vec::new();
    let mut reasons = Vec::new();
    for (index, backend_ref) in rule.backend_refs().iter().enumerate() {
        let at = format!("{at}.backendRefs[{index}]");
        if backend_ref.extra.contains_key("filters") {
            problems.push(format!(
                "{object}: {at}.filters is not supported by the local gateway: remove them"
            ));
            return None;
        }
        let weight = backend_ref.effective_weight();
        let Ok(weight) = u32::try_from(weight) else {
            problems.push(format!(
                "{object}: {at}.weight must be 0 or more, got {weight}"
            ));
            return None;
        };
        let backend = resolve(context, backend_ref, &at, warnings, &mut reasons);
        if weight > 0 {
            backends.push(WeightedBackend { backend, weight });
        }
    }
    let usable = backends.iter().any(|b| b.backend != Backend::Invalid);
    if usable {
        return Some(RouteAction::Forward(backends));
    }
    let why = if rule.backend_refs().is_empty() {
        "the rule has no backendRefs".to_owned()
    } else if backends.is_empty() {
        "every backendRef of the rule has weight 0".to_owned()
    } else {
        reasons.join("; ")
    };
    Some(RouteAction::Respond {
        status: 500,
        body: format!("{object} {at}: {why}\n"),
    })
}

/// What a backendRef points at; unusable ones are explained in a warning and in `reasons`.
fn resolve(
    context: &RuleContext<'_>,
    backend_ref: &HttpBackendRef,
    at: &str,
    warnings: &mut Vec<Warning>,
    reasons: &mut Vec<String>,
) -> Backend {
    let group = backend_ref.effective_group();
    let kind = backend_ref.effective_kind();
    let name = &backend_ref.name;
    let mut invalid = |message: String| {
        reasons.push(message.clone());
        warnings.push(Warning {
            object: context.object.to_owned(),
            message: format!("{at}: {message}"),
        });
        Backend::Invalid
    };
    let is_pool =
        kind == INFERENCE_POOL_KIND && (group == INFERENCE_POOL_GROUP || group == LEGACY_GROUP);
    if !is_pool {
        return invalid(format!(
            "{kind} {name} (group {group:?}) cannot be served by the local gateway, which has \
             no Kubernetes Services; its share of the traffic gets 500. Point the backendRef \
             at an InferencePool (group: {INFERENCE_POOL_GROUP}, kind: {INFERENCE_POOL_KIND})"
        ));
    }
    let namespace = backend_ref
        .namespace
        .as_deref()
        .unwrap_or(context.namespace);
    let pool = PoolKey::new(namespace, name.as_str());
    if !context.pools.contains(&pool) {
        let known = context
            .pools
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return invalid(format!(
            "InferencePool {pool} does not exist, so its share of the traffic gets 500; \
             add the pool's manifest or name one of: {known}"
        ));
    }
    Backend::Pool {
        fail_open: context.fail_open.contains(&pool),
        pool,
    }
}
