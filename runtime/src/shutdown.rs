//! Stopping: the termination signal, and the drain sequence every server follows.
//!
//! The order matters to whoever balances traffic onto the process:
//! 1. health turns NOT_SERVING, so Envoy and the kubelet stop picking this replica;
//! 2. the listeners keep accepting for a grace period, because those health checks take a
//!    while to be noticed and a request sent meanwhile must not meet a closed port;
//! 3. the listeners stop accepting (the shared [`CancellationToken`] is cancelled) and the
//!    servers' in-flight work finishes, up to the drain timeout;
//! 4. whatever is still running then is aborted;
//! 5. only then does background work (pool watches, scrapers, flow control, certificate
//!    reloads) stop: the streams finishing in step 3 still depend on it.
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

/// Longest wait for background work (pool watches, scrapers, the flow-control actor) to end
/// once the servers are done: each only has to notice its token and return.
pub const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers and background tasks of one process, stopped together.
///
/// Two groups, stopped one after the other: the *servers* (listeners and the streams they
/// serve) stop accepting on [`Tasks::token`]; the *background* work those streams depend on
/// (the pool source, the scrapers, certificate reloads, flow control) keeps running until the
/// servers have drained, and only then sees [`Tasks::background_token`]. Stopping both at once
/// would leave in-flight requests scheduling on frozen metrics and queued ones with no one to
/// dispatch them.
pub struct Tasks<E> {
    servers: JoinSet<Result<(), E>>,
    background: JoinSet<Result<(), E>>,
    cancel: CancellationToken,
    background_cancel: CancellationToken,
}

impl<E: std::fmt::Display + Send + 'static> Default for Tasks<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: std::fmt::Display + Send + 'static> Tasks<E> {
    /// No task yet, and fresh stop signals.
    pub fn new() -> Self {
        Self {
            servers: JoinSet::new(),
            background: JoinSet::new(),
            cancel: CancellationToken::new(),
            background_cancel: CancellationToken::new(),
        }
    }

    /// Cancelled when the listeners must stop accepting; every server stops on it.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Cancelled once the servers have drained (or were aborted at the drain timeout);
    /// background work stops on it.
    pub fn background_token(&self) -> &CancellationToken {
        &self.background_cancel
    }

    /// Runs a server (or anything the drain timeout bounds) until it ends; its `Err` ends
    /// [`Tasks::wait_for_failure`].
    pub fn spawn(&mut self, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.servers.spawn(task);
    }

    /// Runs background work that in-flight requests depend on; it should end when
    /// [`Tasks::background_token`] is cancelled. Its `Err` ends [`Tasks::wait_for_failure`].
    pub fn spawn_background(&mut self, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.background.spawn(task);
    }

    /// Waits until a task fails; `panicked` turns a task that panicked or was aborted into an
    /// error. Returns `Ok` once every task ended cleanly.
    pub async fn wait_for_failure(
        &mut self,
        panicked: impl FnOnce(JoinError) -> E,
    ) -> Result<(), E> {
        loop {
            let joined = tokio::select! {
                Some(joined) = self.servers.join_next() => joined,
                Some(joined) = self.background.join_next() => joined,
                else => return Ok(()),
            };
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(err),
                Err(join) => return Err(panicked(join)),
            }
        }
    }

    /// Drains: awaits `not_serving` (health turns NOT_SERVING), keeps serving for
    /// `drain.grace`, then stops the listeners and waits up to `drain.timeout` for in-flight
    /// work; whatever is left is aborted. Background work runs through all of that and is
    /// stopped last. Errors of tasks ending meanwhile are logged.
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
        if !finish(&mut self.servers, drain.timeout).await {
            tracing::warn!(
                timeout_ms = drain.timeout.as_millis() as u64,
                "drain timeout reached; closing the remaining streams",
            );
        }
        self.background_cancel.cancel();
        if !finish(&mut self.background, BACKGROUND_STOP_TIMEOUT).await {
            tracing::warn!("background work did not stop in time; aborted");
        }
    }
}

/// Waits up to `timeout` for every task of `set` to end, logging errors; aborts the rest
/// (and lets them unwind) when the time is up. `true` when everything ended by itself.
async fn finish<E: std::fmt::Display + Send + 'static>(
    set: &mut JoinSet<Result<(), E>>,
    timeout: Duration,
) -> bool {
    let finished = async {
        while let Some(joined) = set.join_next().await {
            if let Ok(Err(err)) = joined {
                tracing::warn!(%err, "a task ended with an error while draining");
            }
        }
    };
    if tokio::time::timeout(timeout, finished).await.is_ok() {
        return true;
    }
    set.abort_all();
    // Let the aborted tasks unwind (their drops run) before returning.
    while set.join_next().await.is_some() {}
    false
}

#[cfg(test)]
mod tests;
