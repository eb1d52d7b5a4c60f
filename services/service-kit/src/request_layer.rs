//! The per-request middleware: transaction id, request span, and the access line.
//!
//! It sits outside the panic layer, so a panicking handler still produces its access line
//! (with the panic's report), and inside the sensitive-headers layer, so nothing it might
//! log can see credential headers.
//!
//! A request whose client goes away is dropped by the server mid-way (its future is never
//! polled again): a guard held across the handler writes its access line then, with status
//! 499 (nginx's "client closed request"), so every request that reached a handler leaves a
//! line, including one whose downstream call already happened.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, Level};

use crate::error::{level_of, ErrorReport};
use crate::schema::{self, Category};
use crate::transaction::{self, TransactionId};

/// Path of the health check, logged at TRACE (off by default): Heartbeat calls it every
/// ten seconds per service, and those lines would drown the useful ones.
pub const HEALTH_PATH: &str = "/health";

/// Category of a response that carries no [`ErrorReport`]: an error the services did not
/// raise themselves (unknown route, unparseable body) is the caller's problem, a 5xx nobody
/// explained is a bug.
pub fn category_for_status(status: StatusCode) -> Category {
    if status.is_server_error() {
        Category::ApplicationError
    } else if status.is_client_error() {
        Category::BusinessError
    } else {
        Category::ApplicationInfo
    }
}

/// Status of the access line of a request whose client went away before the answer.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// `error.type` of a failed request that carries no [`ErrorReport`], by status: the layers
/// that answer these (timeout, body limit) know no more than the status.
fn error_type_for_status(status: u16) -> Option<&'static str> {
    match status {
        408 => Some("RequestTimeout"),
        413 => Some("PayloadTooLarge"),
        CLIENT_CLOSED_REQUEST => Some("ClientClosedRequest"),
        _ => None,
    }
}

/// Writes the access line of a request dropped before its answer (see the module
/// documentation); disarmed once the answer is there.
struct UnansweredGuard {
    tx: TransactionId,
    method: Method,
    uri: Uri,
    started: Instant,
    answered: bool,
}

impl Drop for UnansweredGuard {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let category = Category::BusinessError;
        AccessLine {
            transaction_id: self.tx.as_str(),
            method: self.method.as_str(),
            path: self.uri.path(),
            status: CLIENT_CLOSED_REQUEST,
            duration_ns: elapsed_ns(self.started),
            outcome: "failure",
            category,
            error_type: error_type_for_status(CLIENT_CLOSED_REQUEST),
            error_message: Some("the client closed the connection before the answer"),
            stack_trace: None,
        }
        .emit(level_of(category));
    }
}

fn elapsed_ns(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `axum::middleware::from_fn` body: see the module documentation.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let tx = TransactionId::from_header_or_generate(
        request.headers().get(schema::TRANSACTION_ID_HEADER),
    );
    let method = request.method().clone();
    let uri = request.uri().clone();
    // ERROR is the span's verbosity, not a severity: it keeps the span (and so the
    // transaction id on every line) enabled whatever level filter is configured.
    let span = tracing::error_span!("request", { schema::TRANSACTION_ID } = tx.as_str());
    request.extensions_mut().insert(tx.clone());
    let mut guard = UnansweredGuard {
        tx: tx.clone(),
        method: method.clone(),
        uri: uri.clone(),
        started,
        answered: false,
    };

    let mut response = transaction::scope(tx.clone(), next.run(request).instrument(span)).await;
    guard.answered = true;
    response.headers_mut().insert(
        HeaderName::from_static(schema::TRANSACTION_ID_HEADER),
        tx.header_value(),
    );

    let duration_ns = elapsed_ns(started);
    // The access line names the transaction itself rather than entering the request span
    // again: one span lookup and enter/exit less per request on the hot path.
    let status = response.status();
    let report = response.extensions().get::<ErrorReport>();
    let category = report.map_or_else(|| category_for_status(status), |r| r.category);
    let level = if uri.path() == HEALTH_PATH && category == Category::ApplicationInfo {
        Level::TRACE
    } else {
        level_of(category)
    };
    let line = AccessLine {
        transaction_id: tx.as_str(),
        method: method.as_str(),
        path: uri.path(),
        status: status.as_u16(),
        duration_ns,
        outcome: if status.is_client_error() || status.is_server_error() {
            "failure"
        } else {
            "success"
        },
        category,
        error_type: report
            .map(|r| r.error_type.as_str())
            .or_else(|| error_type_for_status(status.as_u16())),
        error_message: report.map(|r| r.message.as_str()),
        stack_trace: report.and_then(|r| r.stack_trace.as_deref()),
    };
    line.emit(level);
    response
}

struct AccessLine<'a> {
    transaction_id: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_ns: u64,
    outcome: &'static str,
    category: Category,
    error_type: Option<&'a str>,
    error_message: Option<&'a str>,
    stack_trace: Option<&'a str>,
}

impl AccessLine<'_> {
    fn emit(&self, level: Level) {
        // `tracing` needs the level at compile time, hence one call site per level.
        macro_rules! access_event {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    { schema::TRANSACTION_ID } = self.transaction_id,
                    { schema::HTTP_REQUEST_METHOD } = self.method,
                    { schema::URL_PATH } = self.path,
                    { schema::HTTP_RESPONSE_STATUS_CODE } = u64::from(self.status),
                    { schema::EVENT_DURATION } = self.duration_ns,
                    { schema::EVENT_OUTCOME } = self.outcome,
                    { schema::LOG_CATEGORY } = self.category.as_str(),
                    { schema::ERROR_TYPE } = self.error_type,
                    { schema::ERROR_MESSAGE } = self.error_message,
                    { schema::ERROR_STACK_TRACE } = self.stack_trace,
                    "{} {} {}",
                    self.method,
                    self.path,
                    self.status
                )
            };
        }
        if level == Level::TRACE {
            access_event!(Level::TRACE)
        } else if level == Level::DEBUG {
            access_event!(Level::DEBUG)
        } else if level == Level::INFO {
            access_event!(Level::INFO)
        } else if level == Level::WARN {
            access_event!(Level::WARN)
        } else {
            access_event!(Level::ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexplained_statuses_get_the_category_of_whoever_is_at_fault() {
        assert_eq!(
            category_for_status(StatusCode::OK),
            Category::ApplicationInfo
        );
        assert_eq!(
            category_for_status(StatusCode::NOT_FOUND),
            Category::BusinessError
        );
        assert_eq!(
            category_for_status(StatusCode::INTERNAL_SERVER_ERROR),
            Category::ApplicationError
        );
    }
}
