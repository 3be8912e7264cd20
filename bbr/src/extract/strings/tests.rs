use super::window::{WINDOW, classify, classify_portable, special_lane};
use super::*;

fn first_special(bytes: &[u8], from: usize) -> usize {
    Window::new().next_special(bytes, from)
}

#[test]
fn finds_the_first_special_in_every_position() {
    let lens = (0..80).chain([127, 128, 129, 150, 255, 256, 257, 300]);
    for len in lens {
        for at in 0..len {
            for special in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
                let mut bytes = vec![b'a'; len];
                bytes[at] = special;
                if at + 1 < len {
                    bytes[at + 1] = b'"';
                }
                assert_eq!(first_special(&bytes, 0), at, "len {len} at {at}");
                // Searching from just after it finds the next one (or the end).
                let after = if at + 1 < len { at + 1 } else { len };
                assert_eq!(first_special(&bytes, at + 1), after);
            }
        }
        assert_eq!(first_special(&vec![b'a'; len], 0), len);
        assert_eq!(first_special(&vec![0x7f; len], 0), len);
    }
}

#[test]
fn both_classifiers_agree_on_every_byte_in_every_lane() {
    for byte in 0..=255u8 {
        for lane in 0..WINDOW {
            let mut window = [b'a'; WINDOW];
            window[lane] = byte;
            let expected = if special_lane(byte) == 1 {
                1u64 << lane
            } else {
                0
            };
            let context = format!("byte {byte:#x} lane {lane}");
            assert_eq!(classify_portable(&window), expected, "{context}");
            assert_eq!(classify(&window), expected, "{context}");
        }
    }
}

#[test]
fn a_kept_window_answers_later_searches_exactly() {
    // Specials every 5 bytes over several windows, searched in order with one window.
    let mut bytes = vec![b'x'; 500];
    let expected: Vec<usize> = (3..500).step_by(5).collect();
    for &i in &expected {
        bytes[i] = b'\\';
    }
    let mut window = Window::new();
    let mut pos = 0;
    let mut found = Vec::new();
    loop {
        pos = window.next_special(&bytes, pos);
        if pos == bytes.len() {
            break;
        }
        found.push(pos);
        pos += 1;
    }
    assert_eq!(found, expected);
    // Going backwards reloads the window instead of returning a stale answer.
    assert_eq!(window.next_special(&bytes, 0), 3);
}

/// A string scan one byte at a time: where the closing quote is and whether there were
/// escapes, or `None` for a string that is not valid.
fn scan_slowly(body: &[u8], quote: usize) -> Option<(usize, bool)> {
    let mut pos = quote + 1;
    let mut escapes = false;
    loop {
        match *body.get(pos)? {
            b'"' => return Some((pos, escapes)),
            b'\\' => {
                escapes = true;
                pos = scan_escape(body, pos).ok()?;
            }
            b if b < 0x20 => return None,
            b if b >= 0x80 => pos = scan_non_ascii(body, pos).ok()?,
            _ => pos += 1,
        }
    }
}

#[test]
fn strings_with_escapes_across_window_edges_scan_like_byte_by_byte() {
    // Escapes, `\u` pairs, non-ASCII runs, early quotes and control bytes at every offset
    // around the first window edges (a backslash as the window's last byte included).
    let pieces: [&[u8]; 12] = [
        b"\\\\",
        b"\\\"",
        b"\\n",
        b"\\",
        b"\\u00e9",
        b"\\ud83d\\ude00",
        b"a",
        b"bc",
        "é".as_bytes(),
        "—".as_bytes(),
        b"\"",
        b"\x01",
    ];
    let mut state = 7u64;
    for case in 0..30_000 {
        let mut body = b"\"".to_vec();
        // Pad so that the interesting part straddles the first window edge.
        body.extend(std::iter::repeat_n(b'x', case % 70));
        while body.len() < 200 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            body.extend_from_slice(pieces[(state >> 33) as usize % pieces.len()]);
        }
        body.push(b'"');
        let fast = scan_string(&mut Window::new(), &body, 0)
            .ok()
            .map(|(span, next)| (span.end, span.has_escapes, next));
        let slow = scan_slowly(&body, 0).map(|(end, escapes)| (end, escapes, end + 1));
        assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn utf8_by_hand_agrees_with_std_on_every_short_sequence() {
    let check = |bytes: &[u8]| {
        let by_hand = utf8_char_len(bytes, 0);
        // The first code point of the valid prefix, if there is one.
        let valid = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap(),
        };
        let by_std = valid.chars().next().map(char::len_utf8);
        assert_eq!(by_hand, by_std, "{bytes:x?}");
    };
    for a in 0x80..=0xFFu8 {
        check(&[a]);
        for b in 0..=0xFFu8 {
            check(&[a, b]);
            for c in [0x00, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                check(&[a, b, c]);
                for d in [0x00, 0x80, 0xBF, 0xC0] {
                    check(&[a, b, c, d]);
                }
            }
        }
    }
}

#[test]
fn unescape_decodes_every_escape_and_pairs() {
    let raw = br#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z"#;
    let mut out = Vec::new();
    unescape(raw, 0, |piece| out.extend_from_slice(piece)).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}z"
    );
}
