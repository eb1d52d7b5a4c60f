//! The line formats of container runtimes' log files, which wrap each line a container
//! writes in a record of their own.
//!
//! - CRI (containerd, CRI-O; what kubelet's `/var/log/pods` holds):
//!   `<RFC 3339 time> <stdout|stderr> <P|F> <message>`. A line longer than the runtime's
//!   buffer (16 KiB) is written as `P` (partial) records ended by one `F` (full).
//! - Docker json-file: `{"log":"<message>\n","stream":"stdout","time":"<RFC 3339>"}`; a
//!   `log` without its final newline is a part to be joined with the next record.
//!
//! Parsing is hand-written because it is a few slice operations (no crate parses these
//! records; a regex would cost more than the rest of the line's encoding): a CRI record's
//! message is a slice of the line as read, never copied unless parts are joined. A Docker
//! record's `log` is a JSON string whose escapes must be undone, so its message is copied
//! once (by serde_json). The joining itself lives in [`super::line_reader`], which hands out
//! each joined line with the offset of its first part and the end of its last.

use serde::de::Deserializer as _;
use serde::{Deserialize, Serialize};

/// The `SHIPPER_INPUT_FORMAT` setting: how the lines of the files read are framed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Each file's format is told from the first line read from it.
    #[default]
    Auto,
    /// Plain lines, each one a document (JSON objects keep their fields).
    Json,
    /// CRI records (containerd, CRI-O).
    Cri,
    /// Docker json-file records.
    Docker,
}

impl InputFormat {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Json => "json",
            InputFormat::Cri => "cri",
            InputFormat::Docker => "docker",
        }
    }

    /// What a reader of a file starts with.
    pub(crate) fn framing(self) -> Framing {
        match self {
            InputFormat::Auto => Framing::Undecided,
            InputFormat::Json => Framing::Plain,
            InputFormat::Cri => Framing::Cri,
            InputFormat::Docker => Framing::Docker,
        }
    }
}

/// How one file's lines are framed, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Told from the first line read.
    Undecided,
    Plain,
    Cri,
    Docker,
}

impl Framing {
    /// The framing of a file whose first line read is `raw`: a Docker record, a CRI record
    /// with a valid time, or else plain lines.
    pub(crate) fn detect(raw: &[u8]) -> Framing {
        // A Docker record has a "log" key: without one the line is not parsed as a record
        // (a JSON application line would be parsed to its end for nothing, once per file).
        let mut scratch = Vec::new();
        if raw.first() == Some(&b'{')
            && memchr::memmem::find(raw, b"\"log\"").is_some()
            && parse_docker(raw, &mut scratch).is_some()
        {
            return Framing::Docker;
        }
        match parse_cri(raw) {
            Some(r) if valid_time(&raw[r.time.0..r.time.1]) => Framing::Cri,
            _ => Framing::Plain,
        }
    }
}

/// The stream a container wrote to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn from_bytes(b: &[u8]) -> Option<Stream> {
        match b {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// What a container runtime's record said about a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container<'a> {
    /// A record of the file's format: the stream and the runtime's time, as written
    /// (RFC 3339 characters only; empty when the record had none).
    Record { stream: Stream, time: &'a [u8] },
    /// The file holds container records but this line is not one: shipped whole, flagged.
    Malformed,
}

/// One parsed CRI record; positions are byte offsets in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CriRecord {
    pub(crate) time: (usize, usize),
    pub(crate) stream: Stream,
    /// `P`: a part; the line goes on in the next record.
    pub(crate) partial: bool,
    /// Where the message starts (it runs to the end of the line).
    pub(crate) message: usize,
}

