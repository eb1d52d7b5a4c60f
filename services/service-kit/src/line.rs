//! The parts of a log line that do not depend on the event: its opening (timestamp, level)
//! and its closing (service identity, category).
//!
//! The service identity never changes during a process's life, so it is rendered to JSON
//! once at start-up and copied onto each line as a single slice.

use chrono::Utc;
use chrono_tz::Tz;

use crate::json;
use crate::schema::{self, Category};
use crate::timestamp;

/// Who writes the lines: the `service.*` and `host.name` fields.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// `service.name`.
    pub name: String,
    /// `service.version`.
    pub version: String,
    /// `service.environment`.
    pub environment: String,
    /// `host.name`.
    pub host: String,
}

/// Opens and closes JSON log lines.
#[derive(Debug, Clone)]
pub struct LineFormatter {
    tz: Tz,
    identity_fields: Vec<u8>,
}

impl LineFormatter {
    /// Renders the identity once; `tz` is the zone of `@timestamp`.
    pub fn new(identity: &ServiceIdentity, tz: Tz) -> Self {
        let mut identity_fields = Vec::with_capacity(160);
        for (key, value) in [
            (schema::ECS_VERSION_FIELD, schema::ECS_VERSION),
            (schema::SERVICE_NAME, identity.name.as_str()),
            (schema::SERVICE_VERSION, identity.version.as_str()),
            (schema::SERVICE_ENVIRONMENT, identity.environment.as_str()),
            (schema::HOST_NAME, identity.host.as_str()),
        ] {
            json::write_key(&mut identity_fields, key);
            json::write_str(&mut identity_fields, value);
        }
        Self {
            tz,
            identity_fields,
        }
    }

    /// Appends `{"@timestamp":"…","log.level":"…"` for the current time.
    pub fn begin(&self, buf: &mut Vec<u8>, level: &str) {
        buf.extend_from_slice(b"{\"");
        buf.extend_from_slice(schema::TIMESTAMP.as_bytes());
        buf.extend_from_slice(b"\":\"");
        timestamp::write_rfc3339(buf, Utc::now(), self.tz);
        buf.push(b'"');
        json::write_key(buf, schema::LOG_LEVEL);
        json::write_str(buf, level);
    }

    /// Appends the identity, `log.category` unless the event already carried one, and the
    /// closing brace and newline.
    pub fn finish(&self, buf: &mut Vec<u8>, category: Option<Category>) {
        buf.extend_from_slice(&self.identity_fields);
        if let Some(category) = category {
            json::write_key(buf, schema::LOG_CATEGORY);
            json::write_str(buf, category.as_str());
        }
        buf.extend_from_slice(b"}\n");
    }

    /// A complete line reporting `count` lines lost because the buffer was full. Losing
    /// lines is an infrastructure problem (the disk does not keep up), hence SystemError.
    pub fn dropped_lines_report(&self, count: u64) -> Vec<u8> {
        let mut buf = Vec::with_capacity(384);
        self.begin(&mut buf, "WARN");
        json::write_key(&mut buf, schema::MESSAGE);
        json::write_str(
            &mut buf,
            &format!("{count} log lines were dropped because the log buffer was full"),
        );
        json::write_key(&mut buf, schema::LOG_DROPPED);
        json::write_u64(&mut buf, count);
        self.finish(&mut buf, Some(Category::SystemError));
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn identity() -> ServiceIdentity {
        ServiceIdentity {
            name: "payment".into(),
            version: "1.2.3".into(),
            environment: "test".into(),
            host: "host \"a\"".into(),
        }
    }

    #[test]
    fn dropped_lines_report_is_one_complete_json_line() {
        let f = LineFormatter::new(&identity(), chrono_tz::Asia::Tehran);
        let line = f.dropped_lines_report(7);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v[schema::LOG_DROPPED], 7);
        assert_eq!(v[schema::LOG_CATEGORY], "SystemError");
        assert_eq!(v[schema::LOG_LEVEL], "WARN");
        assert_eq!(v[schema::ECS_VERSION_FIELD], "9.2.0");
        assert_eq!(v[schema::SERVICE_NAME], "payment");
        assert_eq!(v[schema::HOST_NAME], "host \"a\"");
        let ts = v[schema::TIMESTAMP].as_str().expect("timestamp string");
        assert!(ts.ends_with("+03:30"), "{ts}");
    }
}
