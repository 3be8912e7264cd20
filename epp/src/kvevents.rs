//! vLLM's KV-cache events as they arrive over ZMQ, decoded without I/O.
//!
//! A model server started with `--kv-events-config '{"enable_kv_cache_events": true,
//! "publisher": "zmq", ...}'` publishes one message per batch of cache changes: three frames
//! `[topic, seq, payload]`, `seq` an 8-byte big-endian counter, `payload` a msgpack array
//! `[timestamp, events, data_parallel_rank]`. Each event is a msgpack **map** tagged by its
//! `"type"` key (`BlockStored`, `BlockRemoved`, `AllBlocksCleared`); vLLM leaves out fields
//! that hold their default value, so every optional field may be absent. A block hash is an
//! integer, or raw bytes when the server hashes with a full digest.
//!
//! The replay socket (a ROUTER beside the publisher) answers a DEALER's
//! `[b"", start_seq]` with `[b"", topic, seq, payload]` per buffered batch, then an end
//! marker whose sequence is [`REPLAY_END`]; [`replay_request`] and [`decode_replay`] build and
//! read those. [`sequence::SequenceTracker`] says when batches were lost and which to replay.
//!
//! Everything read is bounded before it is kept ([`MAX_PAYLOAD_BYTES`], [`MAX_EVENTS`],
//! [`MAX_HASHES`], [`MAX_TEXT_BYTES`]): the stream comes from a pod, not from a trusted hop.

pub mod sequence;

use rmpv::Value;

use crate::error::Error;

/// Largest payload decoded; a batch of a few hundred events is a few kilobytes.
pub const MAX_PAYLOAD_BYTES: usize = 4 << 20;
/// Most events kept from one batch.
pub const MAX_EVENTS: usize = 4096;
/// Most block hashes (and token ids) kept from one event.
pub const MAX_HASHES: usize = 16_384;
/// Longest string (topic, medium, LoRA name) kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// The sequence number of the replay socket's end marker.
pub const REPLAY_END: u64 = u64::MAX;

/// A block's hash as the server published it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockHash {
    /// A 64-bit hash (vLLM's default for events; negative values are kept as their bits).
    Int(u64),
    /// A digest, when the server publishes the full hash.
    Bytes(Vec<u8>),
}

/// One cache change.
#[derive(Clone, Debug, PartialEq)]
pub enum KvEvent {
    /// Blocks entered the cache.
    BlockStored(BlockStored),
    /// Blocks left the cache.
    BlockRemoved(BlockRemoved),
    /// The whole cache was dropped (say, on a reset).
    AllBlocksCleared,
    /// An event type this decoder does not know, kept by name so a newer server is noticed
    /// rather than misread.
    Unknown(String),
}

/// `BlockStored`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockStored {
    /// The new blocks, in prompt order.
    pub block_hashes: Vec<BlockHash>,
    /// The block before the first one, when the chain does not start at the prompt's head.
    pub parent_block_hash: Option<BlockHash>,
    /// The tokens of the new blocks.
    pub token_ids: Vec<u32>,
    /// Tokens per block.
    pub block_size: u32,
    /// The adapter the blocks were computed under.
    pub lora_name: Option<String>,
    /// Where the blocks live ("GPU" even on a CPU server).
    pub medium: Option<String>,
    /// The KV cache group (hybrid models have several).
    pub group_idx: Option<u32>,
}

/// `BlockRemoved`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockRemoved {
    /// The evicted blocks.
    pub block_hashes: Vec<BlockHash>,
    /// Where they lived.
    pub medium: Option<String>,
    /// The KV cache group.
    pub group_idx: Option<u32>,
}

/// One decoded payload.
#[derive(Clone, Debug, PartialEq)]
pub struct EventBatch {
    /// Seconds since the epoch, as the server's clock said.
    pub timestamp: f64,
    /// The events, in order.
    pub events: Vec<KvEvent>,
    /// The data-parallel rank that published it, when the server has several.
    pub data_parallel_rank: Option<u32>,
}

/// One published message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The topic (`kv@<pod>@<model>` by llm-d's convention), cut to [`MAX_TEXT_BYTES`].
    pub topic: String,
    /// The publisher's batch counter.
    pub seq: u64,
    /// The events.
    pub batch: EventBatch,
}

/// Decodes a published message from its three frames.
pub fn decode_message<F: AsRef<[u8]>>(frames: &[F]) -> Result<Message, Error> {
    let [topic, seq, payload] = frames else {
        return Err(bad(format!(
            "a message has 3 frames (topic, sequence, payload), got {}",
            frames.len()
        )));
    };
    Ok(Message {
        topic: text_from_bytes(topic.as_ref()),
        seq: decode_seq(seq.as_ref())?,
        batch: decode_batch(payload.as_ref())?,
    })
}

/// The two frames a DEALER sends the replay socket to get every buffered batch from
/// `start_seq` on.
pub fn replay_request(start_seq: u64) -> [Vec<u8>; 2] {
    [Vec::new(), start_seq.to_be_bytes().to_vec()]
}

/// One replay answer: a batch, or `None` for the end marker.
pub fn decode_replay<F: AsRef<[u8]>>(frames: &[F]) -> Result<Option<Message>, Error> {
    let Some((delimiter, rest)) = frames.split_first() else {
        return Err(bad("a replay answer has no frames".to_owned()));
    };
    if !delimiter.as_ref().is_empty() {
        return Err(bad(
            "a replay answer starts with an empty delimiter frame".to_owned()
        ));
    }
    if let [_, seq, _] = rest
        && decode_seq(seq.as_ref())? == REPLAY_END
    {
        return Ok(None);
    }
    decode_message(rest).map(Some)
}

