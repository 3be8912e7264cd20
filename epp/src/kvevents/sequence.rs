//! Lost batches: the publisher numbers its batches, a subscriber that sees a jump knows what
//! it missed and can ask the replay socket for it.
//!
//! ZMQ's PUB socket drops messages when a subscriber is slow or (re)connecting, so a gap is
//! normal, not an error: the index is then stale until the missing batches are replayed.

/// What one sequence number means after the ones seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The first batch this subscriber has seen.
    First,
    /// The batch after the previous one.
    Next,
    /// Batches `missing_from..seq` never arrived: replay from `missing_from`.
    Gap {
        /// The first lost sequence number.
        missing_from: u64,
        /// How many were lost.
        missing: u64,
    },
    /// A number at or below the last one: a replayed batch already seen, or a publisher that
    /// restarted its counter (after which the index must be rebuilt).
    Behind,
}

/// The last sequence number seen from one publisher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceTracker {
    last: Option<u64>,
}

impl SequenceTracker {
    /// Records `seq` and says how it follows the last one.
    pub fn observe(&mut self, seq: u64) -> Observed {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return Observed::First;
        };
        if seq <= last {
            // A restarted publisher counts from 0 again; follow it so later batches count as
            // in order.
            self.last = Some(seq);
            return Observed::Behind;
        }
        self.last = Some(seq);
        if seq == last + 1 {
            Observed::Next
        } else {
            Observed::Gap {
                missing_from: last + 1,
                missing: seq - last - 1,
            }
        }
    }

    /// The last sequence number seen.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}
