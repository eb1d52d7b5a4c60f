//! `loan-resource`: customers, their credit limits and their loans.
//!
//! Opening a loan above a customer's available credit is refused (BusinessError, 422).
//! Other services ask it whether a loan exists (`payment` does before taking a repayment).
//! Its one external dependency is a credit bureau (`CREDIT_BUREAU_URL`) asked for credit
//! scores; when the bureau cannot be reached the request fails as a SystemError.

mod ledger;
mod routes;

use service_kit::ServiceInfo;

const INFO: ServiceInfo = ServiceInfo {
    name: "loan-resource",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8001,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::run(INFO, routes::router).await
}
