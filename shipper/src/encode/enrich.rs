//! Writes a line as a `_bulk` item, adding what the shipper knows about it.
//!
//! Added fields: the schema's [`Enriched`] ones the line does not already carry
//! (`@timestamp` when missing is the time it was read, since a data stream needs one).
//! A JSON object line is copied byte for byte and the fields are spliced in before its
//! closing brace, so all its fields are kept exactly as written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use schema::{agent, field, tag, ContainerField, Enriched};

use super::decode::{inspect, Decoded, Present};
use super::doc_id::write_id;
use super::kubernetes;
use super::route;
use super::tap::{DocumentTap, TappedDocument};
use crate::input::container_log::{self, Container, Stream};
use crate::input::identity::FileKey;
use crate::input::line_reader::Line;

/// The data stream type of every document, first part of every index name.
const DATA_STREAM_TYPE: &str = "logs";

/// What the shipper knows about the file a line comes from.
pub struct SourceFile {
    pub(crate) key: FileKey,
    /// The path as a JSON string, quotes included.
    pub(crate) path_json: String,
    /// Dataset for lines without a service name: the container's name for a file in
    /// kubelet's layout, else the file's name.
    pub(crate) dataset: String,
    /// The `kubernetes.*` and `container.id` fields kubelet's layout gives the file, with
    /// their values as JSON strings; empty for a file outside it.
    pub(crate) kubernetes: Vec<(ContainerField, String)>,
}

impl SourceFile {
    pub fn new(key: FileKey, path: &Path) -> SourceFile {
        let pod = kubernetes::pod_log(path);
        let dataset = pod
            .as_ref()
            .and_then(|p| route::dataset(&p.container_name))
            .unwrap_or_else(|| route::dataset_from_path(path));
        let kubernetes = pod.map_or_else(Vec::new, |p| {
            [
                (ContainerField::KubernetesNamespace, Some(p.namespace)),
                (ContainerField::KubernetesPodName, Some(p.pod_name)),
                (ContainerField::KubernetesPodUid, p.pod_uid),
                (
                    ContainerField::KubernetesContainerName,
                    Some(p.container_name),
                ),
                (ContainerField::ContainerId, p.container_id),
            ]
            .into_iter()
            .filter_map(|(f, v)| v.map(|v| (f, json_string(&v))))
            .collect()
        });
        // Kept for as long as the file is open: exactly its size (serde_json starts a string
        // at 128 bytes, most of it unused for a path, which thousands of files add up).
        let mut path_json = json_string(&path.to_string_lossy());
        path_json.shrink_to_fit();
        SourceFile {
            key,
            path_json,
            dataset,
            kubernetes,
        }
    }
}

/// Whether a line became a document.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded {
    /// An action line and a source line were appended; the source starts at this offset.
    /// `id_hash` is [`crate::batch::id_hash`] of its `_id`.
    Document { source_start: usize, id_hash: u64 },
    /// The line is empty: nothing to index.
    Empty,
}

pub struct Enricher {
    namespace: String,
    host_json: String,
    agent_type_json: String,
    agent_name_json: String,
    agent_version_json: String,
    data_stream_type_json: String,
    namespace_json: String,
    /// Service name -> dataset, with the dataset as a JSON string: computed once per name,
    /// not once per line.
    datasets: HashMap<String, Arc<Dataset>>,
    /// The read time last seen, and as a JSON string (it changes once per read round).
    ingested: (String, String),
    tap: Option<Box<dyn DocumentTap>>,
    /// The tap already saw the line being encoded (read ahead while reading was paused).
    tap_muted: bool,
}

/// A dataset name and the same as a JSON string literal.
#[derive(Debug)]
struct Dataset {
    name: String,
    json: String,
}

impl Dataset {
    fn new(name: String) -> Arc<Dataset> {
        let json = json_string(&name);
        Arc::new(Dataset { name, json })
    }
}

impl Enricher {
    pub fn new(host_name: &str, agent_name: &str, namespace: &str) -> Enricher {
        Enricher {
            namespace: namespace.to_string(),
            host_json: json_string(host_name),
            agent_type_json: json_string(agent::TYPE),
            agent_name_json: json_string(agent_name),
            agent_version_json: json_string(env!("CARGO_PKG_VERSION")),
            data_stream_type_json: json_string(DATA_STREAM_TYPE),
            namespace_json: json_string(namespace),
            datasets: HashMap::new(),
            ingested: (String::new(), "\"\"".to_string()),
            tap: None,
            tap_muted: false,
        }
    }

