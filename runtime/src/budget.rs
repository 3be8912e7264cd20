//! A process-wide budget of buffered bytes, shared by every stream of a server.
//!
//! A per-stream body limit bounds one request, not the sum of them: sixteen 32 MiB bodies
//! buffered at once still kill a pod with a 512 MiB limit. Each stream takes a
//! [`BudgetLease`] and grows it before it buffers more; when the budget is spent the stream
//! is refused with a reason (429/503) instead of the process being OOM-killed.
//!
//! Pure and lock-free: one atomic counter, a compare-and-swap per grow, released on drop, so
//! the request path never waits on another stream.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shared budget. Cloning shares the same counter.
#[derive(Clone, Debug)]
pub struct ByteBudget {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes one stream holds against a [`ByteBudget`]; they return to it on drop.
#[derive(Debug)]
pub struct BudgetLease {
    budget: Arc<Shared>,
    held: usize,
}

/// Why a [`BudgetLease::grow`] was refused: the figures for the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// Bytes the stream asked for.
    pub requested: usize,
    /// Bytes held by all streams when it asked.
    pub in_use: usize,
    /// The budget's size.
    pub limit: usize,
}

// === impl ByteBudget ===

impl ByteBudget {
    /// A budget of `limit` bytes (0 refuses every non-empty grow).
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Shared {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// A budget that never refuses (tests, and callers that opt out explicitly).
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// The budget's size in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes held by all leases right now (for a gauge).
    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// An empty lease for one stream.
    pub fn lease(&self) -> BudgetLease {
        BudgetLease {
            budget: Arc::clone(&self.inner),
            held: 0,
        }
    }
}

// === impl BudgetLease ===

impl BudgetLease {
    /// Takes `bytes` more from the budget, or refuses without taking anything.
    pub fn grow(&mut self, bytes: usize) -> Result<(), OverBudget> {
        if bytes == 0 {
            return Ok(());
        }
        let shared = &self.budget;
        let mut used = shared.used.load(Ordering::Relaxed);
        loop {
            let refused = OverBudget {
                requested: bytes,
                in_use: used,
                limit: shared.limit,
            };
            let Some(next) = used.checked_add(bytes).filter(|n| *n <= shared.limit) else {
                return Err(refused);
            };
            match shared
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => used = actual,
            }
        }
        self.held += bytes;
        Ok(())
    }

    /// Grows the lease to hold at least `total` bytes (no-op when it already does).
    pub fn grow_to(&mut self, total: usize) -> Result<(), OverBudget> {
        self.grow(total.saturating_sub(self.held))
    }

    /// Bytes this lease holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Returns everything this lease holds to the budget (it stays usable).
    pub fn release(&mut self) {
        if self.held > 0 {
            self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
            self.held = 0;
        }
    }
}

impl Drop for BudgetLease {
    fn drop(&mut self) {
        self.release();
    }
}

// === impl OverBudget ===

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's budget of buffered bytes is spent ({} of {} bytes held by requests in \
             flight, {} more needed); retry later, or raise the budget flag if the pod's memory \
             limit allows",
            self.in_use, self.limit, self.requested
        )
    }
}

impl std::error::Error for OverBudget {}

#[cfg(test)]
mod tests;
