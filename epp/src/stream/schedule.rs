//! Scheduling one request: parse the body (once), pass admission, pick endpoints and
//! build the routing reply (destination header and `envoy.lb` metadata).

use super::*;
use crate::flow::Detector;
use crate::flow::saturation::Pending;
use crate::scheduling::{NoCapacity, RequestView};

// === impl RequestStream (scheduling) ===

impl RequestStream {
    /// Parses the body, keeps what scheduling needs, and either asks the shell for admission
    /// (flow control on) or picks at once.
    pub(super) fn schedule(&mut self, env: &Env<'_>) -> Step {
        let parsed = match self.parse_body(env) {
            Ok(parsed) => parsed,
            Err(message) => {
                self.progress.decided = true;
                let refusal = Refusal::new(ErrorCode::BadRequest, message);
                return Step::Replies(self.refuse(refusal, env));
            }
        };
        self.parsed = Some(parsed);
        if env.flow_control {
            self.phase = Phase::Admitting;
            return Step::Admit(FlowRequest {
                fairness_id: std::mem::take(&mut self.fairness_id),
                priority: self.priority,
                byte_size: self.body.len() as u64,
                ttl: self.flow_ttl,
            });
        }
        self.progress.decided = true;
        // The legacy sheddable check: the default utilization detector, as flow control
        // would run it, with nothing pending (only sheddable requests pay for it).
        let saturated = || {
            Detector::default()
                .observe(env.snapshot, Pending::default(), env.now)
                .saturation
                >= 1.0
        };
        if self.priority < 0 && saturated() {
            let refusal = Refusal::new(
                ErrorCode::ResourceExhausted,
                "the pool is saturated and this request's objective is sheddable (priority < 0)",
            );
            return Step::Replies(self.refuse(refusal, env));
        }
        Step::Replies(self.route(env, None))
    }

    /// The one parse of the body: the model (and its rewrite target), the prompt's place in
    /// the body, the cache salt and whether the client streams. The error text is the 400's.
    fn parse_body(&self, env: &Env<'_>) -> std::result::Result<ParsedBody, String> {
        let parsed = RequestBody::parse(&self.body)?;
        let client_model = parsed.model.as_deref().unwrap_or_default();
        let target_model: Arc<str> = match &self.forced_model {
            Some(forced) => Arc::from(forced.as_str()),
            None => Arc::from(
                rewrite::rewrite_target(
                    &env.snapshot.rewrites,
                    client_model,
                    self.rewrite_session.as_deref().map(str::as_bytes),
                )
                .unwrap_or(client_model),
            ),
        };
        Ok(ParsedBody {
            client_model: Arc::from(client_model),
            target_model,
            cache_salt: parsed.cache_salt.as_deref().map(str::to_owned),
            stream: parsed.stream.unwrap_or(false),
            prompt: parsed.prompt_span(Api::from_path(&self.path), &self.body),
            model_span: parsed.model_span.clone(),
        })
    }

    /// Picks endpoints for the parsed request and answers with the routing headers and the
    /// (possibly rewritten) body. An `admission` is dropped right after the pick, whose
    /// reservation takes over the load it held.
    pub(super) fn route(&mut self, env: &Env<'_>, admission: Option<Admission>) -> Vec<Reply> {
        let Some(parsed) = self.parsed.take() else {
            let refusal = Refusal::new(ErrorCode::Internal, "the request body was never parsed");
            return self.refuse(refusal, env);
        };
        let body = std::mem::take(&mut self.body);
        let prompt = parsed.prompt.text(&body);
        let view = RequestView {
            target_model: &parsed.target_model,
            prompt: &prompt,
            cache_salt: parsed.cache_salt.as_deref().unwrap_or_default(),
            subset: self.subset.as_deref(),
            test_endpoint_selection: self.test_selection.as_deref(),
            now: env.now,
        };
        let picked = env.scheduler.pick(env.snapshot, &view);
        drop(admission);
        let pick = match picked {
            Ok(pick) => pick,
            Err(no) => {
                let code = match no {
                    NoCapacity::EmptyPool | NoCapacity::EmptySubset => {
                        ErrorCode::ServiceUnavailable
                    }
                    NoCapacity::AllFiltered => ErrorCode::ResourceExhausted,
                };
                return self.refuse(Refusal::new(code, no.to_string()), env);
            }
        };
        self.streaming = parsed.stream;
        // A rewrite splices the new name in at the span the parse found: no JSON tree, and
        // the body is copied once, into the chunks sent back.
        let out_body = if parsed.target_model == parsed.client_model {
            body::model_splice(&body, &(0..0), "")
        } else {
            body::model_splice(&body, &parsed.model_span, &parsed.target_model)
        };
        // With trailers the upstream request stays chunked: no length, and a length the
        // client sent no longer fits a rewritten body.
        let trailers = self.request_trailers;
        let length = (!trailers).then_some(out_body.len());
        let mut headers = self.routing_headers(&pick, length, env);
        if trailers && parsed.target_model != parsed.client_model {
            headers.remove_headers.push("content-length".to_owned());
        }
        let mut replies = vec![Reply::RequestHeaders(headers)];
        push_chunks(&out_body.parts(), !trailers, |chunk, end_of_stream| {
            replies.push(Reply::RequestBody {
                chunk,
                end_of_stream,
            });
        });
        if trailers {
            replies.push(Reply::Trailers { response: false });
        }
        self.labels.client_model = Some(parsed.client_model);
        self.labels.target_model = Some(parsed.target_model);
        self.routed(pick);
        // The body buffer goes when this returns; its copy in the replies is the shell's to
        // send, so this stream's share of the budget is returned now, not when the model
        // server (which may queue the request for long) answers.
        drop(body);
        if let Some(lease) = &mut self.lease {
            lease.release();
        }
        replies
    }

    pub(super) fn routing_headers(
        &self,
        pick: &Pick,
        content_length: Option<usize>,
        env: &Env<'_>,
    ) -> HeadersReply {
        let destination = pick.destination();
        let mut set_headers = vec![(DESTINATION_ENDPOINT_HEADER.to_owned(), destination.clone())];
        if let Some(length) = content_length {
            set_headers.push(("content-length".to_owned(), length.to_string()));
        }
        if self.generated_request_id
            && let Some(id) = &self.request_id
        {
            set_headers.push((REQUEST_ID_HEADER.to_owned(), id.clone()));
        }
        HeadersReply {
            set_headers,
            // Clients must not steer the data plane with these, nor the model server see
            // the steering headers (flow, forced rewrite) or the trust marker, trusted or
            // not (crate::trust). The destination header itself is overwritten above.
            remove_headers: [
                DESTINATION_ENDPOINT_SUBSET_KEY,
                DESTINATION_ENDPOINT_SERVED_KEY,
            ]
            .into_iter()
            .chain(crate::trust::STRIPPED_HEADERS)
            .chain(env.header_trust.marker())
            .map(str::to_owned)
            .collect(),
            clear_route_cache: true,
            destination_metadata: Some(destination),
        }
    }
}