    /// Whether the tap sees the lines encoded from now on: not those it saw when they were
    /// read ahead, while shipping was paused.
    pub(crate) fn has_tap(&self) -> bool {
        self.tap.is_some()
    }

    pub(crate) fn mute_tap(&mut self, muted: bool) {
        self.tap_muted = muted;
    }

    /// Shows `line` to the tap without encoding it: while shipping is paused, the alert
    /// rules still see each line when it is written. Same view as [`Enricher::encode`] gives.
    pub(crate) fn observe(&mut self, line: &Line<'_>, file: &SourceFile) {
        if self.tap.is_none() {
            return;
        }
        let bytes = trim_line(line.bytes);
        if bytes.iter().all(|b| b.is_ascii_whitespace()) && !line.truncated {
            return;
        }
        let decoded = if line.truncated
            || line.unterminated
            || matches!(line.container, Some(Container::Malformed))
        {
            None
        } else {
            Some(inspect(bytes, true, false))
        };
        match decoded {
            Some(Decoded::Object {
                service_name,
                facts,
                ..
            }) => {
                let dataset = self.dataset_for(service_name.as_deref(), &file.dataset);
                if let Some(tap) = self.tap.as_mut() {
                    show_object(tap.as_mut(), &dataset.name, service_name.as_deref(), &facts);
                }
            }
            _ => {
                let dataset = self.dataset_for(None, &file.dataset);
                if let Some(tap) = self.tap.as_mut() {
                    show_unparsed(tap.as_mut(), &dataset.name, bytes);
                }
            }
        }
    }

    /// Shows every document to `tap` as it is encoded (alert rules).
    pub(crate) fn with_tap(mut self, tap: Box<dyn DocumentTap>) -> Enricher {
        self.tap = Some(tap);
        self
    }

