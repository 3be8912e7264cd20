//! Route planning: precedence, missing and unusable backends, unsupported features.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[test]
fn a_missing_pool_answers_500_and_warns_with_the_known_pools() {
    let yaml = pool("a", "FailClose") + &route(&rule_on_model("m", &pool_ref("nope", 1)));
    let config = translate_yaml(&yaml).unwrap();
    let RouteAction::Respond { status, body } = &config.routes()[0].action else {
        panic!("expected a local answer: {:?}", config.routes()[0]);
    };
    assert_eq!(*status, 500);
    assert!(
        body.contains("InferencePool default/nope does not exist"),
        "{body}"
    );
    let warning = config.warnings()[0].to_string();
    assert!(
        warning.starts_with("HTTPRoute default/r: spec.rules[0].backendRefs[0]"),
        "{warning}"
    );
    assert!(warning.contains("name one of: default/a"), "{warning}");
    let routes = envoy_routes(&config);
    assert_eq!(routes[0]["direct_response"]["status"], 500);
    assert_eq!(
        routes[0]["typed_per_filter_config"][PICKER_FILTER]["disabled"],
        true
    );
}

#[test]
fn a_missing_pool_among_others_gets_its_share_failed_closed() {
    let backends = pool_ref("a", 3) + &pool_ref("nope", 1);
    let yaml = pool("a", "FailClose") + &route(&rule_on_model("m", &backends));
    let config = translate_yaml(&yaml).unwrap();
    assert_eq!(
        config.routes()[0].action,
        RouteAction::Forward(vec![
            WeightedBackend {
                backend: Backend::Pool {
                    pool: PoolKey::new("default", "a"),
                    fail_open: false
                },
                weight: 3
            },
            WeightedBackend {
                backend: Backend::Invalid,
                weight: 1
            },
        ])
    );
    let invalid = &envoy_routes(&config)[0]["route"]["weighted_clusters"]["clusters"][1];
    // No per-entry picker: the connection manager's applies, which has no endpoints.
    assert_eq!(invalid["typed_per_filter_config"], Value::Null);
    assert_eq!(invalid["weight"], 1);
    assert_eq!(config.warnings().len(), 1);
}

#[test]
fn services_and_empty_rules_answer_500() {
    let service = "    - {name: svc, port: 80}\n";
    let rules = rule_on_model("svc", service)
        + "  - matches:\n    - path: {type: Exact, value: /none}\n"
        + &rule_on_model("zero", &pool_ref("a", 0));
    let config = translate_yaml(&(pool("a", "FailClose") + &route(&rules))).unwrap();
    let bodies: Vec<String> = config
        .routes()
        .iter()
        .filter_map(|r| match &r.action {
            RouteAction::Respond { status: 500, body } => Some(body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(
        bodies.iter().any(|b| b.contains("Service svc")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.contains("has no backendRefs")),
        "{bodies:?}"
    );
    assert!(bodies.iter().any(|b| b.contains("weight 0")), "{bodies:?}");
}

#[test]
fn precedence_follows_gateway_api() {
    let backends = pool_ref("a", 1);
    let rules = [
        "  - matches:\n    - path: {type: PathPrefix, value: /v1/}\n",
        "  - matches:\n    - path: {type: PathPrefix, value: /v1/chat}\n",
        "  - matches:\n    - path: {type: Exact, value: /v1}\n",
        "  - matches:\n    - path: {type: PathPrefix, value: /v1}\n      method: POST\n",
        "  - matches:\n    - path: {type: PathPrefix, value: /v1}\n      headers: [{name: a, value: b}]\n",
        "  - matches:\n    - path: {type: RegularExpression, value: '/v[0-9]+/x'}\n",
    ]
    .map(|r| r.to_owned() + "    backendRefs:\n" + &backends)
    .concat();
    let config = translate_yaml(&(pool("a", "FailClose") + &route(&rules))).unwrap();
    let order: Vec<&str> = config.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "default/r/rule2/match0",
            "default/r/rule5/match0",
            "default/r/rule1/match0",
            "default/r/rule3/match0",
            "default/r/rule4/match0",
            "default/r/rule0/match0",
            "no-matching-rule",
        ]
    );
    let routes = envoy_routes(&config);
    assert_eq!(routes[0]["match"], json!({"path": "/v1"}));
    assert_eq!(
        routes[1]["match"],
        json!({"safe_regex": {"regex": "/v[0-9]+/x"}})
    );
    assert_eq!(
        routes[2]["match"],
        json!({"path_separated_prefix": "/v1/chat"})
    );
    assert_eq!(
        routes[3]["match"]["headers"],
        json!([{"name": ":method", "string_match": {"exact": "POST"}}])
    );
    // The trailing slash of `/v1/` does not count.
    assert_eq!(routes[5]["match"], json!({"path_separated_prefix": "/v1"}));
}

#[test]
fn unsupported_features_are_errors_that_say_what_to_change() {
    let backends = pool_ref("a", 1);
    let rules = format!(
        "  - filters: [{{type: RequestHeaderModifier}}]\n    backendRefs:\n{backends}\
         \x20 - matches:\n    - queryParams: [{{name: q, value: v}}]\n    backendRefs:\n{backends}\
         \x20 - matches:\n    - headers: [{{type: Prefix, name: h, value: v}}]\n    backendRefs:\n{backends}"
    );
    let err = translate_yaml(&(pool("a", "FailClose") + &route(&rules))).unwrap_err();
    let Error::Manifests { problems } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains("spec.rules[0].filters is not supported"),
        "{err}"
    );
    assert!(
        problems[1].contains("spec.rules[1].matches[0].queryParams"),
        "{err}"
    );
    assert!(
        problems[2].contains("write Exact or RegularExpression"),
        "{err}"
    );
}

