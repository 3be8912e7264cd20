//! The end of the actor's life: the drain, in which queued work is
//! dispatched rather than held for capacity, and the stop, in which whatever
//! is left is refused.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Actor, Enqueue, FlowController, PoolProbe, now};
use crate::flow::{Outcome, Rejection};

/// Where the actor is in the process's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Admitting and dispatching by saturation.
    Serving,
    /// The replica is draining: everything queued, and everything still arriving, is
    /// dispatched while the pool has endpoints (see [`FlowController::drain`]).
    Draining,
    /// Stopped: everything left is refused.
    Stopped,
}

impl Stage {
    /// Whether the actor, draining already or not, has something new to act on.
    pub(super) fn wakes(self, draining: bool) -> bool {
        match self {
            Stage::Serving => false,
            Stage::Draining => !draining,
            Stage::Stopped => true,
        }
    }
}

impl FlowController {
    /// Starts the drain (the listeners stopped accepting): every queued
    /// request, and every `admit` still arriving, is dispatched while the pool
    /// has endpoints, whatever its saturation. Held back, they would wait for
    /// capacity this replica will not be there to see, and be cut at the drain
    /// timeout. Without endpoints they wait as before (their no-endpoint TTL).
    pub fn drain(&self) {
        self.shutdown.send_if_modified(|stage| {
            let starts = *stage == Stage::Serving;
            if starts {
                *stage = Stage::Draining;
            }
            starts
        });
    }

    /// Stops the actor: every queued request and every later `admit` is
    /// answered 503 `rejected-shutting-down`.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(Stage::Stopped);
    }
}

impl<P: PoolProbe> Actor<P> {
    /// After the loop: refuses everything queued and everything still in the
    /// enqueue buffer with 503 `rejected-shutting-down`.
    pub(super) fn refuse_everything(&mut self, mut commands: mpsc::Receiver<Enqueue>) {
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
}