    /// Appends the `_bulk` item for `line` to `out`. `ingested` is the read time as RFC 3339.
    pub fn encode(
        &mut self,
        line: &Line<'_>,
        file: &SourceFile,
        ingested: &str,
        out: &mut Vec<u8>,
    ) -> Encoded {
        if self.ingested.0 != ingested {
            self.ingested = (ingested.to_string(), json_string(ingested));
        }
        let bytes = trim_line(line.bytes);
        if bytes.iter().all(|b| b.is_ascii_whitespace()) && !line.truncated {
            return Encoded::Empty;
        }
        let malformed = matches!(line.container, Some(Container::Malformed));
        let runtime = match line.container {
            Some(Container::Record { stream, time }) => Some((stream, time)),
            _ => None,
        };
        let decoded = if line.truncated || line.unterminated || malformed {
            // A cut line is not the JSON that was written; an unterminated one may not be
            // whole; a container line that is not its runtime's record is shipped as text.
            None
        } else {
            let container_keys = runtime.is_some() || !file.kubernetes.is_empty();
            Some(inspect(bytes, self.tap.is_some(), container_keys))
        };
        match decoded {
            Some(Decoded::Object {
                service_name,
                present,
                empty,
                facts,
            }) => {
                let dataset = self.dataset_for(service_name.as_deref(), &file.dataset);
                let dataset = &*dataset;
                if let Some(tap) = self.tap.as_mut().filter(|_| !self.tap_muted) {
                    show_object(tap.as_mut(), &dataset.name, service_name.as_deref(), &facts);
                }
                let id_hash = self.write_action(out, &dataset.name, file.key, line.offset);
                let source_start = out.len();
                let close = bytes
                    .iter()
                    .rposition(|b| *b == b'}')
                    .unwrap_or(bytes.len());
                out.extend_from_slice(&bytes[..close]);
                self.write_fields(out, present, !empty, (dataset, file, line.offset), runtime);
                out.extend_from_slice(b"}\n");
                Encoded::Document {
                    source_start,
                    id_hash,
                }
            }
            other => {
                let mut tags: Vec<&str> = Vec::with_capacity(4);
                let mut reason = None;
                match other {
                    Some(Decoded::InvalidUtf8) => {
                        tags.push(tag::NOT_JSON);
                        tags.push(tag::INVALID_UTF8);
                    }
                    Some(Decoded::NotJson(why)) => {
                        tags.push(tag::NOT_JSON);
                        reason = Some(why);
                    }
                    _ => {
                        if std::str::from_utf8(bytes).is_err() {
                            tags.push(tag::INVALID_UTF8);
                        }
                    }
                }
                if line.truncated {
                    tags.push(tag::TRUNCATED);
                }
                if line.unterminated {
                    tags.push(tag::UNTERMINATED);
                }
                if malformed {
                    tags.push(tag::CONTAINER_PARSE_FAILURE);
                }
                let dataset = self.dataset_for(None, &file.dataset);
                let dataset = &*dataset;
                if let Some(tap) = self.tap.as_mut().filter(|_| !self.tap_muted) {
                    show_unparsed(tap.as_mut(), &dataset.name, bytes);
                }
                let id_hash = self.write_action(out, &dataset.name, file.key, line.offset);
                let source_start = out.len();
                out.push(b'{');
                write_key(out, field::MESSAGE);
                out.extend_from_slice(json_string(&String::from_utf8_lossy(bytes)).as_bytes());
                out.push(b',');
                write_key(out, field::TAGS);
                out.push(b'[');
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_plain_string(out, tag);
                }
                out.push(b']');
                if line.truncated {
                    out.push(b',');
                    write_key(out, field::LOG_FLAGS);
                    out.push(b'[');
                    write_plain_string(out, tag::FLAG_TRUNCATED);
                    out.push(b']');
                }
                if let Some(reason) = reason {
                    out.push(b',');
                    write_key(out, field::PARSE_ERROR);
                    out.extend_from_slice(json_string(&reason).as_bytes());
                }
                let from = (dataset, file, line.offset);
                self.write_fields(out, Present::default(), true, from, runtime);
                out.extend_from_slice(b"}\n");
                Encoded::Document {
                    source_start,
                    id_hash,
                }
            }
        }
    }

    fn dataset_for(&mut self, service_name: Option<&str>, fallback: &str) -> Arc<Dataset> {
        let key = service_name.unwrap_or(fallback);
        if let Some(d) = self.datasets.get(key) {
            return Arc::clone(d);
        }
        let name = match service_name {
            Some(name) => route::dataset(name).unwrap_or_else(|| fallback.to_string()),
            None => fallback.to_string(),
        };
        let d = Dataset::new(name);
        // Bounded: a flood of distinct service names must not grow memory without end.
        if self.datasets.len() < 1024 {
            self.datasets.insert(key.to_string(), Arc::clone(&d));
        }
        d
    }

    /// Appends the action line; gives back the hash of the `_id` it names.
    fn write_action(&self, out: &mut Vec<u8>, dataset: &str, key: FileKey, offset: u64) -> u64 {
        out.extend_from_slice(b"{\"create\":{\"_index\":\"");
        out.extend_from_slice(DATA_STREAM_TYPE.as_bytes());
        out.push(b'-');
        out.extend_from_slice(dataset.as_bytes());
        out.push(b'-');
        out.extend_from_slice(self.namespace.as_bytes());
        out.extend_from_slice(b"\",\"_id\":\"");
        let id_start = out.len();
        write_id(out, key, offset);
        let id_hash = crate::batch::id_hash(&out[id_start..]);
        out.extend_from_slice(b"\"}}\n");
        id_hash
    }

    /// Writes the fields the line lacks. `runtime`: the stream and time of a container
    /// runtime's record; the time is the document's `@timestamp` when the line has none.
    fn write_fields(
        &self,
        out: &mut Vec<u8>,
        present: Present,
        mut comma: bool,
        (dataset, file, offset): (&Dataset, &SourceFile, u64),
        runtime: Option<(Stream, &[u8])>,
    ) {
        let mut offset_buf = itoa::Buffer::new();
        let ingested_json = &self.ingested.1;
        // Checked only when used (the services' lines carry their own `@timestamp`); its
        // characters need no escaping (see `container_log`).
        let runtime_time = runtime
            .map(|(_, time)| time)
            .filter(|t| !present.has(Enriched::Timestamp) && container_log::valid_time(t));
        for field in Enriched::ALL {
            if present.has(field) {
                continue;
            }
            if let (Enriched::Timestamp, Some(time)) = (field, runtime_time) {
                if comma {
                    out.push(b',');
                }
                comma = true;
                write_key(out, field.name());
                out.push(b'"');
                out.extend_from_slice(time);
                out.push(b'"');
                continue;
            }
            let value: &str = match field {
                Enriched::Timestamp | Enriched::EventIngested => ingested_json,
                Enriched::HostName => &self.host_json,
                Enriched::AgentType => &self.agent_type_json,
                Enriched::AgentName => &self.agent_name_json,
                Enriched::AgentVersion => &self.agent_version_json,
                Enriched::LogFilePath => &file.path_json,
                Enriched::LogOffset => offset_buf.format(offset),
                Enriched::DataStreamType => &self.data_stream_type_json,
                Enriched::DataStreamDataset | Enriched::EventDataset => &dataset.json,
                Enriched::DataStreamNamespace => &self.namespace_json,
            };
            if comma {
                out.push(b',');
            }
            comma = true;
            write_key(out, field.name());
            out.extend_from_slice(value.as_bytes());
        }
        if let Some((stream, _)) = runtime {
            if !present.has_container(ContainerField::Stream) {
                if comma {
                    out.push(b',');
                }
                comma = true;
                write_key(out, ContainerField::Stream.name());
                write_plain_string(out, stream.as_str());
            }
        }
        for (field, value) in &file.kubernetes {
            if !present.has_container(*field) {
                if comma {
                    out.push(b',');
                }
                comma = true;
                write_key(out, field.name());
                out.extend_from_slice(value.as_bytes());
            }
        }
    }
}