#[test]
fn rule_timeouts_set_the_route_timeout() {
    let rules = rule_on_model("a", &pool_ref("a", 1)).replace(
        "    backendRefs:",
        "    timeouts: {request: 1m30s, backendRequest: 10s}\n    backendRefs:",
    ) + &rule_on_model("b", &pool_ref("a", 1));
    let config = translate_yaml(&(pool("a", "FailClose") + &route(&rules))).unwrap();
    let routes = envoy_routes(&config);
    assert_eq!(routes[0]["route"]["timeout"], "90.000s");
    // The gateway's default elsewhere.
    assert_eq!(routes[1]["route"]["timeout"], "300.000s");
    assert!(
        config.warnings()[0]
            .message
            .contains("timeouts.backendRequest is ignored"),
        "{:?}",
        config.warnings()
    );

    let bad = rule_on_model("a", &pool_ref("a", 1)).replace(
        "    backendRefs:",
        "    timeouts: {request: 5 minutes}\n    backendRefs:",
    );
    let err = translate_yaml(&(pool("a", "FailClose") + &route(&bad)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.rules[0].timeouts.request"), "{err}");
    assert!(err.contains("write e.g. 300s"), "{err}");
}

#[test]
fn gateway_api_durations() {
    use crate::translate::routes::rules::parse_gateway_duration as parse;
    let cases = [
        ("0s", Some(Duration::ZERO)),
        ("300s", Some(Duration::from_secs(300))),
        ("1h30m", Some(Duration::from_secs(5400))),
        ("1h2m3s4ms", Some(Duration::from_millis(3_723_004))),
        ("500ms", Some(Duration::from_millis(500))),
        ("", None),
        ("5", None),
        ("1d", None),
        ("123456s", None),
        ("1h1h1h1h1h", None),
        ("-1s", None),
        ("1.5s", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text), expected, "{text:?}");
    }
}

#[test]
fn paths_and_header_names_envoy_would_reject_are_errors() {
    let rule = |m: &str| {
        format!(
            "  - matches:\n    - {m}\n    backendRefs:\n{}",
            pool_ref("a", 1)
        )
    };
    let cases = [
        ("path: {type: Exact, value: v1}", "must be an absolute path"),
        (
            "path: {type: PathPrefix, value: '/v1?x=1'}",
            "without query or fragment",
        ),
        (
            "headers: [{name: 'bad header', value: v}]",
            "is not an HTTP header name",
        ),
        (
            "headers: [{name: x-gateway-destination-endpoint, value: v}]",
            "endpoint picker's answer",
        ),
    ];
    for (m, expected) in cases {
        let err = translate_yaml(&(pool("a", "FailClose") + &route(&rule(m))))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{m}: {err}");
    }
    // A regular expression is passed to Envoy as written.
    let ok = rule("path: {type: RegularExpression, value: '.*/completions'}");
    assert!(translate_yaml(&(pool("a", "FailClose") + &route(&ok))).is_ok());
}
