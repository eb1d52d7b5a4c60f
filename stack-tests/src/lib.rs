//! Static checks of the didban stack as it is deployed: the Elasticsearch templates, the
//! Kibana saved objects, Heartbeat's configuration, the compose file and the Dockerfile.
//!
//! The log schema is defined once, in the `didban-schema` crate (`schema`); the index template,
//! the dashboards' queries, Heartbeat's monitors and the compose file all depend on it or on
//! each other by name, and nothing but a test notices when one of them drifts. This crate
//! holds the small readers those tests share (flattening a mapping, listing the fields a
//! saved object queries, resolving compose interpolation); the checks themselves live in
//! `tests/`, one file per artefact.
//!
//! ```no_run
//! let template = stack_tests::files::read_json("elastic-templates/elasticsearch/component_template/didban-logs-mappings.json")?;
//! let fields = stack_tests::mapping::flatten(&template["template"]["mappings"]);
//! assert_eq!(fields.get("log.category").map(String::as_str), Some("keyword"));
//! # Ok::<(), stack_tests::files::FileError>(())
//! ```

pub mod compose;
pub mod dockerfile;
pub mod files;
pub mod heartbeat_fields;
pub mod mapping;
pub mod saved_objects;
