//! The client subcommands: one admin API call each (HTTPS, or plain HTTP to a
//! loopback server), the JSON answer on stdout, the server's error message on
//! stderr.

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::{ClientArgs, Command, TargetArgs, split_target, tls};

/// What the call returned: the HTTP status and the JSON (or text) body.
pub struct Outcome {
    /// The HTTP status code.
    pub status: u16,
    /// The answer's body.
    pub body: Value,
}

/// The request a client subcommand makes.
pub struct Call<'a> {
    /// HTTP method.
    pub method: Method,
    /// Path under the server's base URL.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// Server and token.
    pub client: &'a ClientArgs,
    /// `Idempotency-Key` and `If-Match`, when given.
    pub headers: Vec<(&'static str, String)>,
}

fn action<'a>(
    target: &'a TargetArgs,
    verb: &str,
    method: Method,
    body: Option<Value>,
) -> Result<Call<'a>, String> {
    let (namespace, name) = split_target(&target.rollout)?;
    let mut headers = Vec::new();
    if let Some(key) = &target.idempotency_key {
        headers.push(("idempotency-key", key.clone()));
    }
    if let Some(version) = &target.if_match {
        headers.push(("if-match", format!("\"{version}\"")));
    }
    let suffix = if verb.is_empty() {
        String::new()
    } else {
        format!("/{verb}")
    };
    Ok(Call {
        method,
        path: format!("/api/v1/namespaces/{namespace}/inferencerollouts/{name}{suffix}"),
        body,
        client: &target.client,
        headers,
    })
}

/// The request of a client subcommand.
pub fn request_for(command: &Command) -> Result<Call<'_>, String> {
    match command {
        Command::Serve(_) => Err("serve is not a client command".into()),
        Command::List(client) => Ok(Call {
            method: Method::GET,
            path: "/api/v1/inferencerollouts".into(),
            body: None,
            client,
            headers: Vec::new(),
        }),
        Command::Get(target) => action(target, "", Method::GET, None),
        Command::Pause(args) => action(
            &args.target,
            "pause",
            Method::POST,
            Some(json!({"reason": args.reason})),
        ),
        Command::Resume(target) => action(target, "resume", Method::POST, None),
        Command::Promote(args) => {
            let mode = if args.full { "full" } else { "step" };
            action(
                &args.target,
                "promote",
                Method::POST,
                Some(json!({"mode": mode})),
            )
        }
        Command::Abort(args) => action(
            &args.target,
            "abort",
            Method::POST,
            Some(json!({"reason": args.reason})),
        ),
        Command::Retry(target) => action(target, "retry", Method::POST, None),
        Command::SetWeight(args) => {
            let unit = if args.percent { "percent" } else { "bp" };
            action(
                &args.target,
                "weight",
                Method::PUT,
                Some(json!({"canary": args.canary, "unit": unit})),
            )
        }
    }
}

/// Sends the subcommand's request, over HTTPS for an `https://` server.
pub async fn run(command: &Command) -> Result<Outcome, String> {
    let Call {
        method,
        path,
        body,
        client: client_args,
        headers,
    } = request_for(command)?;
    let base = client_args.server.trim_end_matches('/');
    let url: Uri = format!("{base}{path}")
        .parse()
        .map_err(|err| format!("--server {base:?} is not a URL: {err}"))?;
    let https = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(format!(
                "--server {base:?} must start with https:// or http://"
            ));
        }
    };
    let host = url.host().unwrap_or_default().to_owned();
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut request = Request::builder()
        .method(method)
        .uri(url.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", format!("{host}:{port}"))
        .header("content-type", "application/json");
    if let Some(token) = &client_args.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| format!("cannot build the request: {err}"))?;
    let exchange = async {
        let unreachable = |err: &dyn std::fmt::Display| {
            format!(
                "cannot reach the admin API at {base}: {err}; is `switchyard-rollout serve` running?"
            )
        };
        let host_for_tcp = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host_for_tcp, port))
            .await
            .map_err(|err| unreachable(&err))?;
        if https {
            let connector = tls::connector(client_args)?;
            let stream = connector
                .connect(tls::server_name(&host)?, tcp)
                .await
                .map_err(|err| format!("TLS with {base} failed: {err}"))?;
            send(stream, request).await
        } else {
            send(tcp, request).await
        }
    };
    let (status, bytes) = tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("{base} did not answer within 30 s"))??;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok(Outcome { status, body })
}

/// One HTTP/1.1 exchange on `io`: the status and the whole body.
async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|err| format!("HTTP handshake failed: {err}"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "admin API connection ended with an error");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("the request failed: {err}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|err| format!("reading the answer failed: {err}"))?
        .to_bytes();
    Ok((status, bytes))
}
