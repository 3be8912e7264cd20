//! Engine unit tests: scheduling mechanics on tiny configurations.

use std::sync::Arc;

use super::*;
use crate::kv::BlockHasher;

fn cfg() -> EngineConfig {
    EngineConfig {
        max_num_seqs: 4,
        max_num_batched_tokens: 64,
        max_model_len: 4096,
        block_size: 4,
        num_gpu_blocks: 64,
        max_waiting: 3,
        max_loras: 1,
        lora_load_us: 5_000,
        lora_kv_tokens: 0,
        enable_prefix_caching: true,
        cost: StepCost {
            decode_base_us: 10_000.0,
            per_decode_seq_us: 0.0,
            per_kv_token_us: 0.0,
            prefill_base_us: 20_000.0,
            per_prefill_token_us: 100.0,
            prefill_min_us: 0.0,
        },
    }
}

fn req(tokens: &[u32], out: u32) -> EngineRequest {
    let h = BlockHasher::new(0, 4);
    EngineRequest {
        prompt_tokens: tokens.len() as u32,
        block_hashes: h.hash_tokens(None, tokens).into(),
        output_tokens: out,
        max_tokens_param: Some(out),
        lora: None,
        stream: true,
        tag: 0,
    }
}

/// Steps until idle; returns the finished outcomes.
fn drain(e: &mut Engine, mut now: Micros) -> Vec<RequestOutcome> {
    let mut events = Vec::new();
    while let Some(end) = e.step(now) {
        now = end;
    }
    e.take_events(&mut events);
    events
        .into_iter()
        .filter_map(|ev| match ev {
            EngineEvent::Finished(o) => Some(o),
            EngineEvent::Token { .. } => None,
        })
        .collect()
}

#[test]
fn chunked_prefill_then_decode_with_exact_costs() {
    let mut e = Engine::new(cfg(), []);
    let prompt: Vec<u32> = (0..100).collect();
    e.submit(req(&prompt, 3), 0).unwrap();
    // 100 prompt tokens with a 64-token budget: two chunks, then two decode steps.
    assert_eq!(e.step(0), Some(20_000 + 6_400));
    assert_eq!(e.num_running(), 1);
    let t1 = 26_400 + 20_000 + 3_600;
    assert_eq!(e.step(26_400), Some(t1));
    let done = drain(&mut e, t1);
    assert_eq!(done.len(), 1);
    let o = &done[0];
    assert_eq!(o.ttft_us(), Some(t1));
    assert_eq!(o.output_tokens, 3);
    assert_eq!(o.e2e_us(), t1 + 20_000);
    assert_eq!(o.itl_max_us, 10_000);
    assert_eq!(e.kv_usage(), 0.0);
    assert_eq!(e.metrics().generation_tokens, 3);
}

#[test]
fn an_arrival_stamped_after_the_step_start_counts_as_no_wait() {
    // The HTTP actor times steps from the previous step's end but stamps arrivals with
    // the wall clock, so a request can arrive "after" the step that serves it began.
    let mut e = Engine::new(cfg(), []);
    let prompt: Vec<u32> = (0..8).collect();
    e.submit(req(&prompt, 2), 1_000_000).unwrap();
    let done = drain(&mut e, 0);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ttft_us(), Some(0));
    assert_eq!(done[0].queue_us(), 0);
}

#[test]
fn prefix_reuse_skips_cached_blocks_but_recomputes_last_token() {
    let mut e = Engine::new(cfg(), []);
    let prompt: Vec<u32> = (0..32).collect();
    e.submit(req(&prompt, 1), 0).unwrap();
    drain(&mut e, 0);
    assert_eq!(
        e.prefix_hit_tokens(&BlockHasher::new(0, 4).hash_tokens(None, &prompt)),
        32
    );
    // Same prompt again: 7 of 8 blocks reused (the last block is recomputed for logits).
    e.submit(req(&prompt, 1), 1_000_000).unwrap();
    let o = drain(&mut e, 1_000_000).remove(0);
    assert_eq!(o.cached_tokens, 28);
    assert_eq!(o.ttft_us(), Some(20_000 + 400));
    assert_eq!(e.metrics().prefix_hits, 28);
    assert_eq!(e.metrics().prefix_queries, 64);
}

