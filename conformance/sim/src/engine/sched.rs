//! The step: batch formation, KV growth, preemption, admission, cost and token sampling.

use super::Engine;
use super::request::{EngineEvent, FinishReason, Seq};
use crate::lora::LoraAdmit;
use crate::units::Micros;

impl Engine {
    /// Runs one engine step starting at `now` and returns when it ends, or `None` when
    /// there is nothing to run. The batch's effects (tokens, finished requests, freed KV)
    /// are applied immediately and its events queued for [`Engine::take_events`]; a driver
    /// must not call `step` again before the returned end time.
    pub fn step(&mut self, now: Micros) -> Option<Micros> {
        if self.is_idle() {
            return None;
        }
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        let mut budget = self.cfg.max_num_batched_tokens;

        // 1. Running requests keep their seats and go first, in admission order.
        let mut preempted = false;
        let mut i = 0;
        'running: while i < self.running.len() && budget > 0 {
            let n = self.running[i].pending().min(budget);
            while !self.grow_blocks(i, n) {
                // Out of KV: recompute-preempt the newest request, which may be this one.
                let victim = self.running.len() - 1;
                self.preempt_newest();
                preempted = true;
                if victim == i {
                    break 'running;
                }
            }
            plan.push((i, n));
            budget -= n;
            i += 1;
        }

        // 2. Admit waiters. Like vLLM, not in a step that just preempted (the pool is
        // short), unless nothing else would run at all.
        let mut load_us = 0;
        if !preempted || plan.is_empty() {
            load_us = self.admit(&mut plan, &mut budget, now);
        }
        if plan.is_empty() {
            self.plan = plan;
            return None;
        }

        // 3. Cost of the batch.
        let (mut prefill, mut decodes, mut context) = (0u64, 0u64, 0u64);
        for &(idx, n) in &plan {
            let s = &self.running[idx];
            if s.is_decode() {
                decodes += 1;
                context += s.computed as u64;
            } else {
                prefill += n as u64;
            }
        }
        let c = &self.cfg.cost;
        let prefill_us = if prefill > 0 {
            c.step_us(prefill, 0, 0)
        } else {
            0.0
        };
        let decode_us = c.step_us(prefill, decodes, context) - prefill_us;
        let sc = self.scale;
        let cost = (prefill_us * sc.prefill + decode_us * sc.decode + load_us as f64) * sc.overall;
        let end = now + cost.max(0.0).round() as Micros;
        self.steps += 1;

