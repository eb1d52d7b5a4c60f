//! HTTP routes of `payment`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use service_kit::{Kit, ServiceError};

use crate::accounts::{self, Accounts, CardNumber, Payment, PaymentError, SMALL_ACCOUNT};
use crate::peers::Peers;

struct AppState {
    accounts: Mutex<Accounts>,
    peers: Peers,
}

type Shared = State<Arc<AppState>>;

impl AppState {
    fn accounts(&self) -> MutexGuard<'_, Accounts> {
        // Balances change in one statement after all checks, so a lock poisoned by a
        // panicking request still guards consistent accounts.
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The service's routes (the kit adds `/health` and the layers).
pub fn router(kit: &Kit) -> anyhow::Result<Router> {
    let state = Arc::new(AppState {
        accounts: Mutex::new(Accounts::seeded()),
        peers: Peers::from_env(kit.client.clone()),
    });
    let mut routes = Router::new()
        .route("/", get(index))
        .route("/accounts/{id}", get(account))
        .route("/fees", get(fee_quote))
        .route("/payments", post(pay))
        .route("/settlements", post(settle_pending));
    if kit.demo_endpoints {
        routes = routes
            .route("/app-error", get(app_error))
            .route("/business-error", get(business_error))
            .route("/system-error", get(settle_pending));
    }
    Ok(routes.with_state(state))
}

async fn index(State(state): Shared) -> Json<Value> {
    let (accounts, payments) = state.accounts().counts();
    Json(json!({ "service": "payment", "accounts": accounts, "payments": payments }))
}

async fn account(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let accounts = state.accounts();
    let account = accounts
        .account(&id)
        .ok_or_else(|| ServiceError::not_found(format!("account {id}")))?;
    Ok(Json(json!({ "account": account })))
}

#[derive(Debug, Deserialize)]
struct FeeQuery {
    amount: u64,
}

async fn fee_quote(Query(query): Query<FeeQuery>) -> Json<Value> {
    Json(json!({ "amount": query.amount, "fee": accounts::fee_for(query.amount) }))
}

/// A payment request. Its `Debug` (the debug line in [`pay`]) shows the card number's last
/// four digits only ([`CardNumber`]); the logger would mask it too.
#[derive(Debug, Deserialize)]
struct PaymentRequest {
    account_id: String,
    amount: u64,
    card_number: CardNumber,
    loan_id: Option<u64>,
    slot_id: Option<String>,
}

async fn pay(
    State(state): Shared,
    Json(request): Json<PaymentRequest>,
) -> Result<(StatusCode, Json<Value>), ServiceError> {
    tracing::debug!(?request, "payment requested");
    if request.amount == 0 {
        return Err(ServiceError::bad_request("amount must be positive"));
    }
    if !request.card_number.is_valid() {
        return Err(ServiceError::bad_request("card number is not valid"));
    }
    let fee = accounts::fee_for(request.amount);
    let customer_id = state
        .accounts()
        .check(&request.account_id, request.amount, fee)
        .map_err(payment_error)?
        .customer_id
        .clone();
    if let Some(loan_id) = request.loan_id {
        state.peers.loan(loan_id).await?;
    }
    let reservation_id = match &request.slot_id {
        Some(slot) => Some(state.peers.reserve(slot, &customer_id).await?),
        None => None,
    };
    let payment = state
        .accounts()
        .take(Payment {
            id: 0,
            account_id: request.account_id,
            amount: request.amount,
            fee,
            card: request.card_number.masked(),
            loan_id: request.loan_id,
            reservation_id,
        })
        .map_err(payment_error)?;
    tracing::info!(
        payment.id = payment.id,
        payment.amount = payment.amount,
        payment.card = %payment.card,
        "payment {} accepted", payment.id
    );
    Ok((StatusCode::CREATED, Json(json!({ "payment": payment }))))
}

fn payment_error(error: PaymentError) -> ServiceError {
    match error {
        PaymentError::UnknownAccount(id) => ServiceError::not_found(format!("account {id}")),
        PaymentError::InsufficientBalance { needed, balance } => ServiceError::unprocessable(
            "InsufficientBalance",
            format!("payment needs {needed} but the balance is {balance}"),
        ),
    }
}

/// A payment far above the small demo account's balance.
async fn business_error(state: Shared) -> Result<(StatusCode, Json<Value>), ServiceError> {
    let request = PaymentRequest {
        account_id: SMALL_ACCOUNT.to_owned(),
        amount: 900_000_000,
        card_number: CardNumber::from("4111 1111 1111 1111"),
        loan_id: None,
        slot_id: None,
    };
    pay(state, Json(request)).await
}

/// The fee of the largest pending settlement: beyond the fee table (see `fee_for`).
async fn app_error(State(state): Shared) -> Json<Value> {
    let largest = state
        .accounts()
        .pending_settlements
        .iter()
        .copied()
        .max()
        .unwrap_or_default();
    fee_quote(Query(FeeQuery { amount: largest })).await
}

/// Sends the pending settlements to the card processor.
async fn settle_pending(State(state): Shared) -> Result<Json<Value>, ServiceError> {
    let pending = state.accounts().pending_settlements.clone();
    for amount in &pending {
        state.peers.settle(*amount).await?;
    }
    state.accounts().pending_settlements.clear();
    Ok(Json(json!({ "settled": pending.len() })))
}
