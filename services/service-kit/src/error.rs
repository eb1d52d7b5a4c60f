//! The one error type of the services, and the single place that decides, per kind of
//! failure, the status code, the log level, the category and whether a stack trace is kept.
//!
//! Handlers return `Result<_, ServiceError>`. Turning the error into a response attaches an
//! [`ErrorReport`] to the response's extensions; the request layer puts the report on the
//! request's access line, so every failed request is one line that carries its status, its
//! category and (for bugs and infrastructure failures) the stack trace.

use std::backtrace::Backtrace;
use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracing::Level;

use crate::schema::Category;
use crate::transaction;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while handling a request.
#[derive(Debug)]
pub enum ServiceError {
    /// A domain rule refused the request (limit exceeded, insufficient balance, slot taken).
    Business {
        /// Stable name of the rule, written as `error.type`.
        rule: &'static str,
        /// Explanation for the caller.
        message: String,
        /// 409 or 422.
        status: StatusCode,
    },
    /// The request is malformed or names something that does not exist. Logged as a
    /// BusinessError: the caller's problem, neither a bug nor an outage.
    Rejected {
        /// Stable name of the reason, written as `error.type`.
        reason: &'static str,
        /// Explanation for the caller.
        message: String,
        /// 400 or 404.
        status: StatusCode,
    },
    /// A dependency failed: refused the connection, timed out or answered nonsense.
    System {
        /// Stable name of the failure, written as `error.type`.
        kind: &'static str,
        /// What we were doing.
        context: String,
        /// Why it failed; its whole cause chain is logged.
        source: BoxError,
        /// 502, 503 or 504.
        status: StatusCode,
        /// Where it was noticed.
        backtrace: Backtrace,
    },
    /// A bug noticed without a panic (an impossible state). Panics are caught separately,
    /// by the panic layer, and produce the same category.
    Bug {
        /// Stable name of the bug, written as `error.type`.
        kind: &'static str,
        /// What is wrong.
        message: String,
        /// Where it was noticed.
        backtrace: Backtrace,
    },
}

impl ServiceError {
    /// A domain rule answered 422 Unprocessable Content.
    pub fn unprocessable(rule: &'static str, message: impl Into<String>) -> Self {
        Self::Business {
            rule,
            message: message.into(),
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// A domain rule answered 409 Conflict (the resource's state forbids the request).
    pub fn conflict(rule: &'static str, message: impl Into<String>) -> Self {
        Self::Business {
            rule,
            message: message.into(),
            status: StatusCode::CONFLICT,
        }
    }

    /// 404 for an id that names nothing.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::Rejected {
            reason: "NotFound",
            message: format!("{} not found", what.into()),
            status: StatusCode::NOT_FOUND,
        }
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Rejected {
            reason: "BadRequest",
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// A failed call to another service. Timeouts answer 504, refused or unreachable
    /// connections 503, anything else 502.
    pub fn dependency(dependency: &str, source: reqwest::Error) -> Self {
        let (kind, status) = if source.is_timeout() {
            ("DependencyTimeout", StatusCode::GATEWAY_TIMEOUT)
        } else if source.is_connect() {
            ("DependencyUnavailable", StatusCode::SERVICE_UNAVAILABLE)
        } else {
            ("DependencyFailed", StatusCode::BAD_GATEWAY)
        };
        Self::System {
            kind,
            context: format!("calling {dependency}"),
            source: Box::new(source),
            status,
            backtrace: Backtrace::force_capture(),
        }
    }

    /// Any other infrastructure failure.
    pub fn system(
        kind: &'static str,
        status: StatusCode,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::System {
            kind,
            context: context.into(),
            source: source.into(),
            status,
            backtrace: Backtrace::force_capture(),
        }
    }

    /// A bug noticed by the code itself.
    pub fn bug(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Bug {
            kind,
            message: message.into(),
            backtrace: Backtrace::force_capture(),
        }
    }

    /// HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Business { status, .. }
            | Self::Rejected { status, .. }
            | Self::System { status, .. } => *status,
            Self::Bug { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `log.category` of the request's line.
    pub fn category(&self) -> Category {
        match self {
            Self::Business { .. } | Self::Rejected { .. } => Category::BusinessError,
            Self::System { .. } => Category::SystemError,
            Self::Bug { .. } => Category::ApplicationError,
        }
    }

    /// `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Business { rule, .. } => rule,
            Self::Rejected { reason, .. } => reason,
            Self::System { kind, .. } | Self::Bug { kind, .. } => kind,
        }
    }

    /// The message shown to the caller: no cause chain, which may describe our internals.
    pub fn public_message(&self) -> &str {
        match self {
            Self::Business { message, .. }
            | Self::Rejected { message, .. }
            | Self::Bug { message, .. } => message,
            Self::System { context, .. } => context,
        }
    }

    fn into_report(self) -> ErrorReport {
        let category = self.category();
        let error_type = self.error_type();
        let message = cause_chain(&self);
        let stack_trace = match &self {
            Self::System { backtrace, .. } | Self::Bug { backtrace, .. } => {
                Some(backtrace.to_string())
            }
            Self::Business { .. } | Self::Rejected { .. } => None,
        };
        debug_assert_eq!(stack_trace.is_some(), category.captures_stack_trace());
        ErrorReport {
            category,
            error_type: error_type.into(),
            message,
            stack_trace,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.public_message())
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::System { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let report = self.into_report();
        let mut response = (status, Json(report.body())).into_response();
        response.extensions_mut().insert(report);
        response
    }
}

/// The error of a failed request, carried in the response's extensions to the access line.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// `log.category`.
    pub category: Category,
    /// `error.type`.
    pub error_type: String,
    /// `error.message`, with the cause chain.
    pub message: String,
    /// `error.stack_trace`, for ApplicationError and SystemError only.
    pub stack_trace: Option<String>,
}

impl ErrorReport {
    /// Log level of a request that failed this way.
    pub fn level(&self) -> Level {
        level_of(self.category)
    }