/// Appends `"name":`. Field names are plain ASCII without quotes or backslashes.
fn write_key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `s` quoted: for the schema's tags, plain ASCII that needs no escaping.
fn write_plain_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// The line without a trailing `\r` (CRLF files).
fn trim_line(bytes: &[u8]) -> &[u8] {
    match bytes.last() {
        Some(b'\r') => &bytes[..bytes.len() - 1],
        _ => bytes,
    }
}

/// `s` as a JSON string literal, quotes included.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// What the tap sees of a JSON object line.
fn show_object(
    tap: &mut dyn DocumentTap,
    dataset: &str,
    service_name: Option<&str>,
    facts: &super::decode::Facts<'_>,
) {
    tap.observe(&TappedDocument {
        dataset,
        service_name,
        category: facts.category.as_deref(),
        level: facts.level.as_deref(),
        message: facts.message.as_deref(),
        transaction_id: facts.transaction_id.as_deref(),
        error_type: facts.error_type.as_deref(),
        error_message: facts.error_message.as_deref(),
        timestamp: facts.timestamp.as_deref(),
        unparsed: false,
    });
}

/// What the tap sees of a line that is not a JSON object.
fn show_unparsed(tap: &mut dyn DocumentTap, dataset: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    tap.observe(&TappedDocument {
        dataset,
        message: Some(&text),
        unparsed: true,
        ..TappedDocument::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::identity::TailMark;
    use serde_json::Value;

    fn line(bytes: &[u8]) -> Line<'_> {
        Line {
            offset: 100,
            end: 100 + bytes.len() as u64 + 1,
            bytes,
            truncated: false,
            unterminated: false,
            tail: TailMark::default(),
            container: None,
        }
    }

    fn encode(l: &Line<'_>) -> (Value, Value) {
        let mut e = Enricher::new("host-1", agent::NAME, "default");
        let file = SourceFile::new(0xfeed, Path::new("/var/log/didban/payment.log"));
        let mut out = Vec::new();
        let Encoded::Document { source_start, .. } =
            e.encode(l, &file, "2026-11-26T10:00:00.000Z", &mut out)
        else {
            panic!("no document");
        };
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(
            out.iter().filter(|b| **b == b'\n').count(),
            2,
            "exactly two NDJSON lines"
        );
        let action: Value =
            serde_json::from_slice(&out[..source_start - 1]).expect("action is JSON");
        let source: Value =
            serde_json::from_slice(&out[source_start..out.len() - 1]).expect("source is JSON");
        (action, source)
    }

    #[test]
    fn a_json_line_keeps_its_fields_and_gains_the_shipper_s() {
        let raw = br#"{"@timestamp":"2026-11-26T13:30:00.000+03:30","service.name":"loan-resource","message":"hi","host.name":"svc-host","nested":{"a":[1,2]}}"#;
        let (action, source) = encode(&line(raw));
        assert_eq!(action["create"]["_index"], "logs-loan_resource-default");
        assert_eq!(action["create"]["_id"], "000000000000feed64");
        assert_eq!(source["@timestamp"], "2026-11-26T13:30:00.000+03:30");
        assert_eq!(source["host.name"], "svc-host", "the line's own value wins");
        assert_eq!(source["nested"]["a"][1], 2);
        assert_eq!(source["log.offset"], 100);
        assert_eq!(source["log.file.path"], "/var/log/didban/payment.log");
        assert_eq!(source["data_stream.dataset"], "loan_resource");
        assert_eq!(source["event.dataset"], "loan_resource");
        assert_eq!(source["data_stream.namespace"], "default");
        assert_eq!(source["agent.type"], agent::TYPE);
        assert_eq!(source["agent.name"], agent::NAME);
        assert_eq!(source["event.ingested"], "2026-11-26T10:00:00.000Z");
        assert!(source.get("tags").is_none());
    }

    #[test]
    fn no_key_is_written_twice() {
        let raw = br#"{"@timestamp":"t","host.name":"h","event.dataset":"x","log.offset":1}"#;
        let mut e = Enricher::new("h2", agent::NAME, "default");
        let file = SourceFile::new(1, Path::new("/a.log"));
        let mut out = Vec::new();
        e.encode(&line(raw), &file, "now", &mut out);
        let text = String::from_utf8(out).unwrap();
        for key in [
            "\"@timestamp\"",
            "\"host.name\"",
            "\"event.dataset\"",
            "\"log.offset\"",
        ] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
    }

    #[test]
    fn a_line_without_timestamp_or_service_gets_both_from_the_shipper() {
        let (action, source) = encode(&line(br#"{"msg":"x"}"#));
        assert_eq!(action["create"]["_index"], "logs-payment-default");
        assert_eq!(source["@timestamp"], "2026-11-26T10:00:00.000Z");
        let (_, empty) = encode(&line(b"{}"));
        assert_eq!(empty["log.offset"], 100);
    }

    #[test]
    fn a_line_that_is_not_json_is_shipped_as_a_tagged_message() {
        let (action, source) = encode(&line(b"plain text with \"quotes\"\r"));
        assert_eq!(action["create"]["_index"], "logs-payment-default");
        assert_eq!(source["message"], "plain text with \"quotes\"");
        assert_eq!(source["tags"], serde_json::json!([tag::NOT_JSON]));
        assert!(source["didban.parse_error"].is_string());
        let (_, truncated_json) = encode(&line(br#"{"a":"#));
        assert_eq!(truncated_json["message"], r#"{"a":"#);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let (_, source) = encode(&line(b"caf\xe9 \x00\x01 bin"));
        assert_eq!(source["message"], "caf\u{fffd} \u{0}\u{1} bin");
        assert_eq!(
            source["tags"],
            serde_json::json!([tag::NOT_JSON, tag::INVALID_UTF8])
        );
    }

    #[test]
    fn cut_lines_are_flagged() {
        let mut l = line(br#"{"service.name":"payment","message":"aaaa"#);
        l.truncated = true;
        let (_, source) = encode(&l);
        assert_eq!(source["tags"], serde_json::json!([tag::TRUNCATED]));
        assert_eq!(source["log.flags"], serde_json::json!(["truncated"]));
        let mut u = line(b"last words");
        u.unterminated = true;
        let (_, source) = encode(&u);
        assert_eq!(source["tags"], serde_json::json!([tag::UNTERMINATED]));
    }

    #[test]
    fn a_tap_sees_each_document_with_its_facts() {
        use std::sync::{Arc, Mutex};
        struct Recorder(Arc<Mutex<Vec<String>>>);
        impl DocumentTap for Recorder {
            fn observe(&mut self, d: &TappedDocument<'_>) {
                self.0.lock().unwrap().push(format!(
                    "{}|{:?}|{:?}|{:?}|{}",
                    d.dataset, d.category, d.transaction_id, d.message, d.unparsed
                ));
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut e = Enricher::new("h", agent::NAME, "default")
            .with_tap(Box::new(Recorder(Arc::clone(&seen))));
        let file = SourceFile::new(1, Path::new("/l/payment.log"));
        let mut out = Vec::new();
        e.encode(
            &line(br#"{"service.name":"loan-resource","log.category":"SystemError","transaction.id":"t1","message":"m"}"#),
            &file,
            "now",
            &mut out,
        );
        e.encode(&line(b"oops"), &file, "now", &mut out);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                r#"loan_resource|Some("SystemError")|Some("t1")|Some("m")|false"#.to_string(),
                r#"payment|None|None|Some("oops")|true"#.to_string()
            ]
        );
    }

    #[test]
    fn empty_lines_make_no_document() {
        let mut e = Enricher::new("h", agent::NAME, "default");
        let file = SourceFile::new(1, Path::new("/a.log"));
        let mut out = Vec::new();
        assert_eq!(e.encode(&line(b""), &file, "now", &mut out), Encoded::Empty);
        assert_eq!(
            e.encode(&line(b"  \r"), &file, "now", &mut out),
            Encoded::Empty
        );
        assert!(out.is_empty());
    }
    fn pod_file() -> SourceFile {
        SourceFile::new(
            0xfeed,
            Path::new("/var/log/pods/shop_payment-7d9f8-x2k4q_0f1e-uid/payment-api/0.log"),
        )
    }

    fn encode_from(l: &Line<'_>, file: &SourceFile) -> (Value, Value) {
        let mut e = Enricher::new("host-1", agent::NAME, "default");
        let mut out = Vec::new();
        let Encoded::Document { source_start, .. } =
            e.encode(l, file, "2026-11-26T10:00:00.000Z", &mut out)
        else {
            panic!("no document");
        };
        let action: Value = serde_json::from_slice(&out[..source_start - 1]).expect("JSON");
        let source: Value =
            serde_json::from_slice(&out[source_start..out.len() - 1]).expect("JSON");
        (action, source)
    }

    const RUNTIME: Container<'static> = Container::Record {
        stream: Stream::Stderr,
        time: b"2026-12-02T15:30:00.123456789Z",
    };

    #[test]
    fn a_container_s_json_line_gains_its_stream_and_pod_and_keeps_its_own_fields() {
        let mut l = line(br#"{"@timestamp":"2026-12-02T19:00:00.000+03:30","service.name":"payment","stream":"mine"}"#);
        l.container = Some(RUNTIME);
        let (action, source) = encode_from(&l, &pod_file());
        assert_eq!(action["create"]["_index"], "logs-payment-default");
        assert_eq!(source["@timestamp"], "2026-12-02T19:00:00.000+03:30");
        assert_eq!(source["stream"], "mine", "the line's own value wins");
        assert_eq!(source["kubernetes.namespace"], "shop");
        assert_eq!(source["kubernetes.pod.name"], "payment-7d9f8-x2k4q");
        assert_eq!(source["kubernetes.pod.uid"], "0f1e-uid");
        assert_eq!(source["kubernetes.container.name"], "payment-api");
        assert!(
            source.get("container.id").is_none(),
            "not known from this path"
        );
        let (_, source) = encode_from(&line(br#"{"message":"x"}"#), &pod_file());
        assert!(source.get("stream").is_none(), "a plain line of a pod file");
        assert_eq!(source["kubernetes.namespace"], "shop");
    }

    #[test]
    fn a_container_s_line_without_a_time_of_its_own_takes_the_runtime_s() {
        let mut l = line(b"plain text on stderr");
        l.container = Some(RUNTIME);
        let (action, source) = encode_from(&l, &pod_file());
        assert_eq!(
            action["create"]["_index"], "logs-payment_api-default",
            "the container's name"
        );
        assert_eq!(source["@timestamp"], "2026-12-02T15:30:00.123456789Z");
        assert_eq!(source["stream"], "stderr");
        assert_eq!(source["message"], "plain text on stderr");
        assert_eq!(source["tags"], serde_json::json!([tag::NOT_JSON]));
        let mut l = line(br#"{"service.name":"loan-resource"}"#);
        l.container = Some(Container::Record {
            stream: Stream::Stdout,
            time: b"2026-99-02T15:30:00Z",
        });
        let (action, source) = encode_from(&l, &pod_file());
        assert_eq!(action["create"]["_index"], "logs-loan_resource-default");
        assert_eq!(
            source["@timestamp"], "2026-11-26T10:00:00.000Z",
            "not a time: the read time"
        );
    }

    #[test]
    fn a_malformed_container_line_is_shipped_whole_and_flagged() {
        let mut l = line(br#"{"looks":"like json"}"#);
        l.container = Some(Container::Malformed);
        let (_, source) = encode_from(&l, &pod_file());
        assert_eq!(source["message"], r#"{"looks":"like json"}"#);
        assert_eq!(
            source["tags"],
            serde_json::json!([tag::CONTAINER_PARSE_FAILURE])
        );
        assert!(source.get("stream").is_none());
        assert_eq!(source["kubernetes.container.name"], "payment-api");
    }
}
