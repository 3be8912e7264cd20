//! Scheduling one request: parse the body, pass admission, pick endpoints and
//! build the routing reply (destination header and `envoy.lb` metadata).

use super::*;

// === impl RequestStream (scheduling) ===

impl RequestStream {
    /// Parses the body and picks. With flow control on and no `admission`
    /// yet, it stops after the parse in [`Phase::Admitting`] instead; on
    /// resume the body is parsed again, because the parsed view borrows the
    /// body and one borrowed pass is cheaper than copying the prompt out.
    pub(super) fn schedule(&mut self, env: &Env<'_>, admission: Option<Admission>) -> Vec<Reply> {
        let body = std::mem::take(&mut self.body);
        let parsed = match RequestBody::parse(&body) {
            Ok(parsed) => parsed,
            Err(message) => return self.fail(ErrorCode::BadRequest, &message),
        };
        let client_model = parsed.model.as_deref().unwrap_or_default().to_owned();
        let target = match &self.forced_model {
            Some(forced) => forced.clone(),
            None => rewrite::rewrite_target(
                &env.snapshot.rewrites,
                &client_model,
                self.rewrite_session.as_deref().map(str::as_bytes),
            )
            .unwrap_or(&client_model)
            .to_owned(),
        };
        let priority = env.snapshot.priority(self.objective.as_deref());
        if env.flow_control && admission.is_none() {
            drop(parsed);
            self.flow_request = Some(FlowRequest {
                fairness_id: std::mem::take(&mut self.fairness_id),
                priority,
                byte_size: body.len() as u64,
                ttl: self.flow_ttl,
            });
            self.body = body;
            self.phase = Phase::Admitting;
            return Vec::new();
        }
        if !env.flow_control
            && priority < 0
            && crate::scheduling::saturation(env.snapshot, env.now) >= 1.0
        {
            return self.fail(
                ErrorCode::ResourceExhausted,
                "the pool is saturated and this request's objective is sheddable (priority < 0)",
            );
        }
        let api = Api::from_path(&self.path);
        let prefix_text = parsed.prefix_text(api);
        let view = RequestView {
            target_model: &target,
            prompt: &prefix_text,
            cache_salt: parsed.cache_salt.as_deref().unwrap_or_default(),
            subset: self.subset.as_deref(),
            test_endpoint_selection: self.test_selection.as_deref(),
            now: env.now,
        };
        let picked = env.scheduler.pick(env.snapshot, &view);
        // The pick's reservation now carries the load the admission held.
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
                return self.fail(code, &no.to_string());
            }
        };
        self.streaming = parsed.stream.unwrap_or(false);
        let out_body = if target == client_model {
            body.clone()
        } else {
            match body::with_model(&body, &target) {
                Ok(rewritten) => rewritten,
                Err(message) => return self.fail(ErrorCode::BadRequest, &message),
            }
        };
        drop(parsed);
        let mut replies = vec![Reply::RequestHeaders(self.routing_headers(
            &pick,
            Some(out_body.len()),
            env,
        ))];
        push_chunks(&out_body, |chunk, end_of_stream| {
            replies.push(Reply::RequestBody {
                chunk,
                end_of_stream,
            });
        });
        self.client_model = Some(client_model);
        self.target_model = Some(target);
        self.pick = Some(pick);
        self.phase = Phase::ResponseHeaders;
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
            // Clients must not steer the data plane with these, nor the
            // model server see the flow headers or the trust marker.
            remove_headers: [
                DESTINATION_ENDPOINT_SUBSET_KEY,
                DESTINATION_ENDPOINT_SERVED_KEY,
            ]
            .into_iter()
            .chain(FlowHeaders::STRIPPED)
            .chain(env.header_trust.marker())
            .map(str::to_owned)
            .collect(),
            clear_route_cache: true,
            destination_metadata: Some(destination),
        }
    }
}