    /// The JSON body answered to the caller. The stack trace stays in the log, and the
    /// message is masked as the log is: it may quote input (`account <id> not found`).
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "type": self.error_type,
                "category": self.category.as_str(),
                "message": crate::redact::mask_secrets(self.public_message()),
                "transaction_id": transaction::current().map(|t| t.to_string()),
            }
        })
    }

    fn public_message(&self) -> &str {
        // System errors log "context: cause: cause"; the caller gets the context only.
        match self.category {
            Category::SystemError => self.message.split(": ").next().unwrap_or(&self.message),
            _ => &self.message,
        }
    }
}

/// Log level for lines of a category: business errors are warnings (the service worked as
/// designed), bugs and outages are errors.
pub fn level_of(category: Category) -> Level {
    match category {
        Category::ApplicationInfo => Level::INFO,
        Category::BusinessError => Level::WARN,
        Category::ApplicationError | Category::SystemError => Level::ERROR,
    }
}

/// `error: cause: cause...`, the whole chain on one line.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source's text in their own; do not print it twice.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(Debug)]
    pub(crate) struct Wrapped(pub std::io::Error);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("calling dependency")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_kind_maps_to_its_status_category_and_level_in_one_place() {
        let cases = [
            (
                ServiceError::unprocessable("CreditLimitExceeded", "x"),
                422,
                Category::BusinessError,
                Level::WARN,
            ),
            (
                ServiceError::conflict("SlotTaken", "x"),
                409,
                Category::BusinessError,
                Level::WARN,
            ),
            (
                ServiceError::not_found("loan 7"),
                404,
                Category::BusinessError,
                Level::WARN,
            ),
            (
                ServiceError::system(
                    "DependencyUnavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "calling x",
                    Wrapped(std::io::Error::other("refused")),
                ),
                503,
                Category::SystemError,
                Level::ERROR,
            ),
            (
                ServiceError::bug("ImpossibleState", "x"),
                500,
                Category::ApplicationError,
                Level::ERROR,
            ),
        ];
        for (error, status, category, level) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.category(), category);
            assert_eq!(level_of(error.category()), level);
        }
    }

    #[test]
    fn system_errors_keep_cause_chain_and_stack_trace_business_errors_neither() {
        let system = ServiceError::system(
            "DependencyUnavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            "calling reservation",
            Wrapped(std::io::Error::other("connection refused")),
        );
        let report = system.into_report();
        assert_eq!(
            report.message,
            "calling reservation: calling dependency: connection refused"
        );
        let trace = report
            .stack_trace
            .as_deref()
            .expect("system errors keep a trace");
        assert!(
            trace.contains("system_errors_keep_cause_chain"),
            "the trace names the function that built the error: {trace}"
        );
        assert_eq!(report.public_message(), "calling reservation");

        let business =
            ServiceError::unprocessable("CreditLimitExceeded", "over limit").into_report();
        assert!(business.stack_trace.is_none());
        assert_eq!(business.message, "over limit");
    }

    #[test]
    fn response_carries_status_json_body_and_report_extension() {
        let response = ServiceError::conflict("SlotTaken", "slot 3 is taken").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let report = response
            .extensions()
            .get::<ErrorReport>()
            .expect("report for the access line");
        assert_eq!(report.category, Category::BusinessError);
        assert_eq!(report.error_type, "SlotTaken");
    }
}
