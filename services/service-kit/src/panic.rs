//! Panics in handlers become ApplicationError responses with the panic's location and stack.
//!
//! tower-http's `CatchPanicLayer` turns the panic into a response, but by then the stack has
//! unwound and only the payload is left. So a panic hook, which runs at the panic site,
//! captures the location and a backtrace into a thread-local; the layer's handler runs on the
//! same thread right after the unwind and picks them up. Panics outside a request (start-up,
//! background tasks) go to the previous hook unchanged.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::Once;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ErrorReport;
use crate::schema::Category;
use crate::transaction;

/// `error.type` of a caught panic.
pub const PANIC_ERROR_TYPE: &str = "Panic";

struct PanicRecord {
    location: String,
    backtrace: Backtrace,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<PanicRecord>> = const { RefCell::new(None) };
}

/// Installs the hook once per process; later calls do nothing.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if transaction::in_request() {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_else(|| "unknown location".to_owned());
                let record = PanicRecord {
                    location,
                    backtrace: Backtrace::force_capture(),
                };
                LAST_PANIC.with(|cell| *cell.borrow_mut() = Some(record));
            } else {
                previous(info);
            }
        }));
    });
}

/// The `CatchPanicLayer` handler: a 500 response carrying an ApplicationError report.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    let record = LAST_PANIC.with(|cell| cell.borrow_mut().take());
    let (message, stack_trace) = match record {
        Some(r) => (
            format!("panicked at {}: {what}", r.location),
            r.backtrace.to_string(),
        ),
        // Hook not installed: still an ApplicationError, with what we know.
        None => (
            format!("panicked: {what}"),
            Backtrace::force_capture().to_string(),
        ),
    };
    let report = ErrorReport {
        category: Category::ApplicationError,
        error_type: PANIC_ERROR_TYPE.to_owned(),
        message,
        stack_trace: Some(stack_trace),
    };
    let body = serde_json::json!({
        "error": {
            "type": PANIC_ERROR_TYPE,
            "category": Category::ApplicationError.as_str(),
            "message": "internal error",
            "transaction_id": transaction::current().map(|t| t.to_string()),
        }
    });
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    response.extensions_mut().insert(report);
    response
}