        // 4. Apply the batch: computed tokens, newly full prompt blocks, sampled tokens.
        self.apply(&plan, end);
        self.plan = plan;
        Some(end)
    }

    /// Ensures running request `i` has blocks for `n` more tokens. All-or-nothing.
    fn grow_blocks(&mut self, i: usize, n: usize) -> bool {
        let bs = self.cfg.block_size;
        let seq = &mut self.running[i];
        let need = (seq.computed + n)
            .div_ceil(bs)
            .saturating_sub(seq.blocks.len());
        if need > self.pool.num_free() {
            return false;
        }
        for _ in 0..need {
            match self.pool.allocate() {
                Some(b) => seq.blocks.push(b),
                None => return false,
            }
        }
        true
    }

    /// Recompute preemption of the most recently admitted running request: its KV goes
    /// back to the pool (hashes kept, so its prompt is likely still cached when it
    /// returns), its progress resets and it goes to the front of the waiting queue.
    fn preempt_newest(&mut self) {
        let Some(mut seq) = self.running.pop() else {
            return;
        };
        self.release_seq(&seq);
        seq.blocks.clear();
        seq.computed = 0;
        seq.hashed = 0;
        seq.preemptions += 1;
        self.metrics.preemptions += 1;
        self.waiting.push_front(seq);
    }

    /// Admits waiting requests into `plan`; returns LoRA load time to add to the step.
    fn admit(&mut self, plan: &mut Vec<(usize, usize)>, budget: &mut usize, now: Micros) -> u64 {
        let bs = self.cfg.block_size;
        let lora_blocks = self.cfg.lora_kv_tokens.div_ceil(bs);
        let mut load_us = 0;
        let mut pos = 0;
        while pos < self.waiting.len() && self.running.len() < self.cfg.max_num_seqs && *budget > 0
        {
            let seq = &self.waiting[pos];
            let lora = match seq.req.lora.as_deref() {
                None => LoraAdmit::Resident,
                Some(name) => self.loras.check(name),
            };
            if lora == LoraAdmit::NoSlot {
                // Its adapter must wait for a slot; requests behind it may still go.
                pos += 1;
                continue;
            }
            // Longest cached prefix, leaving at least one token to compute: the step that
            // computes the last prompt token is the one that yields logits.
            let hits = if self.cfg.enable_prefix_caching {
                let hashes = &seq.req.block_hashes;
                let max_hit = ((seq.total() - 1) / bs).min(hashes.len());
                self.pool.longest_prefix(&hashes[..max_hit])
            } else {
                0
            };
            let computed = hits * bs;
            let n = (seq.total() - computed).min(*budget);
            let new_blocks = (computed + n).div_ceil(bs) - hits;
            let hit_free = seq.req.block_hashes[..hits]
                .iter()
                .filter(|h| self.pool.lookup(**h).is_some_and(|b| self.pool.is_free(b)))
                .count();
            let (load_blocks, freed) = match lora {
                LoraAdmit::Load { evict } => {
                    (lora_blocks, evict.map_or(0, |s| self.loras.slot_blocks(s)))
                }
                _ => (0, 0),
            };
            if self.pool.num_free() + freed < hit_free + new_blocks + load_blocks {
                // First-come first-served: no overtaking on KV shortage.
                break;
            }
            let Some(mut seq) = self.waiting.remove(pos) else {
                break;
            };
            // Take the cached prefix before allocating anything, so allocation cannot
            // evict the very blocks this request is about to reuse.
            for h in &seq.req.block_hashes[..hits] {
                if let Some(b) = self.pool.lookup(*h) {
                    self.pool.acquire(b);
                    seq.blocks.push(b);
                }
            }
            if let (LoraAdmit::Load { evict }, Some(name)) = (lora, seq.req.lora.clone()) {
                if let Some(slot) = evict {
                    for b in self.loras.evict(slot) {
                        self.pool.release(b);
                    }
                }
                let held = (0..load_blocks)
                    .filter_map(|_| self.pool.allocate())
                    .collect();
                self.loras.load(name, held, now);
                load_us += self.cfg.lora_load_us;
                self.metrics.lora_loads += 1;
            }
            if let Some(name) = seq.req.lora.as_deref() {
                self.loras.acquire(name, now);
            }
            for _ in 0..new_blocks {
                if let Some(b) = self.pool.allocate() {
                    seq.blocks.push(b);
                }
            }
            seq.computed = computed;
            seq.hashed = hits;
            if seq.scheduled.is_none() {
                seq.scheduled = Some(now);
                seq.cached_tokens = computed as u32;
                self.metrics.prefix_queries += u64::from(seq.req.prompt_tokens);
                self.metrics.prefix_hits += computed as u64;
            }
            self.running.push(seq);
            plan.push((self.running.len() - 1, n));
            *budget -= n;
        }
        load_us
    }

    /// Applies a planned batch that ends at `end`.
    fn apply(&mut self, plan: &[(usize, usize)], end: Micros) {
        let bs = self.cfg.block_size;
        let caching = self.cfg.enable_prefix_caching;
        let Self {
            running,
            pool,
            metrics,
            events,
            ..
        } = self;
        for &(idx, n) in plan {
            let seq = &mut running[idx];
            seq.computed += n;
            if caching {
                // Publish prompt blocks as they fill, so later requests can share them.
                let full = (seq.computed.min(seq.req.prompt_tokens as usize) / bs)
                    .min(seq.req.block_hashes.len());
                while seq.hashed < full {
                    pool.register(seq.blocks[seq.hashed], seq.req.block_hashes[seq.hashed]);
                    seq.hashed += 1;
                }
            }
            if seq.computed < seq.total() {
                continue; // mid-prefill chunk: no token yet
            }
            seq.output += 1;
            metrics.generation_tokens += 1;
            if seq.first_token.is_none() {
                seq.first_token = Some(end);
                metrics.prompt_tokens += u64::from(seq.req.prompt_tokens);
                // The HTTP actor stamps arrivals with the wall clock while a step is
                // timed from the previous step's end, so an arrival that landed during
                // the timer's lag can be later than `end`: count that as no wait.
                metrics
                    .ttft
                    .observe(end.saturating_sub(seq.arrival) as f64 / 1e6);
            } else {
                let gap = end.saturating_sub(seq.last_token);
                seq.itl_sum += gap;
                seq.itl_max = seq.itl_max.max(gap);
                metrics.itl.observe(gap as f64 / 1e6);
            }
            seq.last_token = end;
            if seq.req.stream {
                events.push(EngineEvent::Token {
                    id: seq.id,
                    index: seq.output - 1,
                });
            }
        }
        // Retire finished requests, keeping admission order for the rest.
        let mut done: Vec<Seq> = Vec::new();
        let mut k = 0;
        while k < self.running.len() {
            if self.running[k].output >= self.running[k].req.output_tokens {
                done.push(self.running.remove(k));
            } else {
                k += 1;
            }
        }
        for seq in done {
            self.release_seq(&seq);
            let outcome = seq.outcome(FinishReason::Done, end);
            self.metrics
                .on_finish(&outcome, seq.req.max_tokens_param, false);
            self.events.push(EngineEvent::Finished(outcome));
        }
    }
}
