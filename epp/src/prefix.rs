//! The approximate prefix-cache index (docs/upstream.md#scheduler): which prompt prefixes each
//! model server has probably cached, learnt from our own routing decisions.
//!
//! - [`hash_prompt`]: chained xxh3 hashes of fixed-size character blocks,
//!   seeded by the target model (and cache salt), so adapters never share.
//! - [`PrefixTable`]: one per endpoint, a set-associative LRU of block hashes
//!   made of atomics: 8 ways per set, one 64-byte cache line, most recent
//!   first. Lookups and inserts take no lock; a racing insert can at worst
//!   drop or duplicate an entry, which only makes the approximation a little
//!   coarser. An entry is one `u64` (8 bytes); upstream's Go LRU costs 60–70.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Upstream's default block size in tokens.
pub const DEFAULT_BLOCK_SIZE_TOKENS: usize = 16;
/// Characters per token assumed when cutting text into blocks (upstream's 4).
pub const CHARS_PER_TOKEN: usize = 4;
/// Upstream's default cap on hashed blocks.
pub const DEFAULT_MAX_PREFIX_BLOCKS: usize = 256;
/// Upstream's default entries per server.
pub const DEFAULT_LRU_CAPACITY_PER_SERVER: usize = 31_250;
/// Ways per set: 8 × 8 bytes fill one cache line.
pub const WAYS: usize = 8;

/// The marker of an empty way; a real hash of 0 is stored as 1 instead.
const EMPTY: u64 = 0;

/// Writes the chained block hashes of `text` into `out` (cleared first):
/// h₀ = xxh3(model ‖ 0 ‖ salt), hᵢ = xxh3_seeded(blockᵢ, hᵢ₋₁). A trailing
/// partial block is not hashed, so text shorter than one block yields none.
pub fn hash_prompt(
    model: &str,
    cache_salt: &str,
    text: &[u8],
    block_chars: usize,
    max_blocks: usize,
    out: &mut Vec<u64>,
) {
    out.clear();
    if block_chars == 0 {
        return;
    }
    let mut previous = seed(model, cache_salt);
    for block in text.chunks_exact(block_chars).take(max_blocks) {
        previous = nonzero(xxh3_64_with_seed(block, previous));
        out.push(previous);
    }
}

fn seed(model: &str, cache_salt: &str) -> u64 {
    // Hash the two strings separately and combine, to avoid a per-request
    // buffer; the 0 separator makes ("ab", "") and ("a", "b") differ.
    let model_hash = xxh3_64(model.as_bytes());
    xxh3_64_with_seed(cache_salt.as_bytes(), model_hash ^ 0x9e37_79b9_7f4a_7c15)
}

fn nonzero(hash: u64) -> u64 {
    if hash == EMPTY { 1 } else { hash }
}

/// One server's set-associative LRU of block hashes.
#[derive(Debug)]
pub struct PrefixTable {
    sets: usize,
    /// Allocated on the first insert, so idle endpoints cost nothing.
    ways: OnceLock<Box<[AtomicU64]>>,
}

impl PrefixTable {
    /// A table holding about `capacity` entries (rounded up to whole sets).
    pub fn new(capacity: usize) -> Self {
        Self {
            sets: capacity.div_ceil(WAYS).max(1),
            ways: OnceLock::new(),
        }
    }

    /// The number of entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.sets * WAYS
    }

    /// Bytes the table occupies once allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<AtomicU64>()
    }

    fn set(&self, hash: u64) -> usize {
        // Multiply-shift maps the hash onto 0..sets without a division.
        ((u128::from(hash) * self.sets as u128) >> 64) as usize * WAYS
    }

    /// Whether `hash` is (probably) cached on this server.
    pub fn contains(&self, hash: u64) -> bool {
        let Some(ways) = self.ways.get() else {
            return false;
        };
        let start = self.set(hash);
        ways.get(start..start + WAYS)
            .is_some_and(|set| set.iter().any(|w| w.load(Ordering::Relaxed) == hash))
    }

    /// How many of `hashes`, from the first, are cached consecutively.
    pub fn matched_blocks(&self, hashes: &[u64]) -> usize {
        hashes.iter().take_while(|h| self.contains(**h)).count()
    }

    /// Records `hash` as most recently used, evicting its set's least recent.
    pub fn insert(&self, hash: u64) {
        let ways = self.ways.get_or_init(|| {
            (0..self.capacity())
                .map(|_| AtomicU64::new(EMPTY))
                .collect()
        });
        let start = self.set(hash);
        let Some(set) = ways.get(start..start + WAYS) else {
            return;
        };
        let position = set
            .iter()
            .position(|w| w.load(Ordering::Relaxed) == hash)
            .unwrap_or(WAYS - 1);
        // Shift the more recent entries down one way, then put `hash` first.
        for i in (1..=position).rev() {
            set[i].store(set[i - 1].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        set[0].store(hash, Ordering::Relaxed);
    }

    /// Entries currently held (a scan; for metrics and tests).
    pub fn len(&self) -> usize {
        self.ways.get().map_or(0, |ways| {
            ways.iter()
                .filter(|w| w.load(Ordering::Relaxed) != EMPTY)
                .count()
        })
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self::new(DEFAULT_LRU_CAPACITY_PER_SERVER)
    }
}

#[cfg(test)]
mod tests;
