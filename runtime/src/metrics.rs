//! The `/metrics` endpoint: a prometheus-client registry in the OpenMetrics text format, the
//! same for every binary.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Where the exposition is served.
pub const PATH: &str = "/metrics";

/// Something that renders an exposition on each scrape.
pub trait Exposition: Send + Sync + 'static {
    /// The text exposition; called once per scrape, so it may refresh gauges first.
    fn encode(&self) -> Result<String, std::fmt::Error>;
}

impl Exposition for Registry {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        encode(self)
    }
}

/// The text exposition of `registry`.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// The response for an encoded exposition: 200 with the OpenMetrics content type, or 500.
pub fn response(encoded: Result<String, std::fmt::Error>) -> Response {
    match encoded {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

async fn serve<T: Exposition>(State(source): State<Arc<T>>) -> Response {
    response(source.encode())
}

/// A router serving `GET /metrics` from `source`.
pub fn router<T: Exposition>(source: Arc<T>) -> Router {
    Router::new()
        .route(PATH, get(serve::<T>))
        .with_state(source)
}

#[cfg(test)]
mod tests;