/// Parses `<time> <stream> <tag> <message>`; `None` when the line is not such a record.
/// The time is checked only for its characters here ([`valid_time`] checks it fully, where
/// it is used).
pub(crate) fn parse_cri(raw: &[u8]) -> Option<CriRecord> {
    let t_end = memchr::memchr(b' ', raw)?;
    let time = &raw[..t_end];
    if !(10..=40).contains(&time.len()) || !time.iter().all(|b| is_time_byte(*b)) {
        return None;
    }
    let s_start = t_end + 1;
    let s_end = s_start + memchr::memchr(b' ', raw.get(s_start..)?)?;
    let stream = Stream::from_bytes(&raw[s_start..s_end])?;
    let g_start = s_end + 1;
    let rest = raw.get(g_start..)?;
    let (tag, message) = match memchr::memchr(b' ', rest) {
        Some(sp) => (&rest[..sp], g_start + sp + 1),
        // `<time> <stream> F` and nothing more: an empty line.
        None => (rest, raw.len()),
    };
    // Tags are `:`-separated; the first says partial or full.
    let first = tag.split(|b| *b == b':').next().unwrap_or_default();
    let partial = match first {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(CriRecord {
        time: (0, t_end),
        stream,
        partial,
        message,
    })
}

/// One parsed Docker json-file record; the message was appended to the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DockerRecord {
    pub(crate) stream: Stream,
    /// The `log` had no final newline: a part of a longer line.
    pub(crate) partial: bool,
    /// Where the time is in the line (`(0, 0)` when it is missing or not RFC 3339 text).
    pub(crate) time: (usize, usize),
}

/// Parses a Docker json-file record, appending its message (without the final newline) to
/// `message`; `None` (and `message` as it was) when the line is not such a record.
///
/// The record is read with a visitor rather than into a struct, so that the `log` string is
/// unescaped straight into `message` (serde_json's own scratch buffer, no allocation per
/// line) and the time is found where it lies in the line.
pub(crate) fn parse_docker(raw: &[u8], message: &mut Vec<u8>) -> Option<DockerRecord> {
    let before = message.len();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let found = de
        .deserialize_map(RecordVisitor { message })
        .and_then(|found| de.end().map(|()| found));
    let (stream, time, had_log) = match found {
        Ok(found) => found,
        Err(_) => {
            message.truncate(before);
            return None;
        }
    };
    let (Some(stream), true) = (stream, had_log) else {
        message.truncate(before);
        return None;
    };
    let partial = if message.len() > before && message.last() == Some(&b'\n') {
        message.pop();
        false
    } else {
        true
    };
    let time = time
        .filter(|t| !t.is_empty() && t.len() <= 40 && t.bytes().all(is_time_byte))
        .and_then(|t| {
            // A borrowed `&str` (a JSON string without escapes) points into `raw`.
            let start = (t.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
            (start + t.len() <= raw.len()).then_some((start, start + t.len()))
        })
        .unwrap_or((0, 0));
    Some(DockerRecord {
        stream,
        partial,
        time,
    })
}

/// The stream, the time (when written without escapes) and whether a `log` string was seen.
type RecordFound<'de> = (Option<Stream>, Option<&'de str>, bool);

struct RecordVisitor<'m> {
    message: &'m mut Vec<u8>,
}

impl<'de> serde::de::Visitor<'de> for RecordVisitor<'_> {
    type Value = RecordFound<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Docker json-file record")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut stream, mut time, mut had_log) = (None, None, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "log" if !had_log => {
                    map.next_value_seed(AppendStr(&mut *self.message))?;
                    had_log = true;
                }
                "stream" => {
                    let s: std::borrow::Cow<'de, str> = map.next_value()?;
                    stream = Stream::from_bytes(s.as_bytes());
                }
                "time" => time = map.next_value_seed(BorrowedStr)?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((stream, time, had_log))
    }
}

/// A JSON string, unescaped onto the end of a buffer.
struct AppendStr<'m>(&'m mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for AppendStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
}

/// A string borrowed from the line; `None` for one with escapes (no time has any) or null.
struct BorrowedStr;

