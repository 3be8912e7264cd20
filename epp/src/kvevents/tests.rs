//! The decoder on hand-written msgpack bytes shaped as vLLM 0.32 writes them (map-tagged
//! events, default fields left out, integer and byte hashes).

use rmpv::Value;

use super::sequence::{Observed, SequenceTracker};
use super::*;

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

fn ints(values: &[u64]) -> Value {
    Value::Array(values.iter().map(|v| Value::from(*v)).collect())
}

fn stored() -> Value {
    map(&[
        ("type", "BlockStored".into()),
        ("block_hashes", ints(&[11, u64::MAX])),
        ("parent_block_hash", Value::Nil),
        ("token_ids", ints(&[1, 2, 3, 4])),
        ("block_size", 2.into()),
        ("lora_id", Value::Nil),
        ("medium", "GPU".into()),
        ("lora_name", "lora-a".into()),
    ])
}

#[test]
fn a_batch_of_every_event_type_decodes() {
    let removed = map(&[
        ("type", "BlockRemoved".into()),
        ("block_hashes", Value::Array(vec![Value::from(-5i64)])),
        ("medium", "GPU".into()),
        ("group_idx", 1.into()),
    ]);
    let cleared = map(&[("type", "AllBlocksCleared".into())]);
    let payload = encode(&Value::Array(vec![
        Value::F64(1.5),
        Value::Array(vec![stored(), removed, cleared]),
        Value::Nil,
    ]));
    let message = decode_message(&[
        b"kv@127.0.0.1:8000@tiny".to_vec(),
        7u64.to_be_bytes().to_vec(),
        payload,
    ])
    .unwrap();
    assert_eq!(message.topic, "kv@127.0.0.1:8000@tiny");
    assert_eq!(message.seq, 7);
    assert_eq!(message.batch.timestamp, 1.5);
    assert_eq!(message.batch.data_parallel_rank, None);
    let [
        KvEvent::BlockStored(stored),
        KvEvent::BlockRemoved(removed),
        KvEvent::AllBlocksCleared,
    ] = message.batch.events.as_slice()
    else {
        panic!("unexpected events {:?}", message.batch.events);
    };
    assert_eq!(
        stored.block_hashes,
        [BlockHash::Int(11), BlockHash::Int(u64::MAX)]
    );
    assert_eq!(stored.parent_block_hash, None);
    assert_eq!(stored.token_ids, [1, 2, 3, 4]);
    assert_eq!(stored.block_size, 2);
    assert_eq!(stored.lora_name.as_deref(), Some("lora-a"));
    assert_eq!(stored.medium.as_deref(), Some("GPU"));
    // A negative hash keeps its bits.
    assert_eq!(removed.block_hashes, [BlockHash::Int(-5i64 as u64)]);
    assert_eq!(removed.group_idx, Some(1));
}

#[test]
fn byte_hashes_parent_hash_and_a_two_item_batch_decode() {
    let event = map(&[
        ("type", "BlockStored".into()),
        (
            "block_hashes",
            Value::Array(vec![Value::Binary(vec![1; 32])]),
        ),
        ("parent_block_hash", Value::from(9u64)),
        ("token_ids", ints(&[5])),
        ("block_size", 128.into()),
    ]);
    let batch = decode_batch(&encode(&Value::Array(vec![
        Value::from(3),
        Value::Array(vec![event]),
    ])))
    .unwrap();
    let KvEvent::BlockStored(stored) = &batch.events[0] else {
        panic!("{batch:?}");
    };
    assert_eq!(stored.block_hashes, [BlockHash::Bytes(vec![1; 32])]);
    assert_eq!(stored.parent_block_hash, Some(BlockHash::Int(9)));
    assert_eq!(batch.timestamp, 3.0);
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0x92], "not msgpack"),
        (encode(&Value::from(1)), "msgpack array"),
        (
            encode(&Value::Array(vec![Value::from(1.0), Value::from(2)])),
            "events is not an array",
        ),
        (
            encode(&Value::Array(vec![
                Value::from(1.0),
                Value::Array(vec![Value::from(3)]),
            ])),
            "\"type\"",
        ),
        (
            encode(&Value::Array(vec![
                Value::from(1.0),
                Value::Array(vec![map(&[
                    ("type", "BlockRemoved".into()),
                    ("block_hashes", Value::from("x")),
                ])]),
            ])),
            "block_hashes is not an array",
        ),
        (vec![0; MAX_PAYLOAD_BYTES + 1], "bound"),
    ];
    for (payload, expected) in cases {
        let err = decode_batch(&payload).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
    }
    let too_many = Value::Array(vec![
        map(&[("type", "AllBlocksCleared".into())]);
        MAX_EVENTS + 1
    ]);
    let err = decode_batch(&encode(&Value::Array(vec![Value::from(1.0), too_many])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bound"), "{err}");
    let err = decode_message(&[b"t".to_vec(), vec![0; 4], Vec::new()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("8 bytes"), "{err}");
    assert!(decode_message::<Vec<u8>>(&[]).is_err());
}

#[test]
fn an_unknown_event_type_is_kept_by_name_and_long_text_is_cut() {
    let long = "x".repeat(MAX_TEXT_BYTES * 2);
    let batch = decode_batch(&encode(&Value::Array(vec![
        Value::from(1.0),
        Value::Array(vec![
            map(&[("type", "BlockMoved".into())]),
            map(&[
                ("type", "BlockRemoved".into()),
                ("medium", long.as_str().into()),
            ]),
        ]),
    ])))
    .unwrap();
    assert_eq!(batch.events[0], KvEvent::Unknown("BlockMoved".to_owned()));
    let KvEvent::BlockRemoved(removed) = &batch.events[1] else {
        panic!("{batch:?}");
    };
    assert_eq!(
        removed.medium.as_ref().map(String::len),
        Some(MAX_TEXT_BYTES)
    );
}

#[test]
fn replay_frames_round_trip_and_the_end_marker_ends() {
    assert_eq!(
        replay_request(258),
        [Vec::new(), vec![0, 0, 0, 0, 0, 0, 1, 2]]
    );
    let payload = encode(&Value::Array(vec![Value::from(1.0), Value::Array(vec![])]));
    let answer = decode_replay(&[
        Vec::new(),
        b"topic".to_vec(),
        4u64.to_be_bytes().to_vec(),
        payload,
    ])
    .unwrap()
    .unwrap();
    assert_eq!(answer.seq, 4);
    let end = decode_replay(&[
        Vec::new(),
        Vec::new(),
        REPLAY_END.to_be_bytes().to_vec(),
        Vec::new(),
    ])
    .unwrap();
    assert_eq!(end, None);
    assert!(decode_replay(&[b"x".to_vec()]).is_err());
}

#[test]
fn the_tracker_reports_gaps_and_restarts() {
    let mut tracker = SequenceTracker::default();
    assert_eq!(tracker.observe(5), Observed::First);
    assert_eq!(tracker.observe(6), Observed::Next);
    assert_eq!(
        tracker.observe(9),
        Observed::Gap {
            missing_from: 7,
            missing: 2
        }
    );
    assert_eq!(tracker.observe(9), Observed::Behind);
    assert_eq!(tracker.observe(0), Observed::Behind);
    assert_eq!(tracker.observe(1), Observed::Next);
    assert_eq!(tracker.last(), Some(1));
}
