//! One endpoint's scraper: fetch `/metrics` on a fixed interval with a
//! deadline and a size cap, parse it, and report the result.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::datastore::EndpointMetrics;
use crate::datastore::{Endpoint, EndpointLoad};
use crate::error::{Error, Result};
use crate::scrape::engine::EngineConfig;
use crate::scrape::{Report, ScrapeConfig};
use switchyard_runtime::promtext::Exposition;

/// The HTTP client every scraper shares (one connection pool, keyed by host,
/// so a stuck connection to one endpoint never blocks another's).
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A client for plain-HTTP `/metrics` requests with keep-alive.
pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// What a scraper needs to know about its endpoint.
#[derive(Debug)]
pub struct Target {
    name: Arc<str>,
    address: SocketAddr,
    uri: Option<Uri>,
    load: Arc<EndpointLoad>,
    engine: EngineConfig,
}

impl Target {
    /// The target for `endpoint`, parsed with `engine`, at `path`.
    pub fn new(endpoint: &Endpoint, engine: EngineConfig, path: &str) -> Self {
        // `SocketAddr`'s display brackets IPv6 addresses, as a URI needs.
        let uri = path
            .starts_with('/')
            .then(|| format!("http://{}{path}", endpoint.address).parse().ok())
            .flatten();
        Self {
            name: Arc::clone(&endpoint.name),
            address: endpoint.address,
            uri,
            load: Arc::clone(&endpoint.load),
            engine,
        }
    }
}

/// Scrapes `target` every `config.interval` until aborted or the owner goes
/// away. Failures are counted and logged when they start and stop, not on
/// every attempt (20 a second per endpoint would drown the log).
pub async fn scrape_loop(
    target: Target,
    client: HttpClient,
    config: Arc<ScrapeConfig>,
    reports: mpsc::Sender<Report>,
) {
    let Some(uri) = target.uri.clone() else {
        tracing::warn!(
            endpoint = %target.name,
            path = %config.path,
            "not scraping: the metrics path does not form a valid URI; set a path such as /metrics"
        );
        return;
    };
    // A random phase spreads the endpoints' scrapes over the interval, so
    // a large pool does not scrape (and report to the owner) in bursts.
    let interval_nanos = u64::try_from(config.interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let phase = Duration::from_nanos(rand::random::<u64>() % interval_nanos);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, config.interval);
    // A slow scrape delays the next one instead of firing a burst after it.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let dispatch_mark = target.load.mark_scrape_start();
        let outcome =
            tokio::time::timeout(config.timeout, scrape_once(&client, &uri, &target, &config))
                .await
                .unwrap_or_else(|_| {
                    Err(scrape_error(
                        &target,
                        "timeout",
                        format!("no complete answer within {:?}", config.timeout),
                    ))
                });
        // Stamped at completion: a slow answer is as fresh as when it arrived (M1).
        let scraped_at = std::time::Instant::now();
        config.metrics.record(&outcome);
        match outcome {
            Ok(metrics) => {
                if failing {
                    tracing::info!(endpoint = %target.name, "scraping works again");
                    failing = false;
                }
                let report = Report {
                    endpoint: Arc::clone(&target.name),
                    address: target.address,
                    metrics,
                    scraped_at,
                    dispatch_mark,
                };
                if reports.send(report).await.is_err() {
                    return;
                }
            }
            Err(err) if !failing => {
                tracing::warn!(%err, "scraping failed; the endpoint keeps its last metrics, which age until a scrape succeeds");
                failing = true;
            }
            Err(err) => tracing::debug!(%err, "scraping still fails"),
        }
    }
}

async fn scrape_once(
    client: &HttpClient,
    uri: &Uri,
    target: &Target,
    config: &ScrapeConfig,
) -> Result<EndpointMetrics> {
    let response = client
        .get(uri.clone())
        .await
        .map_err(|e| scrape_error(target, "connect", format!("GET {uri}: {e}")))?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(scrape_error(
            target,
            "http_status",
            format!("GET {uri} answered {status}"),
        ));
    }
    let body = Limited::new(response.into_body(), config.max_body_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                scrape_error(
                    target,
                    "too_large",
                    format!(
                        "the response is larger than {} bytes",
                        config.max_body_bytes
                    ),
                )
            } else {
                scrape_error(target, "body", format!("reading the response: {e}"))
            }
        })?
        .to_bytes();
    let text = std::str::from_utf8(&body).map_err(|e| {
        scrape_error(
            target,
            "not_utf8",
            format!("the page is not UTF-8 text: {e}"),
        )
    })?;
    let page = Exposition::parse(text);
    target
        .engine
        .extract(&page)
        .map_err(|e| scrape_error(target, "metrics", e.to_string()))
}

fn scrape_error(target: &Target, reason: &'static str, detail: String) -> Error {
    Error::Scrape {
        endpoint: target.name.to_string(),
        address: target.address,
        reason,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};

    use super::*;

    #[test]
    fn targets_bracket_ipv6_and_reject_paths_that_form_no_uri() {
        let address = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 8000);
        let endpoint = Endpoint::new("pod-rank-0", "pod", address);
        let target = Target::new(&endpoint, EngineConfig::vllm(), "/metrics");
        assert_eq!(
            target.uri.map(|u| u.to_string()).as_deref(),
            Some("http://[fd00::1]:8000/metrics")
        );
        let target = Target::new(&endpoint, EngineConfig::vllm(), "metrics");
        assert!(
            target.uri.is_none(),
            "a path without a leading slash is refused, not guessed"
        );
    }
}
