//! M2: the admin API refuses to send tokens in cleartext off loopback, serves
//! HTTPS, and the CLI speaks it.

use axum::Router;
use axum::routing::get;
use clap::Parser;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{certificates, check_address, spawn};
use crate::cli::{Cli, Command, ServeArgs, client};

fn serve_args(flags: &[&str]) -> ServeArgs {
    let cli = Cli::try_parse_from(["switchyard-rollout", "serve"].iter().chain(flags)).unwrap();
    match cli.command {
        Command::Serve(args) => args,
        _ => panic!("not serve"),
    }
}

#[test]
fn m2_a_remote_admin_address_without_tls_is_refused() {
    let remote = ["--admin-address", "0.0.0.0:9443", "--admin-allow-remote"];
    let err = check_address(&serve_args(&remote)).unwrap_err().to_string();
    assert!(err.contains("cleartext"), "{err}");
    assert!(err.contains("--admin-tls-cert-dir"), "{err}");
    let with_tls: Vec<&str> = remote
        .iter()
        .copied()
        .chain(["--admin-tls-self-signed"])
        .collect();
    check_address(&serve_args(&with_tls)).unwrap();
    // Loopback may stay plain HTTP (a sidecar or port-forward in front).
    check_address(&serve_args(&[])).unwrap();
}

#[test]
fn m2_the_token_audience_defaults_to_the_admin_api_s_own() {
    assert_eq!(serve_args(&[]).admin_token_audience, "switchyard-rollout");
}

#[tokio::test]
async fn m2_the_admin_api_serves_https_and_the_cli_speaks_it() {
    let args = serve_args(&["--admin-tls-self-signed"]);
    let tls = certificates(&args).unwrap();
    assert!(tls.is_some());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route(
        "/api/v1/inferencerollouts",
        get(|| async { axum::Json(json!({"items": []})) }),
    );
    let shutdown = CancellationToken::new();
    let server = spawn(listener, tls, router, addr, shutdown.clone());
    let list = |flags: &[&str]| {
        let server = format!("https://localhost:{}", addr.port());
        let mut argv = vec!["switchyard-rollout", "list", "--server"];
        let owned: Vec<String> = std::iter::once(server)
            .chain(flags.iter().map(|f| (*f).to_owned()))
            .collect();
        argv.extend(owned.iter().map(String::as_str));
        Cli::try_parse_from(argv).unwrap().command
    };
    let outcome = client::run(&list(&["--insecure-skip-tls-verify"]))
        .await
        .unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.body, json!({"items": []}));
    // Unverifiable without the flag: the CLI says what to pass.
    let err = client::run(&list(&[])).await.err().unwrap();
    assert!(err.contains("--certificate-authority"), "{err}");
    // Plain HTTP is not answered.
    let plain = Cli::try_parse_from([
        "switchyard-rollout",
        "list",
        "--server",
        &format!("http://127.0.0.1:{}", addr.port()),
    ])
    .unwrap()
    .command;
    assert!(client::run(&plain).await.is_err());
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
