//! Prometheus source: PromQL instant queries over the HTTP API
//! (`POST /api/v1/query`), with a timeout and errors that say what to fix.
//!
//! The queries themselves are built in [`queries`] (pure); this module only
//! sends them and reads one number back.

pub mod allow;
pub mod queries;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use switchyard_api::rollout::{MetricCheck, PrometheusSource, parse_duration_ms};

pub use allow::AllowedAddresses;

use crate::error::{Error, Result};
use crate::judge::Measurement;

/// Answers larger than this are refused: a query returning that much is a
/// query without aggregation, not one number.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A Prometheus HTTP API client.
#[derive(Clone, Debug)]
pub struct Prometheus {
    address: String,
    query_uri: Uri,
    timeout: Duration,
    arm_selector: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

// === impl Prometheus ===

impl Prometheus {
    /// A client for `source`. Fails on an address that is not `http://host[:port][/prefix]`
    /// or that `allowed` does not list (checked before any connection).
    pub fn new(source: &PrometheusSource, allowed: &AllowedAddresses) -> Result<Self> {
        let address = source.address.trim_end_matches('/').to_owned();
        let invalid = |message: String| Error::Prometheus {
            address: address.clone(),
            query: String::new(),
            message,
        };
        if !allowed.permits(&address) {
            return Err(Error::PrometheusNotAllowed(allowed.refusal(&address)));
        }
        if !address.starts_with("http://") {
            return Err(invalid(
                "only http:// addresses are supported; reach an https Prometheus through a local proxy or port-forward".into(),
            ));
        }
        let query_uri: Uri = format!("{address}/api/v1/query")
            .parse()
            .map_err(|err| invalid(format!("not a valid URL: {err}")))?;
        let timeout_ms = parse_duration_ms(&source.timeout).ok_or_else(|| {
            invalid(format!(
                "timeout {:?} is not a duration like 10s",
                source.timeout
            ))
        })?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(timeout_ms.max(1))));
        Ok(Self {
            address,
            query_uri,
            timeout: Duration::from_millis(timeout_ms.max(1)),
            arm_selector: source.arm_selector.clone(),
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Runs one instant query evaluated at `time`. `Ok(None)` when it returned
    /// no series or NaN (no data); an error when it returned several series.
    pub async fn instant(&self, query: &str, time: Timestamp) -> Result<Option<f64>> {
        let fail = |message: String| Error::Prometheus {
            address: self.address.clone(),
            query: query.to_owned(),
            message,
        };
        let seconds = time.as_millisecond() as f64 / 1000.0;
        let body = format!("query={}&time={seconds:.3}", form_encode(query));
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.query_uri.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| fail(format!("cannot build the request: {err}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                fail(format!(
                    "cannot reach it ({}); check spec.analysis.source.prometheus.address",
                    error_chain(&err)
                ))
            })?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|err| fail(format!("reading the answer failed: {err}")))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                fail(format!(
                    "no answer within {:?}; check the server or raise spec.analysis.source.prometheus.timeout",
                    self.timeout
                ))
            })??;
        parse_answer(status, &bytes).map_err(fail)
    }

    /// Measures one metric for a window of `window_secs` ending at `end`:
    /// canary value, stable value when a limit compares with it, and canary
    /// request count when the metric has a request minimum.
    pub async fn measure(
        &self,
        check: &MetricCheck,
        arms: &queries::Arms<'_>,
        window_secs: u64,
        end: Timestamp,
    ) -> Result<Measurement> {
        let built = queries::build(check, &self.arm_selector, arms, window_secs);
        let (canary, stable, requests) = futures::join!(
            self.instant(&built.canary, end),
            async {
                match &built.stable {
                    Some(query) => self.instant(query, end).await,
                    None => Ok(None),
                }
            },
            async {
                match &built.canary_requests {
                    // No series means no requests counted yet.
                    Some(query) => self
                        .instant(query, end)
                        .await
                        .map(|n| Some(n.unwrap_or(0.0))),
                    None => Ok(None),
                }
            },
        );
        Ok(Measurement {
            canary: canary?,
            stable: stable?,
            canary_requests: requests?,
        })
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<AnswerData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// Reads the one number out of an API answer.
fn parse_answer(status: StatusCode, bytes: &[u8]) -> Result<Option<f64>, String> {
    // Nothing the server sent goes into the error beyond a short
    // identifier: the error lands in the rollout's status, readable by every
    // namespace user, and the server may not be the Prometheus the rollout
    // claims. The full answer goes to the controller's log only.
    let answer: Answer = serde_json::from_slice(bytes).map_err(|_| {
        tracing::warn!(%status, bytes = bytes.len(), "Prometheus answered with something that is not an API answer");
        format!("HTTP {status} with a body that is not a Prometheus API answer")
    })?;
    if answer.status != "success" {
        let message = answer.error.as_deref().unwrap_or("(no message)");
        tracing::warn!(error_type = ?answer.error_type, %message, "Prometheus refused a query");
        return Err(format!(
            "Prometheus refused the query ({}); the controller's log has its message",
            short_identifier(answer.error_type.as_deref())
        ));
    }
    let data = answer.data.ok_or("a success answer without data")?;
    let sample = match data.result_type.as_str() {
        "scalar" => &data.result,
        "vector" => {
            let series = data
                .result
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            match series {
                [] => return Ok(None),
                [one] => &one["value"],
                many => {
                    return Err(format!(
                        "returned {} series, not one number; aggregate it, e.g. sum(...) or max(...)",
                        many.len()
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "returned a {other}, not one number; use an instant vector or scalar expression"
            ));
        }
    };
    let text = sample
        .get(1)
        .and_then(Value::as_str)
        .ok_or("a sample without a value")?;
    let value: f64 = text
        .parse()
        .map_err(|_| format!("sample value {text:?} is not a number"))?;
    Ok(value.is_finite().then_some(value))
}

/// Prometheus's `errorType` (`bad_data`, `timeout`, ...) when it looks like
/// one; `error` for anything else.
fn short_identifier(text: Option<&str>) -> &str {
    match text {
        Some(t)
            if (1..=32).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            t
        }
        _ => "error",
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;
