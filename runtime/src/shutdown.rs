//! Stopping: the termination signal, and the drain sequence every server follows.
//!
//! The order matters to whoever balances traffic onto the process:
//! 1. health turns NOT_SERVING, so Envoy and the kubelet stop picking this replica;
//! 2. the listeners keep accepting for a grace period, because those health checks take a
//!    while to be noticed and a request sent meanwhile must not meet a closed port;
//! 3. the listeners stop accepting (the shared [`CancellationToken`] is cancelled) and the
//!    servers' in-flight work finishes, up to the drain timeout;
//! 4. whatever is still running then is aborted.
//!
//! [`Tasks`] holds the servers and background tasks of one process; `wait_for_failure` ends
//! when one of them fails, and `drain` runs the sequence above.

use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl-C); `process` names the
/// binary in the warning logged when SIGTERM cannot be watched.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that watches the signals; clippy.toml sends everyone else here"
)]
pub async fn terminated(process: &str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops {process}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = process;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How a drain is paced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drain {
    /// How long the listeners keep accepting after health turned NOT_SERVING.
    pub grace: Duration,
    /// Longest wait, once the listeners stopped, for in-flight work to finish.
    pub timeout: Duration,
}

/// The servers and background tasks of one process, stopped together.
pub struct Tasks<E> {
    set: JoinSet<Result<(), E>>,
    cancel: CancellationToken,
}

impl<E: std::fmt::Display + Send + 'static> Default for Tasks<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: std::fmt::Display + Send + 'static> Tasks<E> {
    /// No task yet, and a fresh stop signal.
    pub fn new() -> Self {
        Self {
            set: JoinSet::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Cancelled when the listeners must stop accepting; every server and loop stops on it.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Runs `task` until it ends; its `Err` ends [`Tasks::wait_for_failure`].
    pub fn spawn(&mut self, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.set.spawn(task);
    }

    /// Waits until a task fails; `panicked` turns a task that panicked or was aborted into an
    /// error. Returns `Ok` once every task ended cleanly.
    pub async fn wait_for_failure(
        &mut self,
        panicked: impl FnOnce(JoinError) -> E,
    ) -> Result<(), E> {
        while let Some(joined) = self.set.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(err),
                Err(join) => return Err(panicked(join)),
            }
        }
        Ok(())
    }

    /// Drains: awaits `not_serving` (health turns NOT_SERVING), keeps serving for
    /// `drain.grace`, then stops the listeners and waits up to `drain.timeout` for in-flight
    /// work; whatever is left is aborted. Errors of tasks ending meanwhile are logged.
    pub async fn drain(mut self, drain: Drain, not_serving: impl Future<Output = ()>) {
        not_serving.await;
        if !drain.grace.is_zero() {
            tracing::info!(
                grace_ms = drain.grace.as_millis() as u64,
                "health is NOT_SERVING; still accepting through the grace period",
            );
            tokio::time::sleep(drain.grace).await;
        }
        self.cancel.cancel();
        let finished = async {
            while let Some(joined) = self.set.join_next().await {
                if let Ok(Err(err)) = joined {
                    tracing::warn!(%err, "a task ended with an error while draining");
                }
            }
        };
        if tokio::time::timeout(drain.timeout, finished).await.is_err() {
            tracing::warn!(
                timeout_ms = drain.timeout.as_millis() as u64,
                "drain timeout reached; closing the remaining streams",
            );
            self.set.abort_all();
            // Let the aborted tasks unwind (their drops run) before returning.
            while self.set.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests;
