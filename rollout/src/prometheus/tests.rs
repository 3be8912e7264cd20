//! Answer parsing and the client's error paths against real sockets on
//! loopback (a listener that never answers, a closed port, a server speaking
//! something else). Queries against a real Prometheus are in
//! `tests/prometheus_source.rs`.

use http::StatusCode;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::rollout::PrometheusSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{AllowedAddresses, Prometheus, form_encode, parse_answer};

#[test]
fn answers_table() {
    let ok = StatusCode::OK;
    let cases: [(&str, Result<Option<f64>, &str>); 8] = [
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"0.25"]}]}}"#,
            Ok(Some(0.25)),
        ),
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#,
            Ok(Some(3.0)),
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            Ok(None),
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"NaN"]}]}}"#,
            Ok(None),
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#,
            Err("returned 2 series"),
        ),
        (
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            Err("returned a matrix"),
        ),
        (
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#,
            Err("refused the query (bad_data)"),
        ),
        ("<html>nginx</html>", Err("not a Prometheus API answer")),
    ];
    for (body, expected) in cases {
        match (parse_answer(ok, body.as_bytes()), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{body}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{body}: {got}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn form_encoding_escapes_promql() {
    assert_eq!(
        form_encode("sum(x{a=\"b\"}) / 2"),
        "sum%28x%7Ba%3D%22b%22%7D%29+%2F+2"
    );
}

#[test]
fn only_http_addresses_with_valid_timeouts_are_accepted() {
    let err = Prometheus::new(
        &PrometheusSource::at("https://prom:9090"),
        &AllowedAddresses::any(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("only http:// addresses"), "{err}");
    let mut source = PrometheusSource::at("http://prom:9090");
    source.timeout = "soon".into();
    let err = Prometheus::new(&source, &AllowedAddresses::any()).unwrap_err();
    assert!(err.to_string().contains("timeout \"soon\""), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out_with_advice() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut source = PrometheusSource::at(format!("http://{addr}"));
    source.timeout = "300ms".into();
    let err = Prometheus::new(&source, &AllowedAddresses::any())
        .unwrap()
        .instant("up", Timestamp::now())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("no answer within 300ms"), "{message}");
    assert!(message.contains("\"up\""), "names the query: {message}");
}

#[tokio::test]
async fn a_closed_port_says_it_cannot_reach_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Prometheus::new(
        &PrometheusSource::at(format!("http://{addr}")),
        &AllowedAddresses::any(),
    )
    .unwrap()
    .instant("up", Timestamp::now())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot reach it"), "{err}");
    assert!(err.to_string().contains("prometheus.address"), "{err}");
}

#[tokio::test]
async fn a_non_prometheus_server_is_reported_with_its_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let body = "not found";
        let reply = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await.unwrap();
    });
    let err = Prometheus::new(
        &PrometheusSource::at(format!("http://{addr}/prefix/")),
        &AllowedAddresses::any(),
    )
    .unwrap()
    .instant("up", Timestamp::now())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("HTTP 404 Not Found"), "{err}");
}

#[test]
fn m3_nothing_the_server_sends_is_echoed_into_the_error() {
    let secret = "internal-secret-token-0123456789";
    for body in [
        format!("<html>{secret}</html>"),
        format!(r#"{{"status":"error","errorType":"bad_data","error":"{secret}"}}"#),
        format!(r#"{{"status":"error","errorType":"{secret}","error":"x"}}"#),
    ] {
        let err = parse_answer(StatusCode::OK, body.as_bytes()).unwrap_err();
        assert!(!err.contains(secret), "{err}");
        assert!(!err.contains("internal"), "{err}");
    }
}

#[test]
fn m3_an_address_off_the_allow_list_is_refused_before_any_connection() {
    let allowed =
        AllowedAddresses::parse(&["http://prometheus.monitoring.svc:9090".to_owned()]).unwrap();
    let err = Prometheus::new(&PrometheusSource::at("http://10.0.0.1:6443"), &allowed).unwrap_err();
    assert!(
        err.to_string().contains("--prometheus-allowed-addresses"),
        "{err}"
    );
    assert_eq!(err.kind(), "prometheus_not_allowed");
    Prometheus::new(
        &PrometheusSource::at("http://prometheus.monitoring.svc:9090"),
        &allowed,
    )
    .unwrap();
}
