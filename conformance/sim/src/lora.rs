//! LoRA adapters: which are registered (servable by name) and which are resident in one of
//! the `max_loras` GPU slots.
//!
//! An adapter becomes resident when the scheduler first admits a request for it. Loading
//! takes a slot — a free one, or the least recently used slot whose adapter has no running
//! request — and costs `lora_load_us` on the step that does it, plus `lora_kv_tokens` of KV
//! for as long as it stays resident. A request whose adapter cannot get a slot stays in
//! the waiting queue while requests behind it may go ahead (vLLM skips it the same way).

use std::sync::Arc;

use crate::error::SimError;
use crate::kv::BlockId;
use crate::units::Micros;

/// Can the scheduler admit a request for a given adapter now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoraAdmit {
    /// Already resident.
    Resident,
    /// Must be loaded first, evicting the idle adapter in slot `evict` if set.
    Load {
        /// Slot to free first.
        evict: Option<usize>,
    },
    /// Every slot holds an adapter with running requests.
    NoSlot,
}

#[derive(Debug, Clone)]
struct Resident {
    name: Arc<str>,
    running: u32,
    last_used: Micros,
    blocks: Vec<BlockId>,
}

/// Registered adapters and GPU slots of one engine.
#[derive(Debug, Clone)]
pub struct LoraSlots {
    max_loras: usize,
    registered: Vec<Arc<str>>,
    resident: Vec<Resident>,
}

impl LoraSlots {
    /// Slots for `max_loras` adapters, with `adapters` registered up front.
    pub fn new(max_loras: usize, adapters: impl IntoIterator<Item = String>) -> Self {
        let mut s = Self {
            max_loras,
            registered: Vec::new(),
            resident: Vec::new(),
        };
        for a in adapters {
            // Duplicates on the command line are harmless; keep the first.
            let _ = s.register(&a);
        }
        s
    }

    /// Slot count (`max_lora` in `vllm:lora_requests_info`).
    pub fn max_loras(&self) -> usize {
        self.max_loras
    }

    /// Whether `name` may be requested.
    pub fn is_registered(&self, name: &str) -> bool {
        self.registered.iter().any(|r| &**r == name)
    }

    /// The registered `Arc` for `name` (so requests share one allocation).
    pub fn get(&self, name: &str) -> Option<Arc<str>> {
        self.registered.iter().find(|r| &***r == name).cloned()
    }

    /// Registered adapters, in registration order.
    pub fn registered(&self) -> &[Arc<str>] {
        &self.registered
    }

    /// Adds an adapter (`/v1/load_lora_adapter`).
    pub fn register(&mut self, name: &str) -> Result<(), SimError> {
        if self.is_registered(name) {
            return Err(SimError::Lora(format!(
                "The lora adapter '{name}' has already been loaded."
            )));
        }
        self.registered.push(Arc::from(name));
        Ok(())
    }

    /// Removes an adapter (`/v1/unload_lora_adapter`). A resident copy stays until its slot
    /// is reused; new requests for it are refused.
    pub fn unregister(&mut self, name: &str) -> Result<(), SimError> {
        let before = self.registered.len();
        self.registered.retain(|r| &**r != name);
        if self.registered.len() == before {
            return Err(SimError::UnknownModel(name.to_owned()));
        }
        Ok(())
    }

    /// Whether a request for `name` can be admitted now, and at what cost.
    pub fn check(&self, name: &str) -> LoraAdmit {
        if self.resident.iter().any(|r| &*r.name == name) {
            return LoraAdmit::Resident;
        }
        if self.resident.len() < self.max_loras {
            return LoraAdmit::Load { evict: None };
        }
        self.resident
            .iter()
            .enumerate()
            .filter(|(_, r)| r.running == 0)
            .min_by_key(|(_, r)| r.last_used)
            .map_or(LoraAdmit::NoSlot, |(i, _)| LoraAdmit::Load {
                evict: Some(i),
            })
    }

    /// KV blocks held by the adapter in slot `i`.
    pub fn slot_blocks(&self, i: usize) -> usize {
        self.resident.get(i).map_or(0, |r| r.blocks.len())
    }

    /// Empties slot `i`, returning the KV blocks to release.
    pub fn evict(&mut self, i: usize) -> Vec<BlockId> {
        if i < self.resident.len() {
            self.resident.swap_remove(i).blocks
        } else {
            Vec::new()
        }
    }

    /// Makes `name` resident, holding `blocks` of KV.
    pub fn load(&mut self, name: Arc<str>, blocks: Vec<BlockId>, now: Micros) {
        self.resident.push(Resident {
            name,
            running: 0,
            last_used: now,
            blocks,
        });
    }

    /// A request for `name` started running.
    pub fn acquire(&mut self, name: &str, now: Micros) {
        if let Some(r) = self.resident.iter_mut().find(|r| &*r.name == name) {
            r.running += 1;
            r.last_used = now;
        }
    }

    /// A request for `name` stopped running (finished, aborted or preempted).
    pub fn release(&mut self, name: &str) {
        if let Some(r) = self.resident.iter_mut().find(|r| &*r.name == name) {
            r.running = r.running.saturating_sub(1);
        }
    }

    /// Resident adapters with at least one running request, sorted.
    pub fn running(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .resident
            .iter()
            .filter(|r| r.running > 0)
            .map(|r| &*r.name)
            .collect();
        v.sort_unstable();
        v
    }

    /// Resident adapters, sorted.
    pub fn resident(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.resident.iter().map(|r| &*r.name).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_fill_then_evict_idle_lru_then_block() {
        let mut s = LoraSlots::new(2, ["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        assert!(s.register("a").is_err());
        assert_eq!(s.check("a"), LoraAdmit::Load { evict: None });
        s.load(Arc::from("a"), vec![], 1);
        s.load(Arc::from("b"), vec![7], 2);
        assert_eq!(s.check("a"), LoraAdmit::Resident);
        // Both idle: the least recently used (a, slot 0) goes.
        assert_eq!(s.check("c"), LoraAdmit::Load { evict: Some(0) });
        s.acquire("a", 3);
        assert_eq!(s.check("c"), LoraAdmit::Load { evict: Some(1) });
        assert_eq!(s.slot_blocks(1), 1);
        s.acquire("b", 4);
        assert_eq!(s.check("c"), LoraAdmit::NoSlot);
        assert_eq!(s.running(), vec!["a", "b"]);
        s.release("b");
        assert_eq!(s.evict(1), vec![7]);
        assert_eq!(s.resident(), vec!["a"]);
        assert!(s.unregister("c").is_ok());
        assert!(s.unregister("c").is_err());
    }
}
