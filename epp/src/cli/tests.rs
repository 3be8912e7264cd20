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
    assert_eq!(config.scorers.len(), 3);
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
