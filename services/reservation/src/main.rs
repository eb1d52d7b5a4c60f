//! `reservation`: appointment slots at the branch, and who has reserved them.
//!
//! Reserving a slot somebody already holds is refused (BusinessError, 409). `payment`
//! reserves the slot a customer picked when a payment asks for one. Confirmations go to a
//! calendar service (`CALENDAR_URL`); when it cannot be reached the request fails as a
//! SystemError.

mod book;
mod routes;

use service_kit::ServiceInfo;

const INFO: ServiceInfo = ServiceInfo {
    name: "reservation",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8003,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::run(INFO, routes::router).await
}
