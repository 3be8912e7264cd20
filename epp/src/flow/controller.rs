//! The I/O shell of flow control: one tokio task owns the [`FlowQueues`];
//! requests reach it through [`FlowController::admit`]. See the module
//! documentation of [`crate::flow`] for why an actor and not a lock.
//!
//! The actor wakes on a command, a cancellation, the next TTL expiry, or a
//! short poll while work waits for capacity (saturation changes as scrapes
//! land and requests finish, neither of which sends it a message). Each wake
//! runs one cycle: expire, then dispatch while the head band's ceiling is
//! above the detector's saturation ([`FlowQueues::pop_dispatchable`]),
//! re-observing after every dispatch; queued sheddable requests whose band
//! may not dispatch are refused.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::flow::config::FlowControlConfig;
use crate::flow::metrics::FlowMetrics;
pub use crate::flow::probe::{PoolProbe, SnapshotProbe};
use crate::flow::queues::{FlowQueues, Queued, TicketId};
use crate::flow::saturation::{Pending, PoolView, STALE_FAIL_OPEN_GRACE, estimated_tokens};
use crate::flow::{FlowRequest, Outcome, Rejection};

/// Upstream's enqueue buffer: requests waiting to reach the actor.
pub const ENQUEUE_BUFFER: usize = 100;
/// How often the actor re-checks saturation while requests wait for capacity.
pub const CAPACITY_POLL: Duration = Duration::from_millis(5);
/// How often per-flow gauges are republished.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
/// Commands handled per wake before a dispatch cycle runs.
const BATCH: usize = 64;

/// Admissions released and not yet scheduled, shared with the detectors.
#[derive(Debug, Default)]
struct Shared {
    pending_requests: AtomicU64,
    pending_tokens: AtomicU64,
}

impl Shared {
    fn pending(&self) -> Pending {
        Pending {
            requests: self.pending_requests.load(Ordering::Relaxed),
            tokens: self.pending_tokens.load(Ordering::Relaxed),
        }
    }
}

/// Permission to schedule one request. Keep it until the scheduler has
/// picked (and reserved) an endpoint, then drop it: until then it counts as
/// pending load, so the actor does not release more work than the pool takes.
#[derive(Debug)]
#[must_use = "an admission counts as pending load until it is dropped"]
pub struct Admission {
    priority: i64,
    fairness_id: Arc<str>,
    waited: Duration,
    shared: Arc<Shared>,
    tokens: u64,
}

impl Admission {
    fn new(shared: &Arc<Shared>, queued: &Queued<Reply>, waited: Duration) -> Self {
        let tokens = estimated_tokens(queued.bytes);
        shared.pending_requests.fetch_add(1, Ordering::Relaxed);
        shared.pending_tokens.fetch_add(tokens, Ordering::Relaxed);
        Self {
            priority: queued.priority,
            fairness_id: Arc::clone(&queued.fairness_id),
            waited,
            shared: Arc::clone(shared),
            tokens,
        }
    }

    /// The request's priority band.
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// The request's flow.
    pub fn fairness_id(&self) -> &str {
        &self.fairness_id
    }

    /// How long it waited in the queue.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let tokens = self.tokens;
        let _ =
            self.shared
                .pending_requests
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
        let _ =
            self.shared
                .pending_tokens
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(tokens))
                });
    }
}

type Reply = oneshot::Sender<Result<Admission, Rejection>>;

/// Why the actor woke.
enum Wake {
    Cancel(TicketId),
    Command(Enqueue),
    Timer,
}

struct Enqueue {
    id: TicketId,
    request: FlowRequest,
    reply: Reply,
}

/// A cloneable handle to the flow-control actor.
#[derive(Clone, Debug)]
pub struct FlowController {
    commands: mpsc::Sender<Enqueue>,
    cancels: mpsc::UnboundedSender<TicketId>,
    shutdown: Arc<watch::Sender<bool>>,
    next_id: Arc<AtomicU64>,
    metrics: Arc<FlowMetrics>,
}

/// Posts the ticket for cancellation unless disarmed: dropping an `admit`
/// future before it resolves removes its queue entry at once. The channel is
/// unbounded because it holds at most one message per live ticket, which
/// the caps and the enqueue buffer already bound.
struct CancelOnDrop {
    id: TicketId,
    cancels: mpsc::UnboundedSender<TicketId>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.cancels.send(self.id);
        }
    }
}

impl FlowController {
    /// Starts the actor on the current tokio runtime.
    pub fn spawn(
        config: Arc<FlowControlConfig>,
        probe: impl PoolProbe,
        metrics: Arc<FlowMetrics>,
    ) -> (Self, JoinHandle<()>) {
        let (commands, command_rx) = mpsc::channel(ENQUEUE_BUFFER);
        let (cancels, cancel_rx) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let actor = Actor {
            queues: FlowQueues::new(config),
            probe,
            shared: Arc::default(),
            metrics: Arc::clone(&metrics),
            all_stale: false,
            degraded: false,
            flows_published: false,
            finished: Vec::new(),
            shed: Vec::new(),
        };
        let task = tokio::spawn(actor.run(command_rx, cancel_rx, shutdown_rx));
        let handle = Self {
            commands,
            cancels,
            shutdown: Arc::new(shutdown),
            next_id: Arc::new(AtomicU64::new(1)),
            metrics,
        };
        (handle, task)
    }

