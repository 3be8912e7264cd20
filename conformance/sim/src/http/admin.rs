//! Operational endpoints: models, health, metrics, LoRA load/unload and faults.

use std::fmt::Write as _;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use super::actor::Command;
use super::openai::LoraRequest;
use super::{ApiError, AppState};
use crate::error::SimError;
use crate::faults::{FaultState, Faults};

async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    state
        .tx
        .send(make(tx))
        .await
        .map_err(|_| SimError::EngineGone)?;
    rx.await.map_err(|_| SimError::EngineGone.into())
}

/// `GET /v1/models`: the served names, then registered adapters (parent = base model).
pub(super) async fn models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let adapters = ask(&state, Command::Adapters).await?;
    let base = &state.served[0];
    let card = |id: &str, parent: Option<&str>| {
        json!({
            "id": id,
            "object": "model",
            "created": state.created,
            "owned_by": "vllm",
            "root": parent.unwrap_or(id),
            "parent": parent,
            "max_model_len": state.max_model_len,
        })
    };
    let data: Vec<_> = state
        .served
        .iter()
        .map(|s| card(s, None))
        .chain(adapters.iter().map(|a| card(a, Some(base))))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

/// `GET /health`: the process is up.
pub(super) async fn health() -> StatusCode {
    StatusCode::OK
}

/// `GET /health/ready`: 503 during (simulated) startup.
pub(super) async fn ready(State(state): State<AppState>) -> StatusCode {
    if state.faults.load().is_ready(Instant::now()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `GET /metrics`, with the hang and huge-body faults.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (hang, pad_to) = {
        let f = &state.faults.load().faults;
        (f.metrics_hang, f.metrics_huge_bytes)
    };
    if hang {
        // Never answers; the scraper's timeout (or disconnect) ends it.
        std::future::pending::<()>().await;
    }
    let mut text = ask(&state, Command::Metrics).await?;
    let mut line = 0u64;
    while text.len() < pad_to {
        // Comment lines keep the padded body a valid exposition.
        let _ = writeln!(
            text,
            "# padding {line:010} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        );
        line += 1;
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

fn lora_body(body: &Bytes) -> Result<LoraRequest, ApiError> {
    let r: LoraRequest = serde_json::from_slice(body)
        .map_err(|e| SimError::BadRequest(format!("invalid request body: {e}")))?;
    if r.lora_name.is_empty() {
        return Err(SimError::BadRequest("lora_name must not be empty".into()).into());
    }
    Ok(r)
}

/// `POST /v1/load_lora_adapter` (vLLM's dynamic LoRA API).
pub(super) async fn load_lora(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r = lora_body(&body)?;
    if state.served.contains(&r.lora_name) {
        return Err(SimError::Lora(format!("'{}' is the base model's name", r.lora_name)).into());
    }
    ask(&state, |tx| Command::LoadLora(r.lora_name.clone(), tx)).await??;
    Ok(format!(
        "Success: LoRA adapter '{}' added successfully.",
        r.lora_name
    )
    .into_response())
}

/// `POST /v1/unload_lora_adapter`.
pub(super) async fn unload_lora(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r = lora_body(&body)?;
    ask(&state, |tx| Command::UnloadLora(r.lora_name.clone(), tx)).await??;
    Ok(format!(
        "Success: LoRA adapter '{}' removed successfully.",
        r.lora_name
    )
    .into_response())
}

/// `GET /admin/faults`: the active faults (readiness as seconds still to wait).
pub(super) async fn get_faults(State(state): State<AppState>) -> Json<Faults> {
    Json(state.faults.load().report(Instant::now()))
}

/// `POST /admin/faults`: replaces the faults; omitted fields reset to their defaults.
pub(super) async fn set_faults(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Faults>, ApiError> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| SimError::BadRequest(format!("invalid faults: {e}")))?;
    faults.validate().map_err(SimError::BadRequest)?;
    tracing::info!(replica = %state.name, ?faults, "faults changed");
    let now = Instant::now();
    let applied = FaultState::new(faults, now);
    let report = applied.report(now);
    state.faults.store(std::sync::Arc::new(applied));
    Ok(Json(report))
}
