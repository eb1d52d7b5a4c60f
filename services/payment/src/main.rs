//! `payment`: account balances and card payments.
//!
//! A payment larger than the account's balance is refused (BusinessError, 422). A payment
//! may repay a loan, which `payment` first checks with `loan-resource`, and may reserve a
//! branch slot through `reservation`; both calls carry the request's transaction id, so one
//! id follows the payment through three services' logs. Card numbers are only ever stored,
//! answered and logged masked. Settlements go to a card processor (`PAYMENT_GATEWAY_URL`);
//! when it cannot be reached the request fails as a SystemError.

mod accounts;
mod peers;
mod routes;

use service_kit::ServiceInfo;

const INFO: ServiceInfo = ServiceInfo {
    name: "payment",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8002,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::run(INFO, routes::router).await
}
