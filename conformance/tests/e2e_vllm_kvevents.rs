//! The picker's KV-event decoder (`switchyard_epp::kvevents`) on a real vLLM's ZMQ stream:
//! BlockStored for every full block of a prompt, BlockRemoved once a small cache
//! (`--num-gpu-blocks-override`) has to evict, sequence numbers a tracker follows, a gap
//! when the subscriber was away, and the replay socket returning exactly the missed batches.
//!
//! With a `tcp://*:<port>` endpoint vLLM binds the publisher and the test connects; with a
//! loopback address vLLM connects and the subscriber must bind (the second test). Needs
//! `cargo xtask vllm setup`; takes one of the machine's two real-vLLM slots.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::vllm::VllmServer;
use switchyard_epp::kvevents::sequence::{Observed, SequenceTracker};
use switchyard_epp::kvevents::{self, KvEvent, Message};
use switchyard_local::vllm::{CPU_BLOCK_SIZE, ServeOptions};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

/// Blocks in the whole cache: one request of the full 2,048-token context fits, a few long
/// prompts do not.
const CACHE_BLOCKS: u32 = 20;

async fn subscribe(server: &VllmServer) -> SubSocket {
    let port = server.options.kv_events_port.unwrap();
    let mut socket = SubSocket::new();
    socket
        .connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    socket.subscribe("").await.unwrap();
    // A subscription takes a moment to reach the publisher; batches published before that
    // are dropped by ZMQ, which is what the gap check below relies on, not what it tests.
    tokio::time::sleep(Duration::from_millis(500)).await;
    socket
}

/// Every message that arrives within `quiet` of the previous one.
async fn drain(socket: &mut SubSocket, quiet: Duration) -> Vec<Message> {
    drain_raw(socket, quiet)
        .await
        .iter()
        .map(|frames| kvevents::decode_message(frames).unwrap())
        .collect()
}

/// The raw frames of every message that arrives within `quiet` of the previous one.
async fn drain_raw(socket: &mut SubSocket, quiet: Duration) -> Vec<Vec<Bytes>> {
    let mut out = Vec::new();
    while let Ok(received) = tokio::time::timeout(quiet, socket.recv()).await {
        out.push(received.unwrap().into_vec());
    }
    out
}

/// The msgpack layout of a payload: the batch's item kinds and, per event type, the keys
/// written and the kind of each value (`nil` kept: vLLM writes nil for unset fields without
/// a default, and a strict decoder may rely on it).
fn layout(payload: &[u8]) -> std::collections::BTreeSet<String> {
    use rmpv::Value;
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Nil => "nil",
            Value::Boolean(_) => "bool",
            Value::Integer(_) => "int",
            Value::F32(_) | Value::F64(_) => "float",
            Value::String(_) => "str",
            Value::Binary(_) => "bin",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Ext(..) => "ext",
        }
    }
    let value = rmpv::decode::read_value(&mut &payload[..]).unwrap();
    let mut out = std::collections::BTreeSet::new();
    let Value::Array(items) = &value else {
        panic!("{value}");
    };
    out.insert(format!(
        "batch: [{}]",
        items.iter().map(kind).collect::<Vec<_>>().join(", ")
    ));
    for event in items[1].as_array().unwrap() {
        let fields = event.as_map().unwrap();
        let kind_of = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v)
        };
        let tag = kind_of("type").and_then(|v| v.as_str()).unwrap().to_owned();
        for (key, v) in fields {
            // An adapter's name is nil for base-model blocks: both kinds are the field.
            let kind = if key.as_str() == Some("lora_name") {
                "str|nil"
            } else {
                kind(v)
            };
            out.insert(format!("{tag}.{}: {kind}", key.as_str().unwrap()));
        }
    }
    out
}

