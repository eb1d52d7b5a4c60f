//! The `tracing` layer that turns events into ECS JSON lines.
//!
//! `tracing-subscriber`'s own JSON formatter nests span fields under `spans`/`span` objects
//! and cannot add the service identity or mask values, so this layer writes the flat ECS
//! shape itself. Work on the request thread is one pass over the event's fields into a
//! thread-local buffer that is reused from line to line, then one allocation for the copy
//! handed to the writer thread.
//!
//! Span fields (such as `transaction.id` on the request span) are rendered to JSON once when
//! the span is created and copied onto every line logged inside it.
//!
//! A line longer than the cap (`LOG_MAX_LINE_BYTES`) is written again with every text value
//! clipped, and if that is still too long, with only the fields that say what happened
//! (message, category, transaction id, error type, status); either way it stays one JSON
//! object with its category and transaction id, flagged `"log.flags":["truncated"]`. A
//! downstream cut (the shipper's at 1 MiB) would leave a blob that no dashboard can place.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::json;
use crate::line::LineFormatter;
use crate::redact;
use crate::schema::{self, Category};
use crate::writer::LogSink;

/// Default cap on a line's size, in bytes: far above any line the services mean to write,
/// far below the shipper's 1 MiB cut.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Smallest cap accepted: room for the core fields of a line and a readable message.
pub const MIN_MAX_LINE_BYTES: usize = 4096;

/// Fields kept when even a clipped line is too long.
const CORE_FIELDS: [&str; 7] = [
    schema::MESSAGE,
    schema::LOG_CATEGORY,
    schema::TRANSACTION_ID,
    schema::ERROR_TYPE,
    schema::HTTP_REQUEST_METHOD,
    schema::HTTP_RESPONSE_STATUS_CODE,
    schema::EVENT_OUTCOME,
];

/// How much of an event a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Everything.
    Whole,
    /// Every field, each text value cut to this many bytes of JSON.
    Clipped(usize),
    /// Only [`CORE_FIELDS`], each text value cut to this many bytes of JSON.
    Core(usize),
}

/// Writes every enabled event as one JSON line to a [`LogSink`].
#[derive(Debug, Clone)]
pub struct JsonLayer {
    formatter: LineFormatter,
    sink: LogSink,
    max_line_bytes: usize,
}

impl JsonLayer {
    /// A layer formatting with `formatter` and writing to `sink`, lines capped at
    /// [`DEFAULT_MAX_LINE_BYTES`].
    pub fn new(formatter: LineFormatter, sink: LogSink) -> Self {
        Self {
            formatter,
            sink,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Caps lines at `max` bytes (at least [`MIN_MAX_LINE_BYTES`]).
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max.max(MIN_MAX_LINE_BYTES);
        self
    }

    /// Formats `event` (with the fields of its spans) into `buf`, within the cap.
    fn format_event<S>(&self, buf: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.write_event(buf, event, ctx, Fit::Whole);
        if buf.len() > self.max_line_bytes {
            // Sixteen long values still fit; the core fields (seven) always do.
            let clip = self.max_line_bytes / 16;
            self.write_event(buf, event, ctx, Fit::Clipped(clip));
            if buf.len() > self.max_line_bytes {
                self.write_event(buf, event, ctx, Fit::Core(clip));
            }
        }
    }

    /// Formats `event` into `buf`, which is cleared first.
    fn write_event<S>(&self, buf: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>, fit: Fit)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        buf.clear();
        let level = *event.metadata().level();
        self.formatter.begin(buf, level.as_str());
        let mut visitor = FieldWriter::new(buf);
        visitor.sensitive = sensitive_fields(event.metadata());
        visitor.fit = fit;
        event.record(&mut visitor);
        let category_written = visitor.category_written;
        let mut transaction_written = visitor.transaction_written;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    let whole = match fit {
                        Fit::Whole => true,
                        Fit::Clipped(clip) => fields.json.len() <= clip,
                        Fit::Core(_) => false,
                    };
                    if whole {
                        buf.extend_from_slice(&fields.json);
                        transaction_written |= fields.transaction_id.is_some();
                    } else if let Some(tx) = fields.transaction_id.as_deref() {
                        if !transaction_written {
                            json::write_key(buf, schema::TRANSACTION_ID);
                            json::write_str(buf, tx);
                            transaction_written = true;
                        }
                    }
                }
            }
        }
        if fit != Fit::Whole {
            json::write_key(buf, schema::LOG_FLAGS);
            buf.push(b'[');
            json::write_str(buf, schema::FLAG_TRUNCATED);
            buf.push(b']');
        }
        let category = (!category_written).then(|| default_category(level));
        self.formatter.finish(buf, category);
    }
}

