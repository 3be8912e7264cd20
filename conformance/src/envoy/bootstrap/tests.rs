#![allow(clippy::unwrap_used)]

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn cluster<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn ext_proc_cluster_speaks_http2_and_filter_runs_before_router() {
    let json = Bootstrap::new()
        .ext_proc(ExtProc::new("bbr", addr(9004)))
        .to_json();
    let ext_proc = cluster(&json, "ext_proc_bbr");
    let options = &ext_proc["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(options["explicit_http_config"]["http2_protocol_options"].is_object());
    let endpoint = &ext_proc["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    assert_eq!(endpoint["address"]["socket_address"]["port_value"], 9004);

    let filters =
        json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_array()
            .unwrap();
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.ext_proc.bbr",
            "envoy.filters.http.router"
        ]
    );
    let config = &filters[0]["typed_config"];
    assert_eq!(config["failure_mode_allow"], false);
    assert_eq!(config["processing_mode"]["request_body_mode"], "BUFFERED");
    assert_eq!(
        config["grpc_service"]["envoy_grpc"]["cluster_name"],
        "ext_proc_bbr"
    );
    assert_eq!(config["message_timeout"], "5s");
}

#[test]
fn ext_proc_options_reach_the_filter() {
    let json = Bootstrap::new()
        .ext_proc(
            ExtProc::new("x", addr(1))
                .failure_mode_allow(true)
                .body_mode(BodyMode::None)
                .message_timeout(Duration::from_millis(250)),
        )
        .to_json();
    let config = &json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"];
    assert_eq!(config["failure_mode_allow"], true);
    assert_eq!(config["processing_mode"]["request_body_mode"], "NONE");
    assert_eq!(config["message_timeout"], "0.250s");
}

#[test]
fn header_routes_come_before_the_404_fallback() {
    let json = Bootstrap::new()
        .route(Route::on_header(
            "a",
            MODEL_HEADER,
            "model-a",
            &[addr(8001)],
        ))
        .route(Route::on_header(
            "b",
            MODEL_HEADER,
            "model-b",
            &[addr(8002), addr(8003)],
        ))
        .to_json();
    let routes =
        json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(routes[0]["match"]["headers"][0]["name"], MODEL_HEADER);
    assert_eq!(
        routes[1]["match"]["headers"][0]["string_match"]["exact"],
        "model-b"
    );
    assert_eq!(routes[1]["route"]["cluster"], "route_b");
    assert_eq!(routes[2]["direct_response"]["status"], 404);
    let b = cluster(&json, "route_b");
    assert_eq!(
        b["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn listener_and_admin_default_to_ephemeral_loopback_ports() {
    let json = Bootstrap::new().to_json();
    let listener = &json["static_resources"]["listeners"][0];
    assert_eq!(listener["name"], LISTENER_NAME);
    assert_eq!(
        listener["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
    assert_eq!(listener["address"]["socket_address"]["port_value"], 0);
    assert_eq!(json["admin"]["address"]["socket_address"]["port_value"], 0);
    // The rendered text is what Envoy reads; it must round-trip.
    let reparsed: Value = serde_json::from_str(&Bootstrap::new().render()).unwrap();
    assert_eq!(reparsed, json);
}

fn http_filters(json: &Value) -> &Vec<Value> {
    json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array()
        .unwrap()
}

#[test]
fn endpoint_picker_mode_streams_both_ways_with_metadata() {
    let json = Bootstrap::new()
        .ext_proc(ExtProc::endpoint_picker("epp", addr(9002)).tls(true))
        .to_json();
    let config = &http_filters(&json)[0]["typed_config"];
    let mode = &config["processing_mode"];
    for (field, value) in [
        ("request_header_mode", "SEND"),
        ("request_body_mode", "FULL_DUPLEX_STREAMED"),
        ("request_trailer_mode", "SEND"),
        ("response_header_mode", "SEND"),
        ("response_body_mode", "FULL_DUPLEX_STREAMED"),
        ("response_trailer_mode", "SEND"),
    ] {
        assert_eq!(mode[field], value, "{field}");
    }
    assert_eq!(
        config["metadata_options"]["receiving_namespaces"]["untyped"][0],
        "envoy.lb"
    );
    assert_eq!(
        config["metadata_options"]["forwarding_namespaces"]["untyped"][0],
        "envoy.lb.subset_hint"
    );
    let tls = &cluster(&json, "ext_proc_epp")["transport_socket"]["typed_config"];
    assert_eq!(tls["common_tls_context"]["alpn_protocols"][0], "h2");
    // The BUFFERED default leaves the response alone and has no metadata options.
    let plain = Bootstrap::new()
        .ext_proc(ExtProc::new("bbr", addr(1)))
        .to_json();
    let config = &http_filters(&plain)[0]["typed_config"];
    assert_eq!(config["processing_mode"]["response_header_mode"], "SKIP");
    assert_eq!(config["processing_mode"]["request_trailer_mode"], "SKIP");
    assert!(config.get("metadata_options").is_none());
    assert!(
        cluster(&plain, "ext_proc_bbr")
            .get("transport_socket")
            .is_none()
    );
}

#[test]
fn pool_routes_use_original_dst_and_per_route_ext_proc() {
    let epp = ExtProc::endpoint_picker("epp", addr(9002));
    let json = Bootstrap::new()
        .header_to_metadata(
            "x-test-subset",
            "envoy.lb.subset_hint",
            "x-gateway-destination-endpoint-subset",
        )
        .ext_proc(epp.clone())
        .grpc_cluster("epp_b", addr(9012), false)
        .route(Route::to_pool("a", MODEL_HEADER, "model-a"))
        .route(
            Route::to_pool("b", MODEL_HEADER, "model-b")
                .ext_proc_cluster(epp.filter_name(), "epp_b"),
        )
        .route(
            Route::on_header("c", MODEL_HEADER, "model-c", &[addr(8003)])
                .ext_proc_disabled(epp.filter_name()),
        )
        .to_json();
    let pool = cluster(&json, "route_a");
    assert_eq!(pool["type"], "ORIGINAL_DST");
    assert_eq!(pool["lb_policy"], "CLUSTER_PROVIDED");
    assert_eq!(pool["original_dst_lb_config"]["use_http_header"], true);
    assert_eq!(
        pool["original_dst_lb_config"]["http_header_name"],
        DESTINATION_HEADER
    );
    let epp_b = cluster(&json, "epp_b");
    assert!(epp_b["typed_extension_protocol_options"].is_object());
    let routes =
        json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
    assert!(routes[0].get("typed_per_filter_config").is_none());
    let per_route = &routes[1]["typed_per_filter_config"][epp.filter_name()];
    assert_eq!(
        per_route["overrides"]["grpc_service"]["envoy_grpc"]["cluster_name"],
        "epp_b"
    );
    assert_eq!(
        routes[2]["typed_per_filter_config"][epp.filter_name()]["disabled"],
        true
    );
    let filters = http_filters(&json);
    let rule = &filters[0]["typed_config"]["request_rules"][0];
    assert_eq!(rule["header"], "x-test-subset");
    assert_eq!(
        rule["on_header_present"]["metadata_namespace"],
        "envoy.lb.subset_hint"
    );
    assert_eq!(filters[1]["name"], epp.filter_name());
}
