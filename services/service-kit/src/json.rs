//! Minimal JSON writing into a byte buffer.
//!
//! `serde_json` would build a `Value` or need a `Serialize` type per line; the formatter only
//! ever writes flat objects of strings and numbers, so appending escaped text to a reused
//! buffer is both simpler and several times faster on the request path.

/// Appends `s` as a JSON string literal, quotes included.
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escape);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends `s` as a JSON string literal of at most `max` bytes of content (quotes not
/// counted), cut at a character boundary and ended with `…` when it is longer. Returns
/// whether it was cut. Slower than [`write_str`]; only capped lines use it.
pub fn write_str_clipped(buf: &mut Vec<u8>, s: &str, max: usize) -> bool {
    const ELLIPSIS: &str = "…";
    let open = buf.len();
    write_str(buf, s);
    if buf.len() - open - 2 <= max {
        return false;
    }
    // Again, character by character, so that the cut never splits an escape sequence.
    buf.truncate(open);
    buf.push(b'"');
    let limit = max.saturating_sub(ELLIPSIS.len());
    let mut escaped = Vec::with_capacity(8);
    for c in s.chars() {
        escaped.clear();
        let mut utf8 = [0u8; 4];
        write_str(&mut escaped, c.encode_utf8(&mut utf8));
        let piece = &escaped[1..escaped.len() - 1];
        if buf.len() - open - 1 + piece.len() > limit {
            break;
        }
        buf.extend_from_slice(piece);
    }
    buf.extend_from_slice(ELLIPSIS.as_bytes());
    buf.push(b'"');
    true
}

/// Appends `,"key":` (the comma is always written: every object starts with `@timestamp`).
pub fn write_key(buf: &mut Vec<u8>, key: &str) {
    buf.push(b',');
    write_str(buf, key);
    buf.push(b':');
}

/// Appends an integer.
pub fn write_u64(buf: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends a signed integer.
pub fn write_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    write_u64(buf, v.unsigned_abs());
}

/// Appends a float; JSON has no NaN or infinity, so those become strings.
pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{v}");
    } else {
        write_str(buf, &v.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        let mut buf = Vec::new();
        write_str(&mut buf, s);
        serde_json::from_slice::<String>(&buf).expect("valid JSON string")
    }

    #[test]
    fn escaped_strings_parse_back_to_the_original() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "تهران ✓",
            "",
        ] {
            assert_eq!(roundtrip(s), s);
        }
    }

    #[test]
    fn clipped_strings_stay_valid_json_within_their_size() {
        let mut buf = Vec::new();
        assert!(!write_str_clipped(&mut buf, "short", 64));
        assert_eq!(buf, b"\"short\"");
        for s in [
            "x".repeat(1000),
            "\u{1}\n\"".repeat(300),
            "تهران".repeat(300),
        ] {
            let mut buf = Vec::new();
            assert!(write_str_clipped(&mut buf, &s, 100));
            assert!(buf.len() <= 102, "{}", buf.len());
            let back: String = serde_json::from_slice(&buf).expect("valid JSON string");
            assert!(back.ends_with('…'), "{back}");
        }
    }

    #[test]
    fn numbers_are_written_as_json_numbers() {
        let mut buf = Vec::new();
        write_u64(&mut buf, 0);
        buf.push(b' ');
        write_u64(&mut buf, u64::MAX);
        buf.push(b' ');
        write_i64(&mut buf, i64::MIN);
        buf.push(b' ');
        write_f64(&mut buf, 1.5);
        buf.push(b' ');
        write_f64(&mut buf, f64::NAN);
        assert_eq!(
            String::from_utf8(buf).expect("ascii"),
            "0 18446744073709551615 -9223372036854775808 1.5 \"NaN\""
        );
    }
}
