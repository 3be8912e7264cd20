//! Paged KV cache: a fixed pool of blocks with reference counts, a hash index for prefix
//! reuse and an LRU free list that keeps hashes.
//!
//! The model follows vLLM's block manager: a block in use by any request has `refs > 0`;
//! when the last user lets go it goes to the **tail** of the free list but keeps its hash
//! and stays findable, so a later request with the same prefix can take it back for free.
//! Fresh allocations pop the **head** (least recently freed) and only then forget the old
//! hash — that is the eviction.

pub mod hash;

use std::collections::HashMap;

pub use hash::BlockHasher;

/// Index of a block in the pool.
pub type BlockId = u32;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Block {
    /// Chained hash of the prefix this block completes, if it holds a full prompt block.
    hash: Option<u64>,
    refs: u32,
    /// Free-list links (valid only while `refs == 0`).
    prev: u32,
    next: u32,
}

/// The KV block pool of one replica.
#[derive(Debug, Clone)]
pub struct BlockPool {
    blocks: Vec<Block>,
    cached: HashMap<u64, BlockId>,
    head: u32,
    tail: u32,
    free: usize,
    evictions: u64,
}

impl BlockPool {
    /// A pool of `n` empty blocks, all free.
    pub fn new(n: usize) -> Self {
        let n32 = u32::try_from(n).unwrap_or(NIL - 1);
        let blocks = (0..n32)
            .map(|i| Block {
                hash: None,
                refs: 0,
                prev: if i == 0 { NIL } else { i - 1 },
                next: if i + 1 == n32 { NIL } else { i + 1 },
            })
            .collect();
        Self {
            blocks,
            cached: HashMap::new(),
            head: if n32 == 0 { NIL } else { 0 },
            tail: if n32 == 0 { NIL } else { n32 - 1 },
            free: n32 as usize,
            evictions: 0,
        }
    }

    /// Number of blocks in the pool.
    pub fn total(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks not referenced by any request (cached or empty).
    pub fn num_free(&self) -> usize {
        self.free
    }

    /// Fraction of blocks referenced by requests, 0–1 (vLLM's `kv_cache_usage_perc`).
    pub fn usage(&self) -> f64 {
        if self.blocks.is_empty() {
            return 0.0;
        }
        (self.blocks.len() - self.free) as f64 / self.blocks.len() as f64
    }

    /// Blocks whose hash was forgotten to make room.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Blocks currently findable by hash (in use or free).
    pub fn num_cached(&self) -> usize {
        self.cached.len()
    }

    /// The block holding `hash`, if it is still cached.
    pub fn lookup(&self, hash: u64) -> Option<BlockId> {
        self.cached.get(&hash).copied()
    }

    /// Number of leading `hashes` present in the cache: the reusable prefix, in blocks.
    pub fn longest_prefix(&self, hashes: &[u64]) -> usize {
        hashes
            .iter()
            .take_while(|h| self.cached.contains_key(h))
            .count()
    }

    /// Whether taking a reference on `id` would consume a free block.
    pub fn is_free(&self, id: BlockId) -> bool {
        self.blocks.get(id as usize).is_some_and(|b| b.refs == 0)
    }

    /// Takes a reference on a cached block found by [`Self::lookup`]. A free block leaves
    /// the free list, so it can no longer be evicted.
    pub fn acquire(&mut self, id: BlockId) {
        let Some(b) = self.blocks.get(id as usize) else {
            return;
        };
        if b.refs == 0 {
            self.unlink(id);
            self.free -= 1;
        }
        self.blocks[id as usize].refs += 1;
    }

    /// A fresh block for new tokens: the least recently freed one. If it still carried a
    /// hash, that cache entry is evicted now.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let id = self.head;
        if id == NIL {
            return None;
        }
        self.unlink(id);
        self.free -= 1;
        let block = &mut self.blocks[id as usize];
        block.refs = 1;
        if let Some(h) = block.hash.take() {
            // Another block may have registered the same hash meanwhile; only drop ours.
            if self.cached.get(&h) == Some(&id) {
                self.cached.remove(&h);
            }
            self.evictions += 1;
        }
        Some(id)
    }

    /// Drops one reference; at zero the block joins the tail of the free list, hash kept.
    pub fn release(&mut self, id: BlockId) {
        let Some(b) = self.blocks.get_mut(id as usize) else {
            return;
        };
        if b.refs == 0 {
            return;
        }
        b.refs -= 1;
        if b.refs == 0 {
            self.push_tail(id);
            self.free += 1;
        }
    }

    /// Records that `id` now holds the full block with chained hash `hash`. If another block
    /// already holds that hash the new copy stays anonymous (vLLM keeps the first too), so
    /// the index never points at two blocks.
    pub fn register(&mut self, id: BlockId, hash: u64) {
        if self.cached.contains_key(&hash) {
            return;
        }
        if let Some(b) = self.blocks.get_mut(id as usize)
            && b.hash.is_none()
        {
            b.hash = Some(hash);
            self.cached.insert(hash, id);
        }
    }

    fn unlink(&mut self, id: BlockId) {
        let (prev, next) = {
            let b = &self.blocks[id as usize];
            (b.prev, b.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.blocks[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.blocks[next as usize].prev = prev;
        }
        let b = &mut self.blocks[id as usize];
        b.prev = NIL;
        b.next = NIL;
    }

    fn push_tail(&mut self, id: BlockId) {
        let tail = self.tail;
        {
            let b = &mut self.blocks[id as usize];
            b.prev = tail;
            b.next = NIL;
        }
        if tail == NIL {
            self.head = id;
        } else {
            self.blocks[tail as usize].next = id;
        }
        self.tail = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_keep_hashes_until_evicted_in_lru_order() {
        let mut pool = BlockPool::new(3);
        let a = pool.allocate().unwrap_or(NIL);
        let b = pool.allocate().unwrap_or(NIL);
        pool.register(a, 11);
        pool.register(b, 22);
        assert_eq!(pool.num_free(), 1);
        assert!((pool.usage() - 2.0 / 3.0).abs() < 1e-9);
        pool.release(a);
        pool.release(b);
        assert_eq!(pool.num_free(), 3);
        assert_eq!(
            pool.longest_prefix(&[11, 22, 33]),
            2,
            "free blocks stay findable"
        );

        // Reusing a cached free block takes it off the free list.
        pool.acquire(b);
        assert_eq!(pool.num_free(), 2);
        // Fresh allocations take the never-used block first, then the LRU one (a).
        let c = pool.allocate().unwrap_or(NIL);
        assert!(c != a && c != b);
        assert_eq!(pool.lookup(11), Some(a));
        let d = pool.allocate().unwrap_or(NIL);
        assert_eq!(d, a);
        assert_eq!(pool.lookup(11), None, "allocation evicted a's hash");
        assert_eq!(pool.evictions(), 1);
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.lookup(22), Some(b), "b is in use, never evicted");
    }

    #[test]
    fn duplicate_hash_is_not_indexed_twice() {
        let mut pool = BlockPool::new(2);
        let a = pool.allocate().unwrap_or(NIL);
        let b = pool.allocate().unwrap_or(NIL);
        pool.register(a, 5);
        pool.register(b, 5);
        assert_eq!(pool.lookup(5), Some(a));
        assert_eq!(pool.num_cached(), 1);
    }
}