/// The category of a line that does not name one: errors nobody classified are treated as
/// bugs, everything else as normal operation.
fn default_category(level: Level) -> Category {
    if level == Level::ERROR {
        Category::ApplicationError
    } else {
        Category::ApplicationInfo
    }
}

/// A span's fields: their JSON fragment (`,"k":v,...`) and the transaction id among them,
/// which a capped line keeps whatever else it drops.
struct SpanFields {
    json: Vec<u8>,
    transaction_id: Option<String>,
}

thread_local! {
    static LINE_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut json = Vec::new();
        let mut writer = FieldWriter::new(&mut json);
        writer.sensitive = sensitive_fields(attrs.metadata());
        writer.capture_transaction = true;
        attrs.record(&mut writer);
        let transaction_id = writer.transaction_id.take();
        span.extensions_mut().insert(SpanFields {
            json,
            transaction_id,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            let mut writer = FieldWriter::new(&mut fields.json);
            writer.sensitive = sensitive_fields(span.metadata());
            writer.capture_transaction = true;
            values.record(&mut writer);
            if let Some(tx) = writer.transaction_id.take() {
                fields.transaction_id = Some(tx);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE_BUFFER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                self.format_event(&mut buf, event, &ctx);
                self.sink.send(&buf);
            }
            // Only reachable if formatting a value logs by itself; use a fresh buffer.
            Err(_) => {
                let mut buf = Vec::with_capacity(512);
                self.format_event(&mut buf, event, &ctx);
                self.sink.send(&buf);
            }
        });
    }
}

thread_local! {
    /// Which fields of each call site hold credentials, one bit per field index. Field names
    /// are fixed per call site, so the name check runs once per call site and thread instead
    /// of once per field of every line.
    static SENSITIVE: RefCell<HashMap<Identifier, u64>> = RefCell::new(HashMap::new());
}

/// Bit `i` set: field `i` of this call site must be redacted. Fields past the 64th are
/// checked by name (see [`FieldWriter::key`]).
fn sensitive_fields(metadata: &'static Metadata<'static>) -> u64 {
    let compute = || {
        metadata
            .fields()
            .iter()
            .take(64)
            .filter(|f| redact::is_sensitive_field(f.name()))
            .fold(0u64, |mask, f| mask | (1 << f.index()))
    };
    SENSITIVE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cache) => *cache.entry(metadata.callsite()).or_insert_with(compute),
        Err(_) => compute(),
    })
}

/// Writes fields as `,"name":value`, masking card numbers and credentials.
struct FieldWriter<'a> {
    buf: &'a mut Vec<u8>,
    category_written: bool,
    sensitive: u64,
    /// The value being written is a transaction id: written as is. Ids are checked to hold
    /// no card number when they enter (see `transaction::is_sane`), and masking digits
    /// inside a UUID would corrupt the one field that ties a request's lines together.
    verbatim: bool,
    /// A transaction id was written.
    transaction_written: bool,
    /// Keep a copy of the transaction id written (span fields only: once per request, not
    /// once per line).
    capture_transaction: bool,
    transaction_id: Option<String>,
    fit: Fit,
}

impl<'a> FieldWriter<'a> {
    fn new(buf: &'a mut Vec<u8>) -> Self {
        Self {
            buf,
            category_written: false,
            sensitive: 0,
            verbatim: false,
            transaction_written: false,
            capture_transaction: false,
            transaction_id: None,
            fit: Fit::Whole,
        }
    }

