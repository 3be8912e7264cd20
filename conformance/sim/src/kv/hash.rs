//! Chained block hashes over token ids (XXH3-64).
//!
//! Block `i` hashes its own tokens with the hash of block `i − 1` as the XXH3 seed, so a
//! block hash identifies the whole prefix up to and including that block — the property
//! prefix caching relies on (vLLM and llm-d chain the same way). The root of the chain is
//! derived from `hash_seed` and the LoRA adapter name, because KV computed under one
//! adapter is not valid under another. Only full blocks are hashed.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::tokens::BYTES_PER_TOKEN;

/// Computes block-hash chains for one engine configuration (seed and block size).
#[derive(Debug, Clone, Copy)]
pub struct BlockHasher {
    seed: u64,
    block_size: usize,
}

impl BlockHasher {
    /// A hasher for blocks of `block_size` tokens, chains rooted at `hash_seed`.
    pub fn new(hash_seed: u64, block_size: usize) -> Self {
        Self {
            seed: hash_seed,
            block_size: block_size.max(1),
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Chain root for the base model (`None`) or a LoRA adapter.
    pub fn root(&self, lora: Option<&str>) -> u64 {
        match lora {
            None => self.seed,
            Some(name) => xxh3_64_with_seed(name.as_bytes(), self.seed),
        }
    }

    /// Hashes of the full blocks of a prompt given as text (4 bytes per token, see
    /// [`crate::tokens`]): a block is `block_size × 4` bytes.
    pub fn hash_text(&self, lora: Option<&str>, text: &[u8]) -> Vec<u64> {
        let mut prev = self.root(lora);
        text.chunks_exact(self.block_size * BYTES_PER_TOKEN)
            .map(|block| {
                prev = xxh3_64_with_seed(block, prev);
                prev
            })
            .collect()
    }

    /// Hashes of the full blocks of a prompt given as token ids (little-endian bytes of
    /// each id), for workloads generated without text.
    pub fn hash_tokens(&self, lora: Option<&str>, tokens: &[u32]) -> Vec<u64> {
        let mut prev = self.root(lora);
        let mut buf = Vec::with_capacity(self.block_size * 4);
        tokens
            .chunks_exact(self.block_size)
            .map(|block| {
                buf.clear();
                for t in block {
                    buf.extend_from_slice(&t.to_le_bytes());
                }
                prev = xxh3_64_with_seed(&buf, prev);
                prev
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_prefix_lora_and_only_full_blocks_count() {
        let h = BlockHasher::new(42, 2);
        let a = h.hash_tokens(None, &[1, 2, 3, 4, 5]);
        let b = h.hash_tokens(None, &[1, 2, 3, 9]);
        let c = h.hash_tokens(None, &[7, 2, 3, 4]);
        let l = h.hash_tokens(Some("adapter"), &[1, 2, 3, 4]);
        assert_eq!(a.len(), 2, "the trailing partial block is not hashed");
        assert_eq!(a[0], b[0]);
        assert_ne!(a[1], b[1]);
        assert_ne!(a[1], c[1], "same block tokens, different prefix");
        assert_ne!(a[0], l[0], "adapters have their own chains");
        let t = h.hash_text(None, b"abcdefgh-ijklmno-x");
        assert_eq!(t.len(), 2);
        assert_eq!(t, h.hash_text(None, b"abcdefgh-ijklmno"));
    }
}