#[test]
fn queue_cap_and_never_fitting_requests_are_rejected() {
    let mut e = Engine::new(cfg(), []);
    let p: Vec<u32> = (0..8).collect();
    for _ in 0..3 {
        e.submit(req(&p, 1), 0).unwrap();
    }
    assert!(matches!(
        e.submit(req(&p, 1), 0),
        Err(SimError::QueueFull(3))
    ));
    let huge: Vec<u32> = (0..300).collect();
    let err = e.submit(req(&huge, 1), 0).unwrap_err();
    assert_eq!(err.status(), 400, "300 tokens never fit in 64 blocks of 4");
}

#[test]
fn kv_shortage_preempts_newest_to_front_of_queue() {
    let mut c = cfg();
    c.num_gpu_blocks = 12; // 48 tokens
    c.max_waiting = 10;
    let mut e = Engine::new(c, []);
    // Two requests of 16 prompt + 16 output tokens need 64 tokens together.
    let a = e.submit(req(&(0..16).collect::<Vec<_>>(), 16), 0).unwrap();
    let b = e
        .submit(req(&(100..116).collect::<Vec<_>>(), 16), 0)
        .unwrap();
    let mut now = 0;
    let mut preempted_at = None;
    while let Some(end) = e.step(now) {
        now = end;
        if e.metrics().preemptions > 0 && preempted_at.is_none() {
            preempted_at = Some(now);
            // The newest request (b) went back to the head of the waiting queue.
            assert_eq!(e.num_running(), 1);
            assert_eq!(e.waiting.front().map(|s| s.id), Some(b));
            assert_eq!(e.running[0].id, a);
        }
    }
    let mut events = Vec::new();
    e.take_events(&mut events);
    let outcomes: Vec<RequestOutcome> = events
        .into_iter()
        .filter_map(|ev| match ev {
            EngineEvent::Finished(o) => Some(o),
            EngineEvent::Token { .. } => None,
        })
        .collect();
    assert!(preempted_at.is_some());
    assert_eq!(outcomes.len(), 2);
    let ob = outcomes.iter().find(|o| o.id == b).unwrap();
    assert!(ob.preemptions >= 1);
    assert_eq!(
        ob.output_tokens, 16,
        "no token is lost or repeated by recompute"
    );
    assert_eq!(e.kv_usage(), 0.0);
}

#[test]
fn adapter_waits_for_a_slot_while_base_requests_pass() {
    let mut c = cfg();
    c.max_waiting = 10;
    let mut e = Engine::new(c, ["a".to_owned(), "b".to_owned()]);
    let p: Vec<u32> = (0..8).collect();
    let with = |name: &str, out| EngineRequest {
        lora: e.loras().get(name),
        ..req(&p, out)
    };
    let ra = with("a", 5);
    let rb = with("b", 1);
    e.submit(ra, 0).unwrap();
    e.submit(rb, 0).unwrap();
    e.submit(req(&p, 1), 0).unwrap();
    // First step: a loads (5 ms), b has no slot, the base request goes ahead of it.
    let end = e.step(0).unwrap();
    assert_eq!(end, 20_000 + 1_600 + 5_000);
    assert_eq!(
        e.num_running(),
        1,
        "the base request finished in the same step"
    );
    assert_eq!(e.waiting_loras(), vec!["b"]);
    assert_eq!(e.running_loras(), vec!["a"]);
    let done = drain(&mut e, end);
    let b = done.iter().find(|o| o.id == 2).unwrap();
    let a = done.iter().find(|o| o.id == 1).unwrap();
    assert!(b.scheduled_us.unwrap() >= a.finish_us);
    assert!(matches!(
        e.resolve_model(&["base".into()], "nope"),
        Err(SimError::UnknownModel(_))
    ));
    assert_eq!(
        e.resolve_model(&["base".into()], "a").unwrap().as_deref(),
        Some("a")
    );
    let _ = Arc::clone(&e.loras().registered()[0]);
}

#[test]
fn abort_frees_seat_and_kv() {
    let mut e = Engine::new(cfg(), []);
    let id = e.submit(req(&(0..40).collect::<Vec<_>>(), 50), 0).unwrap();
    e.step(0);
    assert!(e.kv_usage() > 0.0);
    assert!(e.abort(id, 1));
    assert!(e.is_idle());
    assert_eq!(e.kv_usage(), 0.0);
    assert_eq!(e.metrics().finished_abort, 1);
    assert!(!e.abort(id, 2));
}
