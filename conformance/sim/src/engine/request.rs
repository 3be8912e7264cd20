//! Requests as the engine sees them, and what it reports back.

use std::sync::Arc;

use crate::kv::BlockId;
use crate::units::Micros;

/// Engine-assigned request identifier, unique per engine.
pub type RequestId = u64;

/// A request handed to [`super::Engine::submit`]. The front end has already tokenised and
/// hashed the prompt and decided how many tokens the answer will have.
#[derive(Debug, Clone)]
pub struct EngineRequest {
    /// Prompt length in tokens (at least 1).
    pub prompt_tokens: u32,
    /// Chained hashes of the prompt's full blocks (see [`crate::kv::BlockHasher`]).
    pub block_hashes: Arc<[u64]>,
    /// Exact number of tokens to generate (at least 1).
    pub output_tokens: u32,
    /// The client's `max_tokens`, for the `request_params_max_tokens` histogram.
    pub max_tokens_param: Option<u32>,
    /// LoRA adapter the request runs under; `None` for the base model.
    pub lora: Option<Arc<str>>,
    /// Emit a [`EngineEvent::Token`] per generated token (streaming clients need them).
    pub stream: bool,
    /// Opaque caller tag echoed in the outcome (fleets use the arrival index).
    pub tag: u64,
}

/// Why a request left the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// Generated all its tokens.
    Done,
    /// Aborted by the caller (client went away).
    Abort,
}

/// Timing and accounting of one finished request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOutcome {
    /// Engine id.
    pub id: RequestId,
    /// Caller tag from the request.
    pub tag: u64,
    /// How it ended.
    pub reason: FinishReason,
    /// When it was submitted.
    pub arrival_us: Micros,
    /// When it was first scheduled (left the waiting queue), if ever.
    pub scheduled_us: Option<Micros>,
    /// When its first token was produced, if ever.
    pub first_token_us: Option<Micros>,
    /// When it finished.
    pub finish_us: Micros,
    /// Prompt length.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub output_tokens: u32,
    /// Prompt tokens served from the prefix cache at first scheduling.
    pub cached_tokens: u32,
    /// Times it was preempted (recompute).
    pub preemptions: u32,
    /// Sum of inter-token gaps (µs), over `output_tokens − 1` gaps.
    pub itl_sum_us: u64,
    /// Largest inter-token gap (µs).
    pub itl_max_us: u64,
}

impl RequestOutcome {
    /// Time to first token (µs).
    pub fn ttft_us(&self) -> Option<u64> {
        self.first_token_us
            .map(|t| t.saturating_sub(self.arrival_us))
    }

    /// End-to-end latency (µs).
    pub fn e2e_us(&self) -> u64 {
        self.finish_us.saturating_sub(self.arrival_us)
    }

    /// Mean inter-token latency (µs), if at least two tokens were generated.
    pub fn itl_mean_us(&self) -> Option<f64> {
        (self.output_tokens > 1).then(|| self.itl_sum_us as f64 / f64::from(self.output_tokens - 1))
    }

    /// Time spent waiting before the first scheduling (µs).
    pub fn queue_us(&self) -> u64 {
        self.scheduled_us
            .map_or(self.e2e_us(), |s| s.saturating_sub(self.arrival_us))
    }
}

/// Something the engine reports after a step. All events of a step happen at the step's
/// end time.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A streaming request produced its `index`-th token (0-based).
    Token {
        /// Request.
        id: RequestId,
        /// Output position.
        index: u32,
    },
    /// A request finished (or was aborted).
    Finished(RequestOutcome),
}

/// A request inside the engine: waiting or running.
#[derive(Debug)]
pub(crate) struct Seq {
    pub id: RequestId,
    pub req: EngineRequest,
    pub arrival: Micros,
    /// Tokens generated so far.
    pub output: u32,
    /// Tokens whose KV is computed (prompt first, then generated tokens).
    pub computed: usize,
    /// Block table.
    pub blocks: Vec<BlockId>,
    /// Prompt blocks already registered in (or taken from) the prefix index.
    pub hashed: usize,
    pub scheduled: Option<Micros>,
    pub first_token: Option<Micros>,
    pub last_token: Micros,
    pub cached_tokens: u32,
    pub preemptions: u32,
    pub itl_sum: u64,
    pub itl_max: u64,
}

impl Seq {
    pub fn new(id: RequestId, req: EngineRequest, arrival: Micros) -> Self {
        Self {
            id,
            req,
            arrival,
            output: 0,
            computed: 0,
            blocks: Vec::new(),
            hashed: 0,
            scheduled: None,
            first_token: None,
            last_token: arrival,
            cached_tokens: 0,
            preemptions: 0,
            itl_sum: 0,
            itl_max: 0,
        }
    }

    /// Tokens the sequence holds: prompt plus generated.
    pub fn total(&self) -> usize {
        self.req.prompt_tokens as usize + self.output as usize
    }

    /// Tokens still to compute before the next token can be sampled.
    pub fn pending(&self) -> usize {
        self.total() - self.computed
    }

    /// Decoding (one new token on top of a computed context) rather than prefilling.
    pub fn is_decode(&self) -> bool {
        self.output > 0 && self.pending() == 1
    }

    pub fn outcome(&self, reason: FinishReason, now: Micros) -> RequestOutcome {
        RequestOutcome {
            id: self.id,
            tag: self.req.tag,
            reason,
            arrival_us: self.arrival,
            scheduled_us: self.scheduled,
            first_token_us: self.first_token,
            finish_us: now,
            prompt_tokens: self.req.prompt_tokens,
            output_tokens: self.output,
            cached_tokens: self.cached_tokens,
            preemptions: self.preemptions,
            itl_sum_us: self.itl_sum,
            itl_max_us: self.itl_max,
        }
    }
}
