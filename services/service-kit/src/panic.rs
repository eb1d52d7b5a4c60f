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

/// Drops the frames of the hook and the panic machinery, so the trace starts at the line
/// that panicked. Falls back to the whole trace if the machinery is not recognised.
fn from_panic_site(trace: &str) -> String {
    const MACHINERY: [&str; 4] = [
        "core::panicking::",
        "std::panicking::",
        "rust_begin_unwind",
        "std::sys::backtrace::",
    ];
    let lines: Vec<&str> = trace.lines().collect();
    let is_frame_start = |line: &str| {
        let t = line.trim_start();
        t.split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let frame_starts: Vec<usize> = (0..lines.len())
        .filter(|&i| is_frame_start(lines[i]))
        .collect();
    let is_machinery = |i: usize| MACHINERY.iter().any(|m| lines[i].contains(m));
    // The hook's own frames come first, then the panic machinery, then the panic site.
    let Some(first) = frame_starts.iter().position(|&i| is_machinery(i)) else {
        return trace.to_owned();
    };
    match frame_starts[first..].iter().find(|&&i| !is_machinery(i)) {
        Some(&site) => lines[site..].join("\n"),
        None => trace.to_owned(),
    }
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
            from_panic_site(&r.backtrace.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_starts_at_the_frame_after_the_panic_machinery() {
        let trace = "   0: service_kit::panic::install_hook::{{closure}}\n             at src/panic.rs:1:1\n   1: std::panicking::begin_panic_handler\n             at x.rs:2:2\n   2: core::panicking::panic_const::panic_const_div_by_zero\n             at y.rs:3:3\n   3: loan_resource::ledger::installment\n             at src/ledger.rs:153:17\n   4: main\n";
        assert_eq!(
            from_panic_site(trace),
            "   3: loan_resource::ledger::installment\n             at src/ledger.rs:153:17\n   4: main"
        );
    }

    #[test]
    fn unrecognised_traces_are_kept_whole() {
        assert_eq!(from_panic_site("   0: main\n"), "   0: main\n");
    }

    #[test]
    fn catch_unwind_frames_below_the_site_do_not_move_the_cut() {
        let trace = "   0: hook\n   1: std::panicking::begin_panic_handler\n   2: core::panicking::panic_fmt\n   3: app::handler\n   4: std::panicking::catch_unwind\n   5: main";
        assert_eq!(
            from_panic_site(trace),
            "   3: app::handler\n   4: std::panicking::catch_unwind\n   5: main"
        );
    }
}
