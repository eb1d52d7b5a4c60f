//! HTTP routes of `reservation`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use service_kit::{DependencyClient, Kit, ServiceError};

use crate::book::{Book, ReserveError, TAKEN_SLOT};

/// Base URL of the calendar service that receives confirmations. Not part of the stack: by
/// default it points at a port where nothing listens, so `/system-error` shows what an
/// unreachable dependency looks like.
const ENV_CALENDAR_URL: &str = "CALENDAR_URL";
const DEFAULT_CALENDAR_URL: &str = "http://127.0.0.1:9";

struct AppState {
    book: Mutex<Book>,
    client: DependencyClient,
    calendar_url: String,
}

type Shared = State<Arc<AppState>>;

impl AppState {
    fn book(&self) -> MutexGuard<'_, Book> {
        // Every change is a single insert, so a lock poisoned by a panicking request still
        // guards a consistent book.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The service's routes (the kit adds `/health` and the layers).
pub fn router(kit: &Kit) -> anyhow::Result<Router> {
    let state = Arc::new(AppState {
        book: Mutex::new(Book::seeded()),
        client: kit.client.clone(),
        calendar_url: std::env::var(ENV_CALENDAR_URL)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CALENDAR_URL.to_owned()),
    });
    let mut routes = Router::new()
        .route("/", get(index))
        .route("/slots", get(slots))
        .route("/reservations", post(reserve))
        .route("/reports/utilisation", get(utilisation))
        .route("/calendar/sync", post(sync_calendar));
    if kit.demo_endpoints {
        routes = routes
            .route("/app-error", get(utilisation))
            .route("/business-error", get(business_error))
            .route("/system-error", get(sync_calendar));
    }
    Ok(routes.with_state(state))
}

async fn index(State(state): Shared) -> Json<Value> {
    let (slots, reservations) = state.book().counts();
    Json(json!({ "service": "reservation", "slots": slots, "reservations": reservations }))
}

async fn slots(State(state): Shared) -> Json<Value> {
    let book = state.book();
    let slots: Vec<Value> = book
        .slots()
        .map(|(slot, holder)| json!({ "slot": slot, "free": holder.is_none() }))
        .collect();
    Json(json!({ "slots": slots }))
}

#[derive(Debug, Deserialize)]
struct NewReservation {
    slot_id: String,
    customer_id: String,
}

async fn reserve(
    State(state): Shared,
    Json(request): Json<NewReservation>,
) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let reservation = state
        .book()
        .reserve(&request.slot_id, &request.customer_id)
        .map_err(|e| match e {
            ReserveError::UnknownSlot(id) => ServiceError::not_found(format!("slot {id}")),
            ReserveError::SlotTaken {
                slot_id,
                reservation_id,
            } => ServiceError::conflict(
                "SlotAlreadyTaken",
                format!("slot {slot_id} is already held by reservation {reservation_id}"),
            ),
        })?;
    tracing::info!(
        reservation.id = reservation.id,
        reservation.slot = %reservation.slot_id,
        customer.id = %reservation.customer_id,
        "slot {} reserved", reservation.slot_id
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "reservation": reservation })),
    ))
}

/// Reserves the slot that is taken from the start.
async fn business_error(state: Shared) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let request = NewReservation {
        slot_id: TAKEN_SLOT.to_owned(),
        customer_id: "c-1001".to_owned(),
    };
    reserve(state, Json(request)).await
}

/// Reserved minutes per day; panics on the orphaned reservation (see `Book::utilisation`).
async fn utilisation(State(state): Shared) -> Json<Value> {
    let per_day = state.book().utilisation();
    Json(json!({ "reserved_minutes_per_day": per_day }))
}

/// Pushes the reservations to the calendar service.
async fn sync_calendar(State(state): Shared) -> Result<Json<Value>, ServiceError> {
    let reservations: Vec<Value> = {
        let book = state.book();
        book.slots()
            .filter_map(|(slot, holder)| {
                holder.map(|r| json!({ "slot": slot.id, "starts_at": slot.starts_at, "reservation": r.id }))
            })
            .collect()
    };
    let url = format!("{}/events/batch", state.calendar_url.trim_end_matches('/'));
    state
        .client
        .post(&url)
        .json(&json!({ "events": reservations }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ServiceError::dependency("calendar service", e))?;
    Ok(Json(json!({ "synced": reservations.len() })))
}
