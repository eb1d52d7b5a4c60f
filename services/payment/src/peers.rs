//! Calls to the other didban services. Every call goes through the kit's client, which
//! adds the current transaction id.

use reqwest::StatusCode;
use serde_json::{json, Value};
use service_kit::{DependencyClient, ServiceError};

/// Where `loan-resource` listens.
pub const ENV_LOAN_RESOURCE_URL: &str = "LOAN_RESOURCE_URL";
/// Where `reservation` listens.
pub const ENV_RESERVATION_URL: &str = "RESERVATION_URL";
/// Where the card processor listens (not part of the stack; see `/system-error`).
pub const ENV_PAYMENT_GATEWAY_URL: &str = "PAYMENT_GATEWAY_URL";

/// Base URLs of the services `payment` calls.
#[derive(Debug, Clone)]
pub struct Peers {
    client: DependencyClient,
    loan_resource: String,
    reservation: String,
    gateway: String,
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

impl Peers {
    /// Reads the URLs from the environment; the defaults suit `cargo run` on one machine.
    pub fn from_env(client: DependencyClient) -> Self {
        Self {
            client,
            loan_resource: env_url(ENV_LOAN_RESOURCE_URL, "http://127.0.0.1:8001"),
            reservation: env_url(ENV_RESERVATION_URL, "http://127.0.0.1:8003"),
            gateway: env_url(ENV_PAYMENT_GATEWAY_URL, "http://127.0.0.1:9"),
        }
    }

    /// The loan being repaid, from `loan-resource`; an unknown loan is a business error.
    pub async fn loan(&self, loan_id: u64) -> Result<Value, ServiceError> {
        let url = format!("{}/loans/{loan_id}", self.loan_resource);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| ServiceError::dependency("loan-resource", e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(ServiceError::unprocessable(
                "UnknownLoan",
                format!("loan {loan_id} does not exist"),
            ));
        }
        response
            .error_for_status()
            .map_err(|e| ServiceError::dependency("loan-resource", e))?
            .json()
            .await
            .map_err(|e| ServiceError::dependency("loan-resource", e))
    }

    /// Reserves `slot_id` for `customer_id` in `reservation`; returns the reservation id.
    pub async fn reserve(&self, slot_id: &str, customer_id: &str) -> Result<u64, ServiceError> {
        let url = format!("{}/reservations", self.reservation);
        let response = self
            .client
            .post(&url)
            .json(&json!({ "slot_id": slot_id, "customer_id": customer_id }))
            .send()
            .await
            .map_err(|e| ServiceError::dependency("reservation", e))?;
        match response.status() {
            StatusCode::CONFLICT => Err(ServiceError::conflict(
                "SlotAlreadyTaken",
                format!("slot {slot_id} is already taken"),
            )),
            StatusCode::NOT_FOUND => Err(ServiceError::unprocessable(
                "UnknownSlot",
                format!("slot {slot_id} does not exist"),
            )),
            _ => {
                let body: Value = response
                    .error_for_status()
                    .map_err(|e| ServiceError::dependency("reservation", e))?
                    .json()
                    .await
                    .map_err(|e| ServiceError::dependency("reservation", e))?;
                body["reservation"]["id"].as_u64().ok_or_else(|| {
                    ServiceError::system(
                        "DependencyFailed",
                        axum::http::StatusCode::BAD_GATEWAY,
                        "reading the reservation answer",
                        format!("no reservation id in {body}"),
                    )
                })
            }
        }
    }

    /// Sends a settlement to the card processor.
    pub async fn settle(&self, amount: u64) -> Result<(), ServiceError> {
        let url = format!("{}/settlements", self.gateway);
        self.client
            .post(&url)
            .json(&json!({ "amount": amount }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ServiceError::dependency("card processor", e))?;
        Ok(())
    }
}