impl<'de> serde::de::DeserializeSeed<'de> for BorrowedStr {
    type Value = Option<&'de str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BorrowedStr {
    type Value = Option<&'de str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Bytes an RFC 3339 time is written with: such a time needs no escaping in JSON.
fn is_time_byte(b: u8) -> bool {
    matches!(
        b,
        b'0'..=b'9' | b'T' | b't' | b'Z' | b'z' | b':' | b'.' | b'+' | b'-'
    )
}

/// Is `time` an RFC 3339 time that Elasticsearch's `date` parses? Checked only where it is
/// used (a line without `@timestamp` of its own).
pub(crate) fn valid_time(time: &[u8]) -> bool {
    std::str::from_utf8(time).is_ok_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

/// The message of the raw line `raw` of a file framed as `framing`, without joining parts:
/// what the alert rules are shown of a line read ahead while shipping is paused.
pub(crate) fn message_of<'a>(
    framing: Framing,
    raw: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    match framing {
        Framing::Cri => match parse_cri(raw) {
            Some(r) => &raw[r.message..],
            None => raw,
        },
        Framing::Docker => {
            scratch.clear();
            if parse_docker(raw, scratch).is_some() {
                scratch
            } else {
                raw
            }
        }
        Framing::Plain | Framing::Undecided => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_records_are_split_into_their_parts() {
        let raw = b"2026-12-02T15:30:00.123456789Z stderr P {\"a\":1} tail";
        let r = parse_cri(raw).unwrap();
        assert_eq!(&raw[r.time.0..r.time.1], b"2026-12-02T15:30:00.123456789Z");
        assert_eq!(r.stream, Stream::Stderr);
        assert!(r.partial);
        assert_eq!(&raw[r.message..], b"{\"a\":1} tail");
        let full = b"2026-12-02T15:30:00.1+03:30 stdout F:x hello";
        let r = parse_cri(full).unwrap();
        assert!(!r.partial);
        assert_eq!(&full[r.message..], b"hello");
        let empty = b"2026-12-02T15:30:00Z stdout F";
        assert_eq!(parse_cri(empty).unwrap().message, empty.len());
        let spaces = b"2026-12-02T15:30:00Z stdout F   x ";
        assert_eq!(&spaces[parse_cri(spaces).unwrap().message..], b"  x ");
    }

    #[test]
    fn what_is_not_a_cri_record_is_told() {
        for raw in [
            &b""[..],
            b"plain text line",
            b"{\"log\":\"x\"}",
            b"2026-12-02T15:30:00Z stdin F x",
            b"2026-12-02T15:30:00Z stdout X x",
            b"2026-12-02T15:30:00Z stdout",
            b"2026-12-02 15:30:00 stdout F x",
            b"2026-12-02T15:30:00Z\"x stdout F x",
        ] {
            assert_eq!(parse_cri(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn docker_records_give_their_unescaped_message() {
        let raw = br#"{"log":"{\"service.name\":\"payment\",\"m\":\"a\\nb\"}\n","stream":"stdout","time":"2026-12-02T15:30:00.123456789Z"}"#;
        let mut msg = Vec::new();
        let r = parse_docker(raw, &mut msg).unwrap();
        assert_eq!(msg, br#"{"service.name":"payment","m":"a\nb"}"#);
        assert!(!r.partial);
        assert_eq!(r.stream, Stream::Stdout);
        assert_eq!(&raw[r.time.0..r.time.1], b"2026-12-02T15:30:00.123456789Z");
        let mut part = Vec::new();
        let p = parse_docker(
            br#"{"log":"no newline","stream":"stderr","attrs":{"k":"v"}}"#,
            &mut part,
        )
        .unwrap();
        assert!(p.partial);
        assert_eq!(p.time, (0, 0));
        assert_eq!(part, b"no newline");
        for bad in [
            &br#"{"log":"x\n","stream":"stdin","time":"t"}"#[..],
            br#"{"message":"x"}"#,
            br#"{"log":1,"stream":"stdout"}"#,
            b"{\"log\":\"cut",
            br#"{"log":"x\n","stream":"stdout"} trailing"#,
            br#"{"stream":"stdout","time":"2026-12-02T15:30:00Z"}"#,
        ] {
            let before = part.clone();
            assert_eq!(parse_docker(bad, &mut part), None);
            assert_eq!(part, before, "nothing appended");
        }
    }

    #[test]
    fn the_format_of_a_file_is_told_from_a_line() {
        assert_eq!(
            Framing::detect(b"2026-12-02T15:30:00.123456789Z stdout F hi"),
            Framing::Cri
        );
        assert_eq!(
            Framing::detect(br#"{"log":"hi\n","stream":"stdout","time":"2026-12-02T15:30:00Z"}"#),
            Framing::Docker
        );
        assert_eq!(
            Framing::detect(br#"{"@timestamp":"t","message":"x"}"#),
            Framing::Plain
        );
        // CRI-shaped, but not a time: a plain line.
        assert_eq!(
            Framing::detect(b"0000-99-99T99:99:99Z stdout F x"),
            Framing::Plain
        );
        assert_eq!(Framing::detect(b"hello world"), Framing::Plain);
    }

    #[test]
    fn times_are_checked_as_rfc_3339() {
        assert!(valid_time(b"2026-12-02T15:30:00.123456789Z"));
        assert!(valid_time(b"2026-12-02T15:30:00+03:30"));
        assert!(!valid_time(b"2026-13-02T15:30:00Z"));
        assert!(!valid_time(b""));
    }
}