async fn prompt(client: &HttpClient, server: &VllmServer, text: &str) {
    let body = json!({"model": "tiny", "prompt": text, "max_tokens": 1});
    let answer = client
        .post(
            &server.url("/v1/completions"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// A prompt of about 5 blocks, different for each `seed`.
fn long_prompt(seed: usize) -> String {
    (0..700)
        .map(|i| ["one", "two", "three", "four", "five"][(i * (seed + 3) + seed) % 5])
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_real_vllm_kv_events_decode_with_removals_gaps_and_replay() {
    let server = VllmServer::start(ServeOptions {
        kv_events_port: Some(0),
        kv_replay_port: Some(0),
        num_blocks: Some(CACHE_BLOCKS),
        ..ServeOptions::default()
    })
    .await
    .unwrap();
    let client = HttpClient::new();
    let mut socket = subscribe(&server).await;
    let mut tracker = SequenceTracker::default();

    // Four distinct long prompts: ~20 full blocks stored, so the cache of 20 must evict.
    for seed in 0..4 {
        prompt(&client, &server, &long_prompt(seed)).await;
    }
    let raw = drain_raw(&mut socket, Duration::from_secs(3)).await;
    assert!(!raw.is_empty(), "no KV events arrived");
    let messages: Vec<Message> = raw
        .iter()
        .map(|frames| kvevents::decode_message(frames).unwrap())
        .collect();
    simulator_writes_the_same_layout(&raw);
    let topic = format!("kv@127.0.0.1:{}@tiny", server.options.port);
    let (mut stored, mut removed) = (0usize, 0usize);
    for (index, message) in messages.iter().enumerate() {
        assert_eq!(message.topic, topic);
        let observed = tracker.observe(message.seq);
        if index > 0 {
            assert_eq!(observed, Observed::Next, "seq {} in order", message.seq);
        }
        for event in &message.batch.events {
            match event {
                KvEvent::BlockStored(s) => {
                    assert_eq!(s.block_size, CPU_BLOCK_SIZE);
                    assert_eq!(
                        s.token_ids.len(),
                        s.block_hashes.len() * CPU_BLOCK_SIZE as usize,
                        "one block of tokens per hash"
                    );
                    stored += s.block_hashes.len();
                }
                KvEvent::BlockRemoved(r) => removed += r.block_hashes.len(),
                KvEvent::AllBlocksCleared => {}
                KvEvent::Unknown(kind) => panic!("vLLM sent an unknown event type {kind}"),
            }
        }
    }
    assert!(
        stored >= 16,
        "4 prompts of ~5 blocks stored {stored} blocks"
    );
    assert!(
        removed > 0,
        "a cache of {CACHE_BLOCKS} blocks had to evict after {stored} stored"
    );

    // Away for one request: the next batch seen after reconnecting shows the gap.
    drop(socket);
    prompt(&client, &server, &long_prompt(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut socket = subscribe(&server).await;
    prompt(&client, &server, &long_prompt(11)).await;
    let after = drain(&mut socket, Duration::from_secs(3)).await;
    let first = after.first().expect("events after reconnecting");
    let Observed::Gap {
        missing_from,
        missing,
    } = tracker.observe(first.seq)
    else {
        panic!("expected a gap before seq {}", first.seq);
    };

    // The replay socket returns exactly the missed batches, then its end marker.
    let port = server.options.kv_replay_port.unwrap();
    let mut dealer = DealerSocket::new();
    dealer
        .connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    let request: Vec<Bytes> = kvevents::replay_request(missing_from)
        .into_iter()
        .map(Bytes::from)
        .collect();
    dealer
        .send(ZmqMessage::try_from(request).unwrap())
        .await
        .unwrap();
    let mut replayed = Vec::new();
    loop {
        let frames = tokio::time::timeout(Duration::from_secs(5), dealer.recv())
            .await
            .expect("the replay socket answers")
            .unwrap()
            .into_vec();
        match kvevents::decode_replay(&frames).unwrap() {
            Some(message) => replayed.push(message.seq),
            None => break,
        }
    }
    let wanted: Vec<u64> = (missing_from..missing_from + missing).collect();
    assert!(
        replayed.starts_with(&wanted),
        "replay from {missing_from} returned {replayed:?}, missed {wanted:?}"
    );
}

/// A concrete (loopback) endpoint makes vLLM connect its publisher: the subscriber binds,
/// and the same decoder reads what arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_real_vllm_connects_to_a_subscriber_that_binds() {
    let mut socket = SubSocket::new();
    let bound = socket.bind("tcp://127.0.0.1:0").await.unwrap();
    socket.subscribe("").await.unwrap();
    let zeromq::Endpoint::Tcp(_, port) = bound else {
        panic!("bound {bound:?}");
    };
    let server = VllmServer::start(ServeOptions {
        kv_events_connect: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        ..ServeOptions::default()
    })
    .await
    .unwrap();
    let client = HttpClient::new();
    // The publisher's connection may still be settling: ask until a BlockStored arrives.
    let mut stored = None;
    for seed in 20..30 {
        prompt(&client, &server, &long_prompt(seed)).await;
        let messages = drain(&mut socket, Duration::from_secs(2)).await;
        stored = messages
            .iter()
            .flat_map(|m| &m.batch.events)
            .find_map(|e| match e {
                KvEvent::BlockStored(s) => Some(s.clone()),
                _ => None,
            });
        if stored.is_some() {
            break;
        }
    }
    let stored = stored.expect("a BlockStored reached the bound subscriber");
    assert_eq!(stored.block_size, CPU_BLOCK_SIZE);
    assert!(!stored.block_hashes.is_empty());
}

/// The simulator's encoder (`switchyard_sim::kvevents`) writes what vLLM writes: the same
/// batch layout and, per event type, the same keys with the same kinds of value; and the
/// picker's decoder reads it back.
fn simulator_writes_the_same_layout(real: &[Vec<Bytes>]) {
    use switchyard_sim::kvevents::{SimKvEvent, encode_payload, frames};
    let mut real_layout = std::collections::BTreeSet::new();
    for message in real {
        real_layout.extend(layout(&message[2]));
    }
    let sim = encode_payload(
        1.0,
        &[
            SimKvEvent::Stored {
                hashes: vec![1, 2],
                parent: None,
                token_ids: vec![7; 2 * CPU_BLOCK_SIZE as usize],
                block_size: CPU_BLOCK_SIZE,
                lora_name: None,
            },
            SimKvEvent::Removed { hashes: vec![1] },
        ],
    );
    let sim_layout = layout(&sim);
    // Compare the event types vLLM sent in this run (AllBlocksCleared needs a reset).
    let sent: std::collections::BTreeSet<&String> = real_layout.iter().collect();
    let expected: std::collections::BTreeSet<&String> = sim_layout.iter().collect();
    assert_eq!(sent, expected, "vLLM's layout vs the simulator's");
    let decoded = kvevents::decode_message(&frames("kv@sim@tiny", 1, sim)).unwrap();
    assert_eq!(decoded.batch.events.len(), 2);
}
