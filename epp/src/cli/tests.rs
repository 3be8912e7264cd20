use super::*;

fn parse(args: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("switchyard-epp").chain(args.iter().copied())).unwrap()
}

#[test]
fn defaults_mirror_upstream() {
    let args = parse(&["--pool-name", "p"]);
    let [grpc, health, metrics] = args.addresses().unwrap();
    assert_eq!(
        (grpc.port(), health.port(), metrics.port()),
        (9002, 9003, 9090)
    );
    assert_eq!(args.refresh_metrics_interval, Duration::from_millis(50));
    assert_eq!(args.pool_namespace, "default");
    assert!(args.secure_serving);
    assert_eq!(args.cert_source(), Some(CertSource::SelfSigned));
    assert!(!args.disable_endpoint_subset_filter);
    let config = args.scheduler_config().unwrap();
    assert_eq!(config.picker.max_endpoints, 1);
    assert_eq!(config.scorers.len(), 4, "queue, KV, prefix, LoRA affinity");
    assert_eq!(args.pool_name().unwrap(), "p");
}

#[test]
fn go_style_booleans_and_durations() {
    let args = parse(&[
        "--endpoints-file",
        "pool.yaml",
        "--secure-serving=false",
        "--disable-endpoint-subset-filter",
        "--refresh-metrics-interval",
        "1m30s",
        "--max-endpoints",
        "3",
    ]);
    assert_eq!(args.cert_source(), None);
    assert!(args.disable_endpoint_subset_filter);
    assert_eq!(args.refresh_metrics_interval, Duration::from_secs(90));
    assert_eq!(args.scheduler_config().unwrap().picker.max_endpoints, 3);
    assert_eq!(args.pool_name().unwrap(), "standalone");
    let args = parse(&[
        "--pool-name",
        "p",
        "--cert-path",
        "/tls",
        "--enable-cert-reload=false",
    ]);
    assert_eq!(
        args.cert_source(),
        Some(CertSource::Dir {
            path: "/tls".into(),
            poll: None
        })
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    for bad in ["", "ms", "5 parsecs", "-1", "1x"] {
        let err = parse_duration(bad).unwrap_err();
        assert!(err.contains("not a duration"), "{bad}: {err}");
    }
}

#[test]
fn bad_values_name_the_flag() {
    let err = parse(&["--metrics-port", "9002"]).addresses().unwrap_err();
    assert!(err.to_string().contains("9002"), "{err}");
    let err = parse(&["--max-endpoints", "0"])
        .scheduler_config()
        .unwrap_err();
    assert!(err.to_string().contains("--max-endpoints"), "{err}");
    let err = parse(&[]).pool_name().unwrap_err();
    assert!(err.to_string().contains("--endpoints-file"), "{err}");
    let err = parse(&["--config-file", "/nonexistent/epp.yaml"])
        .scheduler_config()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/epp.yaml"), "{err}");
    let err = parse(&["--config-text", "plugins: [{type: no-such-plugin}]"])
        .scheduler_config()
        .unwrap_err();
    assert!(err.to_string().contains("no-such-plugin"), "{err}");
    assert!(
        Args::try_parse_from(["switchyard-epp", "--refresh-metrics-interval", "soon"]).is_err()
    );
}

#[test]
fn the_rewrite_session_header_is_lowercased_and_checked() {
    let args = parse(&[
        "--pool-name",
        "p",
        "--model-rewrite-session-header",
        "X-Session-Id",
    ]);
    assert_eq!(
        args.model_rewrite_session_header.as_deref(),
        Some("x-session-id")
    );
    assert_eq!(
        parse(&["--pool-name", "p"]).model_rewrite_session_header,
        None
    );
    let err = Args::try_parse_from([
        "switchyard-epp",
        "--model-rewrite-session-header",
        "bad header",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("is not an HTTP header name"), "{err}");
}

#[test]
fn h3_kubernetes_mode_trusts_no_client_headers_by_default() {
    assert_eq!(
        parse(&["--pool-name", "p"]).header_trust().unwrap(),
        HeaderTrust::Never
    );
    // Standalone (local stack, a single trusted caller) keeps trusting them.
    assert_eq!(
        parse(&["--endpoints-file", "pool.yaml"])
            .header_trust()
            .unwrap(),
        HeaderTrust::Always
    );
    assert_eq!(
        parse(&[
            "--pool-name",
            "p",
            "--flow-control-trusted-header",
            "X-Switchyard-Trusted-Caller"
        ])
        .header_trust()
        .unwrap(),
        HeaderTrust::WhenMarked("x-switchyard-trusted-caller".into())
    );
}

#[test]
fn l15_never_and_always_are_selectable_and_contradictions_refused() {
    let trust = |args: &[&str]| parse(args).header_trust();
    assert_eq!(
        trust(&["--endpoints-file", "f", "--trust-client-headers", "never"]).unwrap(),
        HeaderTrust::Never
    );
    assert_eq!(
        trust(&["--pool-name", "p", "--trust-client-headers=always"]).unwrap(),
        HeaderTrust::Always
    );
    let err = trust(&[
        "--pool-name",
        "p",
        "--trust-client-headers=never",
        "--flow-control-trusted-header=x-marker",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("--trust-client-headers"), "{err}");
}

#[test]
fn l15_the_marker_must_be_a_header_name_and_not_a_steering_header() {
    let parse_err = |marker: &str| {
        Args::try_parse_from([
            "switchyard-epp",
            "--pool-name",
            "p",
            "--flow-control-trusted-header",
            marker,
        ])
        .unwrap_err()
        .to_string()
    };
    for bad in [
        "",
        "x marker",
        ":authority",
        "x-gateway-inference-objective",
    ] {
        let err = parse_err(bad);
        assert!(
            err.contains("--flow-control-trusted-header"),
            "{bad}: {err}"
        );
    }
    assert!(parse_err("x-gateway-model-name-rewrite").contains("steering header"));
}

#[test]
fn l15_a_marker_can_require_a_shared_value() {
    let trust = parse(&[
        "--pool-name",
        "p",
        "--flow-control-trusted-header=X-Switchyard-Trusted-Caller=s3cret",
    ])
    .header_trust()
    .unwrap();
    assert_eq!(
        trust,
        HeaderTrust::WhenMarkedWith {
            header: "x-switchyard-trusted-caller".into(),
            value: "s3cret".into()
        }
    );
    let err = Args::try_parse_from([
        "switchyard-epp",
        "--pool-name",
        "p",
        "--flow-control-trusted-header=x-marker=",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("no value"), "{err}");
}

mod upstream;
