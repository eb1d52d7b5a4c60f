//! The didban log schema, declared once.
//!
//! Every name a didban log document carries lives here: the fields the services write
//! ([`field`]), the four log categories ([`Category`]), the fields the shipper adds to each
//! document together with what each one holds ([`Enriched`]), the tags and fields of a line
//! that was not a JSON object ([`tag`], [`field::TAGS`], ...), those it adds to a line of a
//! container log ([`ContainerField`]) and the shipper's own identity
//! ([`agent`]). The services' logger (through `service-kit`), the shipper's encoder and the
//! stack tests that hold the index template, the dashboards and Heartbeat to the schema all
//! use these declarations as code, so a field has one spelling and a rename is one edit
//! (plus the templates it changes, which the stack tests then point at).
//!
//! Names follow ECS 9.2 wherever ECS has a field; the category has no ECS equivalent (ECS
//! `event.category` is a closed list of values such as `web` or `database`), so it lives in
//! `log.category`.

pub mod agent;
mod category;
mod container;
mod enriched;
pub mod field;
pub mod tag;

pub use category::{Category, UnknownCategory};
pub use container::ContainerField;
pub use enriched::Enriched;

/// ECS version the field names follow; written as `ecs.version` on every service line.
pub const ECS_VERSION: &str = "9.2.0";