    /// The metrics the actor maintains.
    pub fn metrics(&self) -> &Arc<FlowMetrics> {
        &self.metrics
    }

    /// Stops the actor: every queued request and every later `admit` is
    /// answered 503 `rejected-shutting-down`.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until `request` may be scheduled (`Ok`) or is refused (`Err`,
    /// which carries the status and reason header). Dropping the future
    /// before it resolves withdraws the request from its queue.
    pub fn admit(
        &self,
        request: FlowRequest,
    ) -> impl Future<Output = Result<Admission, Rejection>> + Send + 'static {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let priority = request.priority;
        let commands = self.commands.clone();
        let guard = CancelOnDrop {
            id,
            cancels: self.cancels.clone(),
            armed: true,
        };
        async move {
            // Move the whole guard in (a field assignment alone would capture only the field).
            let mut guard = guard;
            let shutting_down = Rejection::new(Outcome::RejectedOther, priority, Duration::ZERO);
            let (reply, answer) = oneshot::channel();
            if commands.send(Enqueue { id, request, reply }).await.is_err() {
                guard.armed = false;
                return Err(shutting_down);
            }
            let result = answer.await;
            guard.armed = false;
            result.unwrap_or(Err(shutting_down))
        }
    }
}

struct Actor<P> {
    queues: FlowQueues<Reply>,
    probe: P,
    shared: Arc<Shared>,
    metrics: Arc<FlowMetrics>,
    all_stale: bool,
    /// Whether the last view was read from stale metrics (failing open).
    degraded: bool,
    /// Whether the last per-flow publication was non-empty.
    flows_published: bool,
    finished: Vec<(Queued<Reply>, Outcome)>,
    shed: Vec<Queued<Reply>>,
}

impl<P: PoolProbe> Actor<P> {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Enqueue>,
        mut cancels: mpsc::UnboundedReceiver<TicketId>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut next_maintenance = now() + MAINTENANCE_INTERVAL;
        let mut view = self.observe(now());
        // Dropping every handle is not a shutdown: admits in flight go on.
        let mut handles_gone = false;
        loop {
            let wake = self.next_wake(&view, next_maintenance);
            let event = tokio::select! {
                biased;
                stop = shutdown.wait_for(|stop| *stop), if !handles_gone => match stop {
                    Ok(_) => break,
                    Err(_) => {
                        handles_gone = true;
                        Wake::Timer
                    }
                },
                Some(id) = cancels.recv() => Wake::Cancel(id),
                command = commands.recv() => match command {
                    Some(command) => Wake::Command(command),
                    None => break,
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => Wake::Timer,
            };
            // Admission decisions use the pool as it is now, not as it was
            // at the end of the previous cycle.
            let at = now();
            view = self.observe(at);
            match event {
                Wake::Cancel(id) => self.cancel(id),
                Wake::Command(command) => self.enqueue(command, &view),
                Wake::Timer => {}
            }
            // Take whatever else is ready before paying for a cycle.
            for _ in 0..BATCH {
                match cancels.try_recv() {
                    Ok(id) => self.cancel(id),
                    Err(_) => break,
                }
            }
            for _ in 0..BATCH {
                match commands.try_recv() {
                    Ok(command) => self.enqueue(command, &view),
                    Err(_) => break,
                }
            }
            view = self.cycle(at, view);
            if at >= next_maintenance {
                let stats = self.queues.flow_stats();
                self.flows_published = !stats.is_empty();
                self.metrics.publish_flows(stats);
                next_maintenance = at + MAINTENANCE_INTERVAL;
            } else if self.flows_published && self.queues.is_empty() {
                // Do not leave gauges up for a second after the queues drained.
                self.flows_published = false;
                self.metrics.publish_flows(Vec::new());
            }
        }
        commands.close();
        let mut drained = Vec::new();
        self.queues.drain(&mut drained);
        let at = now();
        for queued in drained {
            self.answer_rejected(queued, Outcome::EvictedOther, at);
        }
        // Requests still in the buffer are refused as well.
        while let Ok(command) = commands.try_recv() {
            let rejection = Rejection::new(
                Outcome::RejectedOther,
                command.request.priority,
                Duration::ZERO,
            );
            self.metrics
                .finished(Outcome::RejectedOther, Duration::ZERO);
            let _ = command.reply.send(Err(rejection));
        }
        self.metrics.set_queue(0, 0);
        self.metrics.publish_flows(Vec::new());
    }

