//! The request path of a [`RequestStream`] up to scheduling: the headers (request id, path,
//! flow headers, priority, rewrite and subset hints), a body-less request's random endpoint,
//! and the body buffered under the size limit.

use switchyard_runtime::budget::OverBudget;

use super::entropy::format_uuid;
use super::*;
use crate::scheduling::plugins::address_matches;

// === impl RequestStream (request headers and body) ===

impl RequestStream {
    pub(super) fn on_request_headers(
        &mut self,
        headers: &[(&str, &[u8])],
        end_of_stream: bool,
        subset: Option<&[String]>,
        env: &Env<'_>,
    ) -> Vec<Reply> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        self.started = Some(env.now);
        self.request_id = get(REQUEST_ID_HEADER).filter(|id| !id.is_empty());
        if self.request_id.is_none() {
            self.request_id = Some(format_uuid(env.entropy.uuid_bytes()));
            self.generated_request_id = true;
        }
        self.path = get(":path")
            .or_else(|| get("x-original-path"))
            .or_else(|| get("x-forwarded-path"))
            .unwrap_or_else(|| "/v1/completions".into());
        let flow = FlowHeaders::read(headers, env.header_trust);
        // Only an objective the pool defines is kept: an unknown name has no priority and
        // would only be a client-chosen string to carry around.
        self.objective = flow
            .objective
            .filter(|name| env.snapshot.objectives.contains_key(*name))
            .map(str::to_owned);
        // The trusted objective only: an untrusted caller's header names no priority.
        self.priority = env.snapshot.priority(self.objective.as_deref());
        self.labels.priority = self.priority;
        if env.flow_control {
            flow.fairness_id.clone_into(&mut self.fairness_id);
            self.flow_ttl = flow.ttl;
        }
        // Under the same trust as the flow headers, and only to a model the pool knows.
        self.forced_model =
            crate::trust::forced_model(headers, flow.trusted, env.snapshot).map(str::to_owned);
        self.rewrite_session = env
            .rewrite_session_header
            .and_then(get)
            .filter(|session| !session.is_empty());
        self.test_selection = get(TEST_ENDPOINT_SELECTION_HEADER);
        self.subset = if env.disable_subset_filter {
            None
        } else {
            subset.map(<[String]>::to_vec)
        };
        if !end_of_stream {
            self.phase = Phase::RequestBody;
            return Vec::new();
        }
        // No body: no model to schedule on, so upstream routes to a random
        // endpoint with no scheduling or admission.
        self.progress.decided = true;
        match self.random_endpoint(env) {
            Some(pick) => {
                let reply = self.routing_headers(&pick, None, env);
                self.routed(pick);
                vec![Reply::RequestHeaders(reply)]
            }
            None => self.refuse(
                Refusal::new(ErrorCode::Internal, "the pool has no ready endpoint"),
                env,
            ),
        }
    }

    /// Buffers a body chunk; the last one schedules the request.
    pub(super) fn on_request_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        env: &Env<'_>,
    ) -> Step {
        self.body_bytes = self.body_bytes.saturating_add(chunk.len());
        if self.body_bytes > env.max_body_bytes {
            return Step::Replies(self.refuse(Refusal::body_too_large(env.max_body_bytes), env));
        }
        if let Err(refusal) = self.reserve_body(chunk.len(), env) {
            return Step::Replies(self.refuse(refusal, env));
        }
        self.body.extend_from_slice(chunk);
        if end_of_stream {
            self.schedule(env)
        } else {
            Step::Replies(Vec::new())
        }
    }

    /// Makes room for `more` body bytes, taking the memory the buffer will really hold
    /// (its capacity, doubled as a `Vec` grows, never past the body limit) from the
    /// process-wide budget first: a spent budget refuses this request instead of the
    /// process running out of memory.
    fn reserve_body(&mut self, more: usize, env: &Env<'_>) -> std::result::Result<(), Refusal> {
        let needed = self.body.len() + more;
        if needed <= self.body.capacity() {
            return Ok(());
        }
        let capacity = needed.max(self.body.capacity() * 2).min(env.max_body_bytes);
        let lease = self.lease.get_or_insert_with(|| env.budget.lease());
        lease.grow_to(capacity).map_err(|over| over_budget(&over))?;
        self.body.reserve_exact(capacity - self.body.len());
        Ok(())
    }

    fn random_endpoint(&self, env: &Env<'_>) -> Option<Pick> {
        let mut eligible: Vec<_> = env
            .snapshot
            .endpoints
            .iter()
            .filter(|e| e.ready)
            .filter(|e| {
                self.subset
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|entry| address_matches(entry, e.address)))
            })
            .collect();
        // Ejected endpoints are skipped too, unless that leaves none.
        if eligible.iter().any(|e| !e.is_ejected(env.now)) {
            eligible.retain(|e| !e.is_ejected(env.now));
        }
        if eligible.is_empty() {
            return None;
        }
        let chosen = eligible.get(env.entropy.index_below(eligible.len()))?;
        Some(Pick {
            endpoints: vec![chosen.address],
            reservation: chosen.load.reserve(0),
            fallback_hashes: Vec::new(),
        })
    }

    /// The request is routed to `pick`: it now awaits the response.
    pub(super) fn routed(&mut self, pick: Pick) {
        tracing::debug!(
            destination = ?pick.endpoints,
            request_id = self.request_id.as_deref().unwrap_or_default(),
            "request scheduled",
        );
        self.pick = Some(pick);
        self.phase = Phase::ResponseHeaders;
        self.progress.routed = Some(Routed {
            labels: self.labels.clone(),
            body_bytes: self.body_bytes,
        });
    }
}

/// The `x-llm-d-request-dropped-reason` of a request refused because the budget of buffered
/// bytes (`--max-buffered-bytes`) is spent.
pub const BUDGET_SPENT_REASON: &str = "rejected-buffer-budget";

/// The 503 for a request whose body does not fit the budget of buffered bytes: transient
/// (other requests return their share as they end), so clients may retry.
fn over_budget(over: &OverBudget) -> Refusal {
    Refusal::new(
        ErrorCode::ServiceUnavailable,
        format!("{over} (--max-buffered-bytes)"),
    )
    .with_reason(BUDGET_SPENT_REASON)
}
