//! The log schema: every field name a didban service writes, and the four log categories.
//!
//! This module is the single source of truth for field names on the service side. The
//! shipper's enrichment, the Elasticsearch index template and the dashboards refer to the
//! same names, so a rename here is a schema change for the whole stack. Names follow ECS 9.2
//! wherever ECS has a field; the category has no ECS equivalent (ECS `event.category` is a
//! closed list of values such as `web` or `database`), so it lives in `log.category`.

use std::fmt;
use std::str::FromStr;

/// ECS version the field names follow; written as `ecs.version` on every line.
pub const ECS_VERSION: &str = "9.2.0";

/// Event time, RFC 3339 with the configured zone's offset (Asia/Tehran: `+03:30`).
pub const TIMESTAMP: &str = "@timestamp";
/// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
pub const LOG_LEVEL: &str = "log.level";
/// Human-readable text of the line.
pub const MESSAGE: &str = "message";
/// Always [`ECS_VERSION`].
pub const ECS_VERSION_FIELD: &str = "ecs.version";
/// Name of the service that wrote the line (`payment`, ...).
pub const SERVICE_NAME: &str = "service.name";
/// Version of the service binary.
pub const SERVICE_VERSION: &str = "service.version";
/// Deployment environment (`production`, `staging`, `development`, ...).
pub const SERVICE_ENVIRONMENT: &str = "service.environment";
/// Host (or container) name.
pub const HOST_NAME: &str = "host.name";
/// One id per request, followed across services via the `X-Transaction-ID` header.
pub const TRANSACTION_ID: &str = "transaction.id";
/// Kind of error (a stable, machine-friendly name).
pub const ERROR_TYPE: &str = "error.type";
/// Error text including its cause chain.
pub const ERROR_MESSAGE: &str = "error.message";
/// Stack trace of where the error happened (ApplicationError and SystemError only).
pub const ERROR_STACK_TRACE: &str = "error.stack_trace";
/// HTTP method of the request.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// Path of the request, without the query string.
pub const URL_PATH: &str = "url.path";
/// Status code of the response.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Duration of the request in nanoseconds.
pub const EVENT_DURATION: &str = "event.duration";
/// `success` or `failure`.
pub const EVENT_OUTCOME: &str = "event.outcome";
/// One of the four [`Category`] names.
pub const LOG_CATEGORY: &str = "log.category";
/// Number of log lines dropped because the write buffer was full (on the report line only).
pub const LOG_DROPPED: &str = "log.dropped";
/// Address the server listens on (on the start-up line).
pub const SERVER_ADDRESS: &str = "server.address";
/// Port the server listens on (on the start-up line).
pub const SERVER_PORT: &str = "server.port";

/// Header carrying the transaction id between services and back to the caller.
pub const TRANSACTION_ID_HEADER: &str = "x-transaction-id";

/// Every field name above, for checks that keep the rest of the stack in agreement.
pub const ALL_FIELDS: &[&str] = &[
    TIMESTAMP,
    LOG_LEVEL,
    MESSAGE,
    ECS_VERSION_FIELD,
    SERVICE_NAME,
    SERVICE_VERSION,
    SERVICE_ENVIRONMENT,
    HOST_NAME,
    TRANSACTION_ID,
    ERROR_TYPE,
    ERROR_MESSAGE,
    ERROR_STACK_TRACE,
    HTTP_REQUEST_METHOD,
    URL_PATH,
    HTTP_RESPONSE_STATUS_CODE,
    EVENT_DURATION,
    EVENT_OUTCOME,
    LOG_CATEGORY,
    LOG_DROPPED,
    SERVER_ADDRESS,
    SERVER_PORT,
];

/// Whose problem a line is: the question a reader of the logs asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Normal operation.
    ApplicationInfo,
    /// A bug: a panic or a state the code should never reach.
    ApplicationError,
    /// A domain rule refused the request; the service worked as designed.
    BusinessError,
    /// Infrastructure failed: a dependency is down, slow or unreachable.
    SystemError,
}

impl Category {
    /// All categories, in a stable order.
    pub const ALL: [Category; 4] = [
        Category::ApplicationInfo,
        Category::ApplicationError,
        Category::BusinessError,
        Category::SystemError,
    ];

    /// The name written in `log.category`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::ApplicationInfo => "ApplicationInfo",
            Category::ApplicationError => "ApplicationError",
            Category::BusinessError => "BusinessError",
            Category::SystemError => "SystemError",
        }
    }

    /// Whether lines of this category carry `error.stack_trace`. Business errors do not:
    /// the service did what it was designed to do, and a trace would only be noise.
    pub const fn captures_stack_trace(self) -> bool {
        matches!(self, Category::ApplicationError | Category::SystemError)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing a category name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown log category {0:?}")]
pub struct UnknownCategory(String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_round_trip_through_from_str() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().ok(), Some(c));
        }
        assert!("Info".parse::<Category>().is_err());
    }

    #[test]
    fn only_application_and_system_errors_capture_stack_traces() {
        assert!(Category::ApplicationError.captures_stack_trace());
        assert!(Category::SystemError.captures_stack_trace());
        assert!(!Category::BusinessError.captures_stack_trace());
        assert!(!Category::ApplicationInfo.captures_stack_trace());
    }

    #[test]
    fn field_names_are_unique() {
        let mut names = ALL_FIELDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL_FIELDS.len());
    }
}