    /// Writes the key and reports whether the value may follow (false: it was redacted,
    /// or the field is left out of a capped line, key included).
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if matches!(self.fit, Fit::Core(_)) && !CORE_FIELDS.contains(&name) {
            return false;
        }
        json::write_key(self.buf, name);
        if name == schema::LOG_CATEGORY {
            self.category_written = true;
        }
        self.verbatim = name == schema::TRANSACTION_ID;
        let sensitive = match field.index() {
            i if i < 64 => self.sensitive & (1 << i) != 0,
            _ => redact::is_sensitive_field(name),
        };
        if sensitive {
            json::write_str(self.buf, redact::REDACTED);
            return false;
        }
        true
    }

    fn text(&mut self, value: &str) {
        if self.verbatim {
            // Sane ids are short; one set from inside the process is clipped like any text.
            self.clipped(value);
            self.transaction_written = true;
            if self.capture_transaction {
                self.transaction_id = Some(value.to_owned());
            }
        } else {
            self.clipped(&redact::mask_secrets(value));
        }
    }

    fn clipped(&mut self, value: &str) {
        match self.fit {
            Fit::Whole => json::write_str(self.buf, value),
            Fit::Clipped(max) | Fit::Core(max) => {
                json::write_str_clipped(self.buf, value, max);
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            self.text(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.key(field) {
            return;
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                scratch.clear();
                let _ = write!(scratch, "{value:?}");
                self.text(&scratch);
            }
            Err(_) => self.text(&format!("{value:?}")),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            json::write_i64(self.buf, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            json::write_u64(self.buf, value);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            json::write_f64(self.buf, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.buf
                .extend_from_slice(if value { b"true" } else { b"false" });
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.key(field) {
            self.text(&crate::error::cause_chain(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::ServiceIdentity;
    use crate::writer::{self, WriterConfig};
    use std::time::Duration;
    use tracing_subscriber::prelude::*;

    /// Runs `f` with a subscriber writing to a temp file and returns the parsed lines.
    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        capture_raw(f)
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }

    /// Runs `f` with a subscriber writing to a temp file and returns the file's text.
    fn capture_raw(f: impl FnOnce()) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        let formatter = LineFormatter::new(
            &ServiceIdentity {
                name: "svc".into(),
                version: "1".into(),
                environment: "test".into(),
                host: "h".into(),
            },
            chrono_tz::Asia::Tehran,
        );
        let (sink, _t) = writer::spawn(
            &WriterConfig {
                file: Some(path.clone()),
                max_bytes: 0,
                max_files: 1,
                stdout: false,
                buffer_lines: 4096,
            },
            formatter.clone(),
        )
        .expect("spawn writer");
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(formatter, sink.clone()));
        tracing::subscriber::with_default(subscriber, f);
        assert!(sink.flush(Duration::from_secs(5)));
        std::fs::read_to_string(&path).expect("read log")
    }

    #[test]
    fn event_becomes_flat_ecs_json_with_span_fields_and_identity() {
        let lines = capture(|| {
            let span = tracing::error_span!("request", { schema::TRANSACTION_ID } = "tx-1");
            let _g = span.enter();
            tracing::info!(
                { schema::URL_PATH } = "/loans",
                count = 3u64,
                "loan \"created\""
            );
        });
        assert_eq!(lines.len(), 1);
        let v = &lines[0];
        assert_eq!(v[schema::MESSAGE], "loan \"created\"");
        assert_eq!(v[schema::LOG_LEVEL], "INFO");
        assert_eq!(v[schema::TRANSACTION_ID], "tx-1");
        assert_eq!(v[schema::URL_PATH], "/loans");
        assert_eq!(v["count"], 3);
        assert_eq!(v[schema::LOG_CATEGORY], "ApplicationInfo");
        assert_eq!(v[schema::SERVICE_NAME], "svc");
        assert!(v[schema::TIMESTAMP]
            .as_str()
            .is_some_and(|t| t.ends_with("+03:30")));
    }

    #[test]
    fn explicit_category_is_kept_and_not_duplicated() {
        let lines = capture(|| {
            tracing::warn!({ schema::LOG_CATEGORY } = "BusinessError", "refused");
        });
        let raw = lines[0].to_string();
        assert_eq!(raw.matches(schema::LOG_CATEGORY).count(), 1);
        assert_eq!(lines[0][schema::LOG_CATEGORY], "BusinessError");
    }

    #[test]
    fn unclassified_error_events_default_to_application_error() {
        let lines = capture(|| tracing::error!("something broke"));
        assert_eq!(lines[0][schema::LOG_CATEGORY], "ApplicationError");
    }

    #[test]
    fn card_numbers_are_masked_in_messages_and_fields() {
        let lines = capture(|| {
            let card = "4111 1111 1111 1111";
            tracing::info!(card_number = card, debugged = ?card, "paid with {card}");
        });
        let raw = lines[0].to_string();
        assert!(!raw.contains("4111 1111 1111 1111"), "{raw}");
        assert!(!raw.contains("4111111111111111"), "{raw}");
        assert_eq!(lines[0]["card_number"], "**** **** **** 1111");
    }

    #[test]
    fn card_numbers_in_any_script_spacing_or_encoding_are_masked() {
        let raw = capture_raw(|| {
            tracing::info!(
                { schema::URL_PATH } = "/accounts/%34%31%31%31%201111%201111%201111",
                debugged = ?"۴۱۱۱.۱۱۱۱.۱۱۱۱.۱۱۱۱",
                "GET /accounts/4111  1111  1111  1111x 404"
            );
        });
        assert!(!redact::contains_pan(&raw), "{raw}");
        assert!(raw.contains("****%20****%20****%201111"), "{raw}");
    }

    #[test]
    fn credentials_inside_error_messages_are_masked() {
        let lines = capture(|| {
            tracing::error!(
                { schema::LOG_CATEGORY } = "SystemError",
                { schema::ERROR_MESSAGE } =
                    "calling gateway: 401 {\"error\":\"bad\",\"access_token\":\"tok-123\"} Authorization: Bearer abc",
                "POST /settlements 502"
            );
        });
        let message = lines[0][schema::ERROR_MESSAGE].as_str().expect("message");
        assert!(
            !message.contains("tok-123") && !message.contains("abc"),
            "{message}"
        );
        assert!(message.starts_with("calling gateway: 401"), "{message}");
    }

    #[test]
    fn a_two_megabyte_line_is_one_json_object_within_the_cap_with_its_category_and_id() {
        let big = "x".repeat(2 * 1024 * 1024);
        let raw = capture_raw(|| {
            let span = tracing::error_span!("request", { schema::TRANSACTION_ID } = "tx-big");
            let _g = span.enter();
            tracing::warn!(
                { schema::LOG_CATEGORY } = "BusinessError",
                { schema::ERROR_TYPE } = "NotFound",
                { schema::ERROR_MESSAGE } = %big,
                "slot {big} not found"
            );
        });
        let line = raw.lines().next().expect("one line");
        assert!(line.len() < DEFAULT_MAX_LINE_BYTES, "{} bytes", line.len());
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
        assert_eq!(v[schema::LOG_CATEGORY], "BusinessError");
        assert_eq!(v[schema::TRANSACTION_ID], "tx-big");
        assert_eq!(v[schema::ERROR_TYPE], "NotFound");
        assert_eq!(
            v[schema::LOG_FLAGS],
            serde_json::json!([schema::FLAG_TRUNCATED])
        );
        assert_eq!(v[schema::SERVICE_NAME], "svc");
        let message = v[schema::MESSAGE].as_str().expect("message");
        assert!(
            message.starts_with("slot xxx") && message.ends_with('…'),
            "{message}"
        );
    }

    #[test]
    fn a_line_of_many_long_fields_keeps_only_what_says_what_happened() {
        let b = "y".repeat(100_000);
        let raw = capture_raw(|| {
            tracing::error!(
                { schema::TRANSACTION_ID } = "tx-many",
                { schema::LOG_CATEGORY } = "ApplicationError",
                f1 = %b, f2 = %b, f3 = %b, f4 = %b, f5 = %b, f6 = %b, f7 = %b, f8 = %b,
                f9 = %b, f10 = %b, f11 = %b, f12 = %b, f13 = %b, f14 = %b, f15 = %b,
                f16 = %b, f17 = %b, f18 = %b,
                "many fields"
            );
        });
        let line = raw.lines().next().expect("one line");
        assert!(line.len() < DEFAULT_MAX_LINE_BYTES, "{} bytes", line.len());
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
        assert_eq!(v[schema::TRANSACTION_ID], "tx-many");
        assert_eq!(v[schema::LOG_CATEGORY], "ApplicationError");
        assert_eq!(v[schema::MESSAGE], "many fields");
        assert!(v.get("f1").is_none(), "{v}");
        assert_eq!(
            v[schema::LOG_FLAGS],
            serde_json::json!([schema::FLAG_TRUNCATED])
        );
    }

    #[test]
    fn lines_within_the_cap_carry_no_flag() {
        let lines = capture(|| tracing::info!("short"));
        assert!(lines[0].get(schema::LOG_FLAGS).is_none());
    }

    #[test]
    fn credential_fields_are_redacted_whatever_their_value() {
        let lines = capture(|| {
            tracing::info!(authorization = "Bearer s3cret", cookie = ?"session=abc", "x");
        });
        let raw = lines[0].to_string();
        assert!(
            !raw.contains("s3cret") && !raw.contains("session=abc"),
            "{raw}"
        );
        assert_eq!(lines[0]["authorization"], redact::REDACTED);
    }

    #[test]
    fn errors_are_written_with_their_cause_chain() {
        let lines = capture(|| {
            let inner = std::io::Error::other("connection refused");
            let outer = crate::error::tests::Wrapped(inner);
            tracing::error!(
                error = &outer as &(dyn std::error::Error + 'static),
                "failed"
            );
        });
        assert_eq!(lines[0]["error"], "calling dependency: connection refused");
    }
}
