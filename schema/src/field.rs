//! Field names: every top-level key of a didban log document, each spelled once.
//!
//! [`SERVICE_FIELDS`] lists what the services write; the shipper adds the
//! [`Enriched`](crate::Enriched) fields to every document and [`UNPARSED_FIELDS`] to a line
//! that is not a JSON object. Some names (`@timestamp`, `host.name`, `message`) belong to
//! more than one list: the shipper fills them only when the line does not carry them.

/// Event time, RFC 3339 with the configured zone's offset (Asia/Tehran: `+03:30`).
pub const TIMESTAMP: &str = "@timestamp";
/// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
pub const LOG_LEVEL: &str = "log.level";
/// Human-readable text of the line.
pub const MESSAGE: &str = "message";
/// Always [`ECS_VERSION`](crate::ECS_VERSION).
pub const ECS_VERSION: &str = "ecs.version";
/// Name of the service that wrote the line (`payment`, ...).
pub const SERVICE_NAME: &str = "service.name";
/// Version of the service binary.
pub const SERVICE_VERSION: &str = "service.version";
/// Deployment environment (`production`, `staging`, `development`, ...).
pub const SERVICE_ENVIRONMENT: &str = "service.environment";
/// Host (or container) name.
pub const HOST_NAME: &str = "host.name";
/// One id per request, followed across services via the `X-Transaction-ID` header.
pub const TRANSACTION_ID: &str = "transaction.id";
/// Kind of error (a stable, machine-friendly name).
pub const ERROR_TYPE: &str = "error.type";
/// Error text including its cause chain.
pub const ERROR_MESSAGE: &str = "error.message";
/// Stack trace of where the error happened (ApplicationError and SystemError only).
pub const ERROR_STACK_TRACE: &str = "error.stack_trace";
/// HTTP method of the request.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// Path of the request, without the query string.
pub const URL_PATH: &str = "url.path";
/// Status code of the response.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Duration of the request in nanoseconds.
pub const EVENT_DURATION: &str = "event.duration";
/// `success` or `failure`.
pub const EVENT_OUTCOME: &str = "event.outcome";
/// One of the four [`Category`](crate::Category) names.
pub const LOG_CATEGORY: &str = "log.category";
/// Number of log lines dropped because the write buffer was full (on the report line only).
pub const LOG_DROPPED: &str = "log.dropped";
/// Address the server listens on (on the start-up line).
pub const SERVER_ADDRESS: &str = "server.address";
/// Port the server listens on (on the start-up line).
pub const SERVER_PORT: &str = "server.port";

/// Kind of program that shipped the document: always [`agent::TYPE`](crate::agent::TYPE).
pub const AGENT_TYPE: &str = "agent.type";
/// Name of the program that shipped the document: [`agent::NAME`](crate::agent::NAME).
pub const AGENT_NAME: &str = "agent.name";
/// Version of the shipper.
pub const AGENT_VERSION: &str = "agent.version";
/// Path of the file the line was read from.
pub const LOG_FILE_PATH: &str = "log.file.path";
/// Byte offset of the line in that file.
pub const LOG_OFFSET: &str = "log.offset";
/// When the shipper read the line.
pub const EVENT_INGESTED: &str = "event.ingested";
/// Always `logs`: the data stream type.
pub const DATA_STREAM_TYPE: &str = "data_stream.type";
/// Data stream dataset: the service name with `-` replaced by `_`.
pub const DATA_STREAM_DATASET: &str = "data_stream.dataset";
/// Data stream namespace (`default`, ...).
pub const DATA_STREAM_NAMESPACE: &str = "data_stream.namespace";
/// Same as [`DATA_STREAM_DATASET`] (ECS).
pub const EVENT_DATASET: &str = "event.dataset";

/// The stream a container wrote the line to, `stdout` or `stderr`, from its runtime's log
/// record. ECS has no field for it; `stream` is what Filebeat's container input and Elastic
/// Agent's Kubernetes container-logs integration write, so searches and dashboards made for
/// those work on didban's documents too.
pub const STREAM: &str = "stream";
/// Namespace of the pod that wrote the line (from kubelet's log directory layout).
pub const KUBERNETES_NAMESPACE: &str = "kubernetes.namespace";
/// Name of the pod that wrote the line.
pub const KUBERNETES_POD_NAME: &str = "kubernetes.pod.name";
/// UID of the pod that wrote the line.
pub const KUBERNETES_POD_UID: &str = "kubernetes.pod.uid";
/// Name of the container (in its pod's spec) that wrote the line.
pub const KUBERNETES_CONTAINER_NAME: &str = "kubernetes.container.name";
/// Runtime id of the container that wrote the line (ECS), when its file name says it.
pub const CONTAINER_ID: &str = "container.id";

/// Why a line was not shipped as written: some of the [`tag`](crate::tag) values.
pub const TAGS: &str = "tags";
/// ECS log flags; holds [`tag::FLAG_TRUNCATED`](crate::tag::FLAG_TRUNCATED) on a cut line:
/// a service's line over its logger's cap (still a whole JSON object, with its category and
/// transaction id), or a line the shipper cut and ships as text.
pub const LOG_FLAGS: &str = "log.flags";
/// Why a line that starts like JSON is not a JSON object (the parser's message).
pub const PARSE_ERROR: &str = "didban.parse_error";

/// Every field the services write, for checks that keep the rest of the stack in agreement.
pub const SERVICE_FIELDS: [&str; 22] = [
    TIMESTAMP,
    LOG_LEVEL,
    MESSAGE,
    ECS_VERSION,
    SERVICE_NAME,
    SERVICE_VERSION,
    SERVICE_ENVIRONMENT,
    HOST_NAME,
    TRANSACTION_ID,
    ERROR_TYPE,
    ERROR_MESSAGE,
    ERROR_STACK_TRACE,
    HTTP_REQUEST_METHOD,
    URL_PATH,
    HTTP_RESPONSE_STATUS_CODE,
    EVENT_DURATION,
    EVENT_OUTCOME,
    LOG_CATEGORY,
    LOG_DROPPED,
    LOG_FLAGS,
    SERVER_ADDRESS,
    SERVER_PORT,
];

/// Fields the shipper writes, besides the [`Enriched`](crate::Enriched) ones, for a line
/// that is not a JSON object: the line itself goes into `message`.
pub const UNPARSED_FIELDS: [&str; 4] = [MESSAGE, TAGS, LOG_FLAGS, PARSE_ERROR];

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_unique(names: &[&str]) {
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
    }

    #[test]
    fn field_names_are_unique() {
        assert_unique(&SERVICE_FIELDS);
        assert_unique(&UNPARSED_FIELDS);
    }

    #[test]
    fn the_shipper_never_adds_a_service_field_the_services_own() {
        // Only these are shared, and the shipper fills them only when a line lacks them
        // (`log.flags`: on a line it ships as text, which carries no fields of its own).
        let shared: Vec<&str> = crate::Enriched::ALL
            .iter()
            .map(|e| e.name())
            .chain(UNPARSED_FIELDS)
            .filter(|n| SERVICE_FIELDS.contains(n))
            .collect();
        assert_eq!(shared, [TIMESTAMP, HOST_NAME, MESSAGE, LOG_FLAGS]);
    }
}