    fn next_wake(&self, view: &PoolView, maintenance: Instant) -> Instant {
        let mut wake = maintenance;
        if let Some(expiry) = self.queues.next_expiry(view.endpoints > 0) {
            wake = wake.min(expiry);
        }
        if !self.queues.is_empty() {
            wake = wake.min(now() + CAPACITY_POLL);
        }
        wake
    }

    fn observe(&mut self, at: Instant) -> PoolView {
        self.probe.observe(self.shared.pending(), at)
    }

    fn cancel(&mut self, id: TicketId) {
        if let Some(queued) = self.queues.cancel(id) {
            let waited = now().saturating_duration_since(queued.enqueued_at);
            self.metrics
                .finished(Outcome::EvictedContextCancelled, waited);
        }
    }

    fn enqueue(&mut self, command: Enqueue, view: &PoolView) {
        let Enqueue { id, request, reply } = command;
        if reply.is_closed() {
            // The caller left while the command sat in the buffer.
            self.metrics
                .finished(Outcome::EvictedContextCancelled, Duration::ZERO);
            return;
        }
        if let Err((rejection, reply)) =
            self.queues.enqueue(id, request, reply, now(), view.state())
        {
            tracing::debug!(
                outcome = rejection.outcome.label(),
                priority = rejection.priority,
                "flow control refused a request"
            );
            self.metrics.finished(rejection.outcome, Duration::ZERO);
            let _ = reply.send(Err(rejection));
        }
    }

    /// Expires, then dispatches while the pool has room; returns the last view.
    fn cycle(&mut self, at: Instant, mut view: PoolView) -> PoolView {
        let started = Instant::now();
        let mut finished = std::mem::take(&mut self.finished);
        self.queues.expire(at, view.endpoints > 0, &mut finished);
        for (queued, outcome) in finished.drain(..) {
            self.answer_rejected(queued, outcome, at);
        }
        self.finished = finished;
        while !self.queues.is_empty() {
            // Sheddable work whose band may not dispatch now is refused rather than kept waiting.
            let mut shed = std::mem::take(&mut self.shed);
            self.queues.shed_sheddable(view.saturation, &mut shed);
            let outcome = if view.endpoints > 0 {
                Outcome::RejectedSaturated
            } else {
                Outcome::RejectedNoEndpoints
            };
            for queued in shed.drain(..) {
                self.answer_rejected(queued, outcome, at);
            }
            self.shed = shed;
            // The dispatch rule: the head band, only below its ceiling.
            let Some(queued) = self.queues.pop_dispatchable(view.saturation) else {
                break;
            };
            let waited = at.saturating_duration_since(queued.enqueued_at);
            let admission = Admission::new(&self.shared, &queued, waited);
            let outcome = match queued.payload.send(Ok(admission)) {
                Ok(()) => Outcome::Dispatched,
                // The caller left just now; its admission is dropped here.
                Err(_) => Outcome::EvictedContextCancelled,
            };
            self.metrics.finished(outcome, waited);
            // Re-check only when more work waits; the next wake observes anew.
            if !self.queues.is_empty() {
                view = self.observe(at);
            }
        }
        self.record(&view);
        self.metrics.dispatch_cycle.observe(started.elapsed());
        view
    }

    fn answer_rejected(&self, queued: Queued<Reply>, outcome: Outcome, at: Instant) {
        let waited = at.saturating_duration_since(queued.enqueued_at);
        self.metrics.finished(outcome, waited);
        let _ = queued
            .payload
            .send(Err(Rejection::new(outcome, queued.priority, waited)));
    }

    fn record(&mut self, view: &PoolView) {
        self.metrics.set_pool_saturation(view.saturation);
        self.metrics
            .stale_endpoints
            .store(view.stale as u64, Ordering::Relaxed);
        self.metrics
            .set_queue(self.queues.len(), self.queues.bytes());
        self.metrics
            .degraded
            .store(u64::from(view.degraded), Ordering::Relaxed);
        let all_stale = view.endpoints > 0 && view.stale == view.endpoints;
        if all_stale && !self.all_stale {
            tracing::warn!(
                endpoints = view.endpoints,
                queued = self.queues.len(),
                grace = ?STALE_FAIL_OPEN_GRACE,
                "every endpoint's metrics are stale: flow control treats the pool as saturated \
                 for the grace period, then dispatches on the last metrics (degraded); check the \
                 metrics scrape path and --refresh-metrics-interval"
            );
        } else if !all_stale && self.all_stale {
            tracing::info!("endpoint metrics are fresh again; flow control dispatches normally");
        }
        if view.degraded && !self.degraded {
            tracing::warn!(
                "flow control fails open: dispatching on stale metrics until scrapes recover"
            );
        }
        self.all_stale = all_stale;
        self.degraded = view.degraded;
    }
}

/// The current time on tokio's clock (virtual under paused-time tests).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
