//! KV-cache events in vLLM's wire format, for a simulator that publishes them.
//!
//! vLLM sends one ZMQ message per batch: `[topic, seq (8-byte big-endian), payload]`, the
//! payload a msgpack array `[timestamp, events, data_parallel_rank]` and each event a map
//! tagged by `"type"`. Fields without a default are always written (as nil when unset);
//! fields with one are left out. This module only encodes; the engine does not publish yet
//! (see the README), but the encoding is checked against a real vLLM's stream with the
//! picker's decoder (`conformance/tests/e2e_vllm_kvevents.rs`).

use rmpv::Value;

/// One cache change, as the simulator would report it.
#[derive(Clone, Debug, PartialEq)]
pub enum SimKvEvent {
    /// Full blocks entered the cache.
    Stored {
        /// Chained block hashes, in prompt order.
        hashes: Vec<u64>,
        /// The block before the first one, if any.
        parent: Option<u64>,
        /// The blocks' tokens (`block_size` per hash).
        token_ids: Vec<u32>,
        /// Tokens per block.
        block_size: u32,
        /// The adapter the blocks belong to.
        lora_name: Option<String>,
    },
    /// Blocks were evicted.
    Removed {
        /// Their hashes.
        hashes: Vec<u64>,
    },
    /// Everything was dropped.
    AllCleared,
}

/// The payload of one batch.
pub fn encode_payload(timestamp: f64, events: &[SimKvEvent]) -> Vec<u8> {
    let events = events.iter().map(event_value).collect();
    // One engine: data-parallel rank 0, which vLLM writes rather than leaving out.
    let batch = Value::Array(vec![
        Value::F64(timestamp),
        Value::Array(events),
        Value::from(0),
    ]);
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &batch);
    out
}

/// The three frames of one published message.
pub fn frames(topic: &str, seq: u64, payload: Vec<u8>) -> [Vec<u8>; 3] {
    [
        topic.as_bytes().to_vec(),
        seq.to_be_bytes().to_vec(),
        payload,
    ]
}

fn event_value(event: &SimKvEvent) -> Value {
    let entry = |k: &str, v: Value| (Value::from(k), v);
    let hashes = |h: &[u64]| Value::Array(h.iter().map(|x| Value::from(*x)).collect());
    let fields = match event {
        SimKvEvent::Stored {
            hashes: h,
            parent,
            token_ids,
            block_size,
            lora_name,
        } => vec![
            entry("type", "BlockStored".into()),
            entry("block_hashes", hashes(h)),
            entry("parent_block_hash", parent.map_or(Value::Nil, Value::from)),
            entry(
                "token_ids",
                Value::Array(token_ids.iter().map(|t| Value::from(*t)).collect()),
            ),
            entry("block_size", Value::from(*block_size)),
            // Deprecated in vLLM but still written (nil).
            entry("lora_id", Value::Nil),
            entry("medium", "GPU".into()),
            entry(
                "lora_name",
                lora_name.as_deref().map_or(Value::Nil, Value::from),
            ),
            // Per block, what else went into its hash: the adapter's name, if any.
            entry(
                "extra_keys",
                Value::Array(
                    h.iter()
                        .map(|_| {
                            lora_name
                                .as_deref()
                                .map_or(Value::Nil, |n| Value::Array(vec![Value::from(n)]))
                        })
                        .collect(),
                ),
            ),
            // One KV cache group of full attention, as a Llama has.
            entry("group_idx", Value::from(0)),
            entry("kv_cache_spec_kind", "full_attention".into()),
        ],
        SimKvEvent::Removed { hashes: h } => vec![
            entry("type", "BlockRemoved".into()),
            entry("block_hashes", hashes(h)),
            entry("medium", "GPU".into()),
            entry("group_idx", Value::from(0)),
        ],
        SimKvEvent::AllCleared => vec![entry("type", "AllBlocksCleared".into())],
    };
    Value::Map(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_an_array_of_timestamp_events_and_rank() {
        let payload = encode_payload(2.5, &[SimKvEvent::Removed { hashes: vec![1, 2] }]);
        let value = rmpv::decode::read_value(&mut payload.as_slice()).unwrap();
        let Value::Array(items) = value else {
            panic!("{value:?}");
        };
        assert_eq!(items[0], Value::F64(2.5));
        assert_eq!(items[2], Value::from(0));
        let Value::Array(events) = &items[1] else {
            panic!("{items:?}");
        };
        let Value::Map(fields) = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(
            fields[0],
            (Value::from("type"), Value::from("BlockRemoved"))
        );
        let [topic, seq, _] = frames("kv@a@m", 258, payload);
        assert_eq!(topic, b"kv@a@m");
        assert_eq!(seq, [0, 0, 0, 0, 0, 0, 1, 2]);
    }
}
