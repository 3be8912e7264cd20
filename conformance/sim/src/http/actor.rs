//! The engine task of a real-time replica: the single owner of its [`Engine`].
//!
//! Handlers talk to it through a bounded command channel (back-pressure instead of a
//! lock); each request gets an unbounded channel back for its tokens — unbounded because
//! the engine must never wait on a slow client, and a request's traffic is bounded by its
//! own `max_tokens` anyway. The task steps the engine whenever it has work and sleeps for
//! each step's cost, absorbing new commands while it sleeps so arrivals join the queue in
//! real time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Engine, EngineEvent, EngineRequest, Micros, RequestId, RequestOutcome};
use crate::error::SimError;
use crate::faults::FaultState;
use crate::metrics::{self, EngineKind};

/// What a request's channel carries back.
#[derive(Debug)]
pub enum Delivery {
    /// Queued in the engine.
    Accepted,
    /// Refused (queue full, too long, unknown adapter…).
    Rejected(SimError),
    /// The `n`-th token (0-based) of a streaming request.
    Token(u32),
    /// Finished.
    Done(RequestOutcome),
}

/// Requests to the engine task.
#[derive(Debug)]
pub enum Command {
    /// Queue a request; progress comes back on `reply`.
    Submit {
        /// The request.
        req: EngineRequest,
        /// Its delivery channel.
        reply: mpsc::UnboundedSender<Delivery>,
    },
    /// Render `/metrics`.
    Metrics(oneshot::Sender<String>),
    /// Registered adapter names.
    Adapters(oneshot::Sender<Vec<String>>),
    /// Register an adapter.
    LoadLora(String, oneshot::Sender<Result<(), SimError>>),
    /// Unregister an adapter.
    UnloadLora(String, oneshot::Sender<Result<(), SimError>>),
}

/// Unix-anchored monotonic clock: engine time is Unix µs, sleeps use `Instant`.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
    origin_unix_us: Micros,
}

impl Clock {
    fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as Micros);
        Self {
            origin: Instant::now(),
            origin_unix_us: unix,
        }
    }

    fn now_us(&self) -> Micros {
        self.origin_unix_us + self.origin.elapsed().as_micros() as Micros
    }

    fn instant_at(&self, us: Micros) -> Instant {
        self.origin + Duration::from_micros(us.saturating_sub(self.origin_unix_us))
    }
}

/// Wake-up lag up to which the engine keeps its own step timeline (µs).
const MAX_TIMER_LAG_US: Micros = 5_000;

/// Settings the task needs besides the engine.
pub struct ActorConfig {
    /// Exposition flavour.
    pub kind: EngineKind,
    /// `model_name` label.
    pub model_name: String,
    /// `--time-scale`.
    pub time_scale: f64,
    /// Live faults (latency multipliers are read before every step).
    pub faults: Arc<ArcSwap<FaultState>>,
}

/// Runs until every command sender is gone.
pub async fn run(mut engine: Engine, mut rx: mpsc::Receiver<Command>, cfg: ActorConfig) {
    let clock = Clock::new();
    let mut inflight: HashMap<RequestId, mpsc::UnboundedSender<Delivery>> = HashMap::new();
    let mut events = Vec::new();
    let mut resume_at: Option<Micros> = None;
    loop {
        // Take in everything already queued so it can join this step.
        loop {
            match rx.try_recv() {
                Ok(cmd) => handle(&mut engine, &mut inflight, cmd, &clock, &cfg),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        engine.set_latency_scale(cfg.faults.load().latency_scale(cfg.time_scale));
        // Back-to-back steps start exactly where the previous one ended: timer wake-ups
        // are late by up to a millisecond, and that lag must not add up token after
        // token. Only a real stall (an overloaded host) moves the engine's clock forward.
        let real = clock.now_us();
        let now = match resume_at {
            Some(end) if real.saturating_sub(end) < MAX_TIMER_LAG_US => end,
            _ => real,
        };
        let Some(end) = engine.step(now) else {
            resume_at = None;
            match rx.recv().await {
                Some(cmd) => handle(&mut engine, &mut inflight, cmd, &clock, &cfg),
                None => return,
            }
            continue;
        };
        // A zero-cost step (time scale 0) has no timeline to keep: use the real clock.
        resume_at = (end > now).then_some(end);
        if end > now {
            let sleep = tokio::time::sleep_until(clock.instant_at(end).into());
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    biased;
                    () = &mut sleep => break,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => handle(&mut engine, &mut inflight, cmd, &clock, &cfg),
                        None => return,
                    },
                }
            }
        } else {
            // Zero-cost steps (time scale 0): let the handlers run between steps.
            tokio::task::yield_now().await;
        }
        engine.take_events(&mut events);
        for ev in events.drain(..) {
            match ev {
                EngineEvent::Token { id, index } => {
                    let gone = inflight
                        .get(&id)
                        .is_none_or(|tx| tx.send(Delivery::Token(index)).is_err());
                    if gone {
                        inflight.remove(&id);
                        engine.abort(id, end);
                    }
                }
                EngineEvent::Finished(o) => {
                    if let Some(tx) = inflight.remove(&o.id) {
                        // The client may be gone already; nothing left to free.
                        let _ = tx.send(Delivery::Done(o));
                    }
                }
            }
        }
        // Clients that went away (non-streaming ones only notice at the end otherwise):
        // free their seats and KV like vLLM aborts a disconnected request.
        inflight.retain(|id, tx| {
            let open = !tx.is_closed();
            if !open {
                engine.abort(*id, end);
            }
            open
        });
    }
}

fn handle(
    engine: &mut Engine,
    inflight: &mut HashMap<RequestId, mpsc::UnboundedSender<Delivery>>,
    cmd: Command,
    clock: &Clock,
    cfg: &ActorConfig,
) {
    match cmd {
        Command::Submit { req, reply } => match engine.submit(req, clock.now_us()) {
            Ok(id) => {
                if reply.send(Delivery::Accepted).is_ok() {
                    inflight.insert(id, reply);
                } else {
                    engine.abort(id, clock.now_us());
                }
            }
            Err(e) => {
                let _ = reply.send(Delivery::Rejected(e));
            }
        },
        Command::Metrics(reply) => {
            let now_s = clock.now_us() as f64 / 1e6;
            let _ = reply.send(metrics::render(cfg.kind, &cfg.model_name, engine, now_s));
        }
        Command::Adapters(reply) => {
            let names = engine
                .loras()
                .registered()
                .iter()
                .map(|s| s.to_string())
                .collect();
            let _ = reply.send(names);
        }
        Command::LoadLora(name, reply) => {
            let _ = reply.send(engine.loras_mut().register(&name));
        }
        Command::UnloadLora(name, reply) => {
            let _ = reply.send(engine.loras_mut().unregister(&name));
        }
    }
}