/// Reads the 8-byte big-endian sequence frame.
pub fn decode_seq(frame: &[u8]) -> Result<u64, Error> {
    let bytes: [u8; 8] = frame.try_into().map_err(|_| {
        bad(format!(
            "the sequence frame is 8 bytes (big-endian), got {}",
            frame.len()
        ))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Decodes a payload: `[timestamp, events, data_parallel_rank?]`.
pub fn decode_batch(payload: &[u8]) -> Result<EventBatch, Error> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(bad(format!(
            "payload of {} bytes is over the {MAX_PAYLOAD_BYTES}-byte bound",
            payload.len()
        )));
    }
    let mut reader = payload;
    let value = rmpv::decode::read_value(&mut reader)
        .map_err(|err| bad(format!("payload is not msgpack: {err}")))?;
    let Value::Array(fields) = value else {
        return Err(bad(
            "payload is a msgpack array [timestamp, events, data_parallel_rank]".to_owned(),
        ));
    };
    let (timestamp, events, rank) = match fields.as_slice() {
        [ts, events] => (ts, events, None),
        [ts, events, rank] => (ts, events, Some(rank)),
        other => {
            return Err(bad(format!(
                "payload array has {} items, expected 2 or 3",
                other.len()
            )));
        }
    };
    let timestamp = timestamp
        .as_f64()
        .or_else(|| timestamp.as_i64().map(|t| t as f64))
        .ok_or_else(|| bad("the timestamp is not a number".to_owned()))?;
    let Value::Array(events) = events else {
        return Err(bad("events is not an array".to_owned()));
    };
    if events.len() > MAX_EVENTS {
        return Err(bad(format!(
            "{} events in one batch, over the bound of {MAX_EVENTS}",
            events.len()
        )));
    }
    let events = events.iter().map(decode_event).collect::<Result<_, _>>()?;
    let data_parallel_rank = match rank {
        None | Some(Value::Nil) => None,
        Some(rank) => Some(small_uint(rank, "data_parallel_rank")?),
    };
    Ok(EventBatch {
        timestamp,
        events,
        data_parallel_rank,
    })
}

fn decode_event(value: &Value) -> Result<KvEvent, Error> {
    let Value::Map(entries) = value else {
        return Err(bad(
            "an event is a msgpack map with a \"type\" key".to_owned()
        ));
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(_, value)| value)
            .filter(|value| !value.is_nil())
    };
    let kind = field("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("an event has no string \"type\"".to_owned()))?;
    let text = |name: &str| field(name).and_then(Value::as_str).map(text_from_str);
    let group_idx = field("group_idx")
        .map(|v| small_uint(v, "group_idx"))
        .transpose()?;
    match kind {
        "BlockStored" => Ok(KvEvent::BlockStored(BlockStored {
            block_hashes: hashes(field("block_hashes"))?,
            parent_block_hash: field("parent_block_hash").map(hash).transpose()?,
            token_ids: token_ids(field("token_ids"))?,
            block_size: field("block_size")
                .map(|v| small_uint(v, "block_size"))
                .transpose()?
                .unwrap_or(0),
            lora_name: text("lora_name"),
            medium: text("medium"),
            group_idx,
        })),
        "BlockRemoved" => Ok(KvEvent::BlockRemoved(BlockRemoved {
            block_hashes: hashes(field("block_hashes"))?,
            medium: text("medium"),
            group_idx,
        })),
        "AllBlocksCleared" => Ok(KvEvent::AllBlocksCleared),
        other => Ok(KvEvent::Unknown(text_from_str(other))),
    }
}

fn hashes(value: Option<&Value>) -> Result<Vec<BlockHash>, Error> {
    let items = bounded_array(value, "block_hashes")?;
    items.iter().map(hash).collect()
}

fn hash(value: &Value) -> Result<BlockHash, Error> {
    match value {
        Value::Integer(int) => int
            .as_u64()
            // A signed hash keeps its bits: the indexer compares hashes, never orders them.
            .or_else(|| int.as_i64().map(|i| i as u64))
            .map(BlockHash::Int)
            .ok_or_else(|| bad("a block hash does not fit 64 bits".to_owned())),
        Value::Binary(bytes) if bytes.len() <= 64 => Ok(BlockHash::Bytes(bytes.clone())),
        Value::Binary(bytes) => Err(bad(format!(
            "a block hash of {} bytes is over the 64-byte bound",
            bytes.len()
        ))),
        _ => Err(bad("a block hash is an integer or bytes".to_owned())),
    }
}

fn token_ids(value: Option<&Value>) -> Result<Vec<u32>, Error> {
    let items = bounded_array(value, "token_ids")?;
    items.iter().map(|v| small_uint(v, "token id")).collect()
}

fn bounded_array<'a>(value: Option<&'a Value>, name: &str) -> Result<&'a [Value], Error> {
    match value {
        None => Ok(&[]),
        Some(Value::Array(items)) if items.len() <= MAX_HASHES => Ok(items),
        Some(Value::Array(items)) => Err(bad(format!(
            "{name} has {} items, over the bound of {MAX_HASHES}",
            items.len()
        ))),
        Some(_) => Err(bad(format!("{name} is not an array"))),
    }
}

fn small_uint(value: &Value, name: &str) -> Result<u32, Error> {
    value
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| bad(format!("{name} is not an unsigned 32-bit integer")))
}

fn text_from_bytes(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_TEXT_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

fn text_from_str(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn bad(reason: String) -> Error {
    Error::KvEvent(reason)
}

#[cfg(test)]
mod tests;
