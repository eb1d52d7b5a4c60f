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

/// Writes every enabled event as one JSON line to a [`LogSink`].
#[derive(Debug, Clone)]
pub struct JsonLayer {
    formatter: LineFormatter,
    sink: LogSink,
}

impl JsonLayer {
    /// A layer formatting with `formatter` and writing to `sink`.
    pub fn new(formatter: LineFormatter, sink: LogSink) -> Self {
        Self { formatter, sink }
    }

    /// Formats `event` (with the fields of its spans) into `buf`, which is cleared first.
    fn format_event<S>(&self, buf: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        buf.clear();
        let level = *event.metadata().level();
        self.formatter.begin(buf, level.as_str());
        let mut visitor = FieldWriter::new(buf);
        visitor.sensitive = sensitive_fields(event.metadata());
        event.record(&mut visitor);
        let category_written = visitor.category_written;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    buf.extend_from_slice(&fields.0);
                }
            }
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

/// JSON fragment (`,"k":v,...`) of a span's fields.
struct SpanFields(Vec<u8>);

thread_local! {
    static LINE_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut buf = Vec::new();
        let mut writer = FieldWriter::new(&mut buf);
        writer.sensitive = sensitive_fields(attrs.metadata());
        attrs.record(&mut writer);
        span.extensions_mut().insert(SpanFields(buf));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            let mut writer = FieldWriter::new(&mut fields.0);
            writer.sensitive = sensitive_fields(span.metadata());
            values.record(&mut writer);
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
}

impl<'a> FieldWriter<'a> {
    fn new(buf: &'a mut Vec<u8>) -> Self {
        Self {
            buf,
            category_written: false,
            sensitive: 0,
            verbatim: false,
        }
    }

    /// Writes the key and reports whether the value may follow (false: it was redacted).
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
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
            json::write_str(self.buf, value);
        } else {
            json::write_str(self.buf, &redact::mask_pans(value));
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
        std::fs::read_to_string(&path)
            .expect("read log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
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
