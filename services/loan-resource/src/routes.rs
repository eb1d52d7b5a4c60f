//! HTTP routes of `loan-resource`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use service_kit::{DependencyClient, Kit, ServiceError};

use crate::ledger::{self, Ledger, LoanError, DEMO_CUSTOMER, IMPORTED_LOAN};

/// Base URL of the credit bureau. Not part of the stack: by default it points at a port
/// where nothing listens, so `/system-error` shows what an unreachable dependency looks like.
const ENV_CREDIT_BUREAU_URL: &str = "CREDIT_BUREAU_URL";
const DEFAULT_CREDIT_BUREAU_URL: &str = "http://127.0.0.1:9";

struct AppState {
    ledger: Mutex<Ledger>,
    client: DependencyClient,
    credit_bureau_url: String,
}

type Shared = State<Arc<AppState>>;

impl AppState {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panicking request never leaves the ledger half-updated (every change is a
        // single insert), so a poisoned lock is still safe to use.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The service's routes (the kit adds `/health` and the layers).
pub fn router(kit: &Kit) -> anyhow::Result<Router> {
    let state = Arc::new(AppState {
        ledger: Mutex::new(Ledger::seeded()),
        client: kit.client.clone(),
        credit_bureau_url: std::env::var(ENV_CREDIT_BUREAU_URL)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CREDIT_BUREAU_URL.to_owned()),
    });
    let mut routes = Router::new()
        .route("/", get(index))
        .route("/customers/{id}", get(customer))
        .route("/customers/{id}/credit-score", get(credit_score))
        .route("/loans", post(open_loan))
        .route("/loans/{id}", get(loan))
        .route("/loans/{id}/installment", get(installment));
    if kit.demo_endpoints {
        routes = routes
            .route("/app-error", get(app_error))
            .route("/business-error", get(business_error))
            .route("/system-error", get(system_error));
    }
    Ok(routes.with_state(state))
}

async fn index(State(state): Shared) -> Json<Value> {
    let (customers, loans) = state.ledger().counts();
    Json(json!({ "service": "loan-resource", "customers": customers, "loans": loans }))
}

async fn customer(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let ledger = state.ledger();
    let customer = ledger
        .customer(&id)
        .ok_or_else(|| ServiceError::not_found(format!("customer {id}")))?;
    Ok(Json(json!({
        "customer": customer,
        "outstanding": ledger.outstanding(&id),
        "available_credit": ledger.available_credit(customer),
    })))
}

#[derive(Debug, Deserialize)]
struct NewLoan {
    customer_id: String,
    amount: u64,
    term_months: u32,
}

async fn open_loan(
    State(state): Shared,
    Json(request): Json<NewLoan>,
) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let loan = state
        .ledger()
        .open_loan(&request.customer_id, request.amount, request.term_months)
        .map_err(|e| match e {
            LoanError::UnknownCustomer(id) => ServiceError::not_found(format!("customer {id}")),
            LoanError::InvalidTerms(why) => ServiceError::bad_request(why),
            LoanError::CreditLimitExceeded {
                requested,
                available,
            } => ServiceError::unprocessable(
                "CreditLimitExceeded",
                format!(
                    "loan of {requested} exceeds the customer's available credit of {available}"
                ),
            ),
        })?;
    tracing::info!(
        loan.id = loan.id,
        customer.id = %loan.customer_id,
        loan.amount = loan.amount,
        "loan {} opened", loan.id
    );
    Ok((StatusCode::CREATED, Json(json!({ "loan": loan }))))
}

async fn loan(State(state): Shared, Path(id): Path<u64>) -> Result<Json<Value>, ServiceError> {
    let ledger = state.ledger();
    let loan = ledger
        .loan(id)
        .ok_or_else(|| ServiceError::not_found(format!("loan {id}")))?;
    Ok(Json(json!({ "loan": loan })))
}

async fn installment(
    State(state): Shared,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ServiceError> {
    // Copy the loan out so the lock is not held while computing.
    let loan = state
        .ledger()
        .loan(id)
        .cloned()
        .ok_or_else(|| ServiceError::not_found(format!("loan {id}")))?;
    let monthly = ledger::installment(&loan);
    Ok(Json(
        json!({ "loan_id": id, "monthly_installment": monthly }),
    ))
}

/// The installment of a loan imported without a term: a division by zero in
/// `ledger::installment`, caught by the panic layer.
async fn app_error(state: Shared) -> Result<Json<Value>, ServiceError> {
    installment(state, Path(IMPORTED_LOAN)).await
}

/// A loan far above the demo customer's limit.
async fn business_error(state: Shared) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let request = NewLoan {
        customer_id: DEMO_CUSTOMER.to_owned(),
        amount: 500_000_000,
        term_months: 12,
    };
    open_loan(state, Json(request)).await
}

async fn credit_score(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    if state.ledger().customer(&id).is_none() {
        return Err(ServiceError::not_found(format!("customer {id}")));
    }
    let url = format!(
        "{}/scores/{id}",
        state.credit_bureau_url.trim_end_matches('/')
    );
    let dependency = "credit bureau";
    let score: Value = state
        .client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ServiceError::dependency(dependency, e))?
        .json()
        .await
        .map_err(|e| ServiceError::dependency(dependency, e))?;
    Ok(Json(json!({ "customer_id": id, "score": score })))
}

/// The demo customer's credit score, from a credit bureau that cannot be reached.
async fn system_error(state: Shared) -> Result<Json<Value>, ServiceError> {
    credit_score(state, Path(DEMO_CUSTOMER.to_owned())).await
}
