//! The log schema as the services see it: the field names, the ECS version and the four
//! log categories, from the `didban-schema` crate that the shipper and the stack tests share.
//!
//! The names are re-exported here so the services write `schema::TRANSACTION_ID` as before;
//! they are declared only once, in that crate.

pub use ::schema::field::{
    ERROR_MESSAGE, ERROR_STACK_TRACE, ERROR_TYPE, EVENT_DURATION, EVENT_OUTCOME, HOST_NAME,
    HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, LOG_CATEGORY, LOG_DROPPED, LOG_FLAGS,
    LOG_LEVEL, MESSAGE, SERVER_ADDRESS, SERVER_PORT, SERVICE_ENVIRONMENT, SERVICE_NAME,
    SERVICE_VERSION, TIMESTAMP, TRANSACTION_ID, URL_PATH,
};
pub use ::schema::tag::FLAG_TRUNCATED;
pub use ::schema::{Category, UnknownCategory, ECS_VERSION};

/// `ecs.version`, always [`ECS_VERSION`].
pub const ECS_VERSION_FIELD: &str = ::schema::field::ECS_VERSION;

/// Every field name the services write, for checks that keep the rest of the stack in
/// agreement.
pub const ALL_FIELDS: &[&str] = &::schema::field::SERVICE_FIELDS;

/// Header carrying the transaction id between services and back to the caller.
pub const TRANSACTION_ID_HEADER: &str = "x-transaction-id";
