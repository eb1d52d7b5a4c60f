//! The Elasticsearch resources the shipper installs: they parse, they are laid out as the
//! shipper expects, and they map every field the services and the shipper write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::BTreeMap;

use schema::{agent, field, tag, ContainerField, Enriched};
use serde_json::{json, Value};
use stack_tests::files::{files_under, read_json, read_ndjson};
use stack_tests::mapping::{accepts, flatten};

const ILM_POLICY: &str = "elastic-templates/elasticsearch/ilm_policy/didban-logs.json";
const SETTINGS: &str =
    "elastic-templates/elasticsearch/component_template/didban-logs-settings.json";
const MAPPINGS: &str =
    "elastic-templates/elasticsearch/component_template/didban-logs-mappings.json";
const INDEX_TEMPLATE: &str = "elastic-templates/elasticsearch/index_template/didban-logs.json";

/// The services whose data streams the template must cover (binary and `service.name`).
const SERVICES: &[&str] = &["loan-resource", "payment", "reservation"];

/// Component templates Elasticsearch 9.2 ships (x-pack core `template-resources`).
const BUILT_IN_COMPONENT_TEMPLATES: &[&str] = &["logs@mappings", "logs@settings", "ecs@mappings"];

fn mapped_fields() -> BTreeMap<String, String> {
    let template = read_json(MAPPINGS).expect("mappings component template");
    flatten(&template["template"]["mappings"])
}

/// A representative value of every field in `schema::field::SERVICE_FIELDS`, as the
/// services write it. The test below fails when the schema gains a field that is missing
/// here, so the template cannot silently fall behind the services.
fn service_field_samples() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (field::TIMESTAMP, json!("2025-11-26T10:15:00.123456+03:30")),
        (field::LOG_LEVEL, json!("ERROR")),
        (field::MESSAGE, json!("request failed")),
        (field::ECS_VERSION, json!(field::ECS_VERSION)),
        (field::SERVICE_NAME, json!("payment")),
        (field::SERVICE_VERSION, json!("0.1.0")),
        (field::SERVICE_ENVIRONMENT, json!("production")),
        (field::HOST_NAME, json!("3f2a9c1b7d4e")),
        (field::TRANSACTION_ID, json!("01936a1e-6f3c-7c6b-9a51-3c1f0e5d2b77")),
        (field::ERROR_TYPE, json!("Panic")),
        (field::ERROR_MESSAGE, json!("index out of bounds: the len is 3 but the index is 7")),
        (field::ERROR_STACK_TRACE, json!("   0: payment::handlers::app_error\n             at services/payment/src/handlers.rs:42:5")),
        (field::HTTP_REQUEST_METHOD, json!("GET")),
        (field::URL_PATH, json!("/app-error")),
        (field::HTTP_RESPONSE_STATUS_CODE, json!(500)),
        (field::EVENT_DURATION, json!(1_234_567_u64)),
        (field::EVENT_OUTCOME, json!("failure")),
        (field::LOG_CATEGORY, json!("ApplicationError")),
        (field::LOG_DROPPED, json!(3)),
        (field::LOG_FLAGS, json!([tag::FLAG_TRUNCATED])),
        (field::SERVER_ADDRESS, json!("0.0.0.0")),
        (field::SERVER_PORT, json!(8002)),
    ])
}

/// A representative value of every field the shipper adds to every document. The match
/// is exhaustive, so a field declared in the schema cannot be missing here.
fn enriched_sample(field: Enriched) -> Value {
    match field {
        Enriched::Timestamp => json!("2025-11-26T06:45:00.200Z"),
        Enriched::HostName => json!("3f2a9c1b7d4e"),
        Enriched::AgentType => json!(agent::TYPE),
        Enriched::AgentName => json!(agent::NAME),
        Enriched::AgentVersion => json!("0.1.0"),
        Enriched::LogFilePath => json!("/var/log/didban/payment.log"),
        Enriched::LogOffset => json!(18_446_744_073_u64),
        Enriched::EventIngested => json!("2025-11-26T06:45:00.200Z"),
        Enriched::DataStreamType => json!("logs"),
        Enriched::DataStreamDataset => json!("payment"),
        Enriched::DataStreamNamespace => json!("default"),
        Enriched::EventDataset => json!("payment"),
    }
}

/// Fields the shipper writes for a line that is not a JSON object, with representative
/// values; `every_unparsed_field_has_a_sample_here` keeps it in step with the schema.
fn unparsed_field_samples() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (field::MESSAGE, json!("not JSON at all")),
        (field::TAGS, json!(tag::ALL)),
        (field::LOG_FLAGS, json!([tag::FLAG_TRUNCATED])),
        (
            field::PARSE_ERROR,
            json!("expected value at line 1 column 1"),
        ),
    ])
}

/// A representative value of every field the shipper adds to a container's line. The
/// match is exhaustive, so a field declared in the schema cannot be missing here.
fn container_sample(field: ContainerField) -> Value {
    match field {
        ContainerField::Stream => json!("stderr"),
        ContainerField::KubernetesNamespace => json!("shop"),
        ContainerField::KubernetesPodName => json!("payment-7d9f8c6b5-x2k4q"),
        ContainerField::KubernetesPodUid => json!("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
        ContainerField::KubernetesContainerName => json!("payment"),
        ContainerField::ContainerId => {
            json!("5d0b0d7c1b9e8a4c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a")
        }
    }
}

/// Every field the shipper may add, with a representative value.
fn shipper_field_samples() -> BTreeMap<&'static str, Value> {
    Enriched::ALL
        .into_iter()
        .map(|e| (e.name(), enriched_sample(e)))
        .chain(unparsed_field_samples())
        .chain(
            ContainerField::ALL
                .into_iter()
                .map(|c| (c.name(), container_sample(c))),
        )
        .collect()
}

#[test]
fn every_json_and_ndjson_file_under_elastic_templates_parses() {
    let json_files = files_under("elastic-templates", &[".json"]).expect("list json");
    assert!(json_files.len() >= 4, "{json_files:?}");
    for file in json_files {
        read_json(&file).unwrap_or_else(|e| panic!("{e}"));
    }
    let ndjson_files = files_under("elastic-templates", &[".ndjson"]).expect("list ndjson");
    assert!(!ndjson_files.is_empty());
    for file in ndjson_files {
        let objects = read_ndjson(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!objects.is_empty(), "{file} is empty");
    }
}

#[test]
fn elasticsearch_resources_are_laid_out_by_kind_with_the_resource_name_as_file_name() {
    let files = files_under("elastic-templates/elasticsearch", &[".json"]).expect("list");
    let expected = [ILM_POLICY, MAPPINGS, SETTINGS, INDEX_TEMPLATE];
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "the shipper installs exactly these, by directory"
    );
}

#[test]
fn every_field_the_services_write_has_a_sample_here() {
    let samples = service_field_samples();
    let mut from_schema: Vec<&str> = field::SERVICE_FIELDS.to_vec();
    from_schema.sort_unstable();
    let listed: Vec<&str> = samples.keys().copied().collect();
    assert_eq!(
        listed, from_schema,
        "schema::field::SERVICE_FIELDS changed: add the new field with a sample value"
    );
}

#[test]
fn every_unparsed_field_has_a_sample_here() {
    let mut from_schema: Vec<&str> = field::UNPARSED_FIELDS.to_vec();
    from_schema.sort_unstable();
    let listed: Vec<&str> = unparsed_field_samples().keys().copied().collect();
    assert_eq!(
        listed, from_schema,
        "schema::field::UNPARSED_FIELDS changed: add the new field with a sample value"
    );
}

#[test]
fn template_maps_every_service_field_with_a_type_that_accepts_its_values() {
    let mapped = mapped_fields();
    for (field, sample) in service_field_samples() {
        let kind = mapped
            .get(field)
            .unwrap_or_else(|| panic!("{field} is not mapped in {MAPPINGS}"));
        assert!(
            accepts(kind, &sample),
            "{field}: type {kind} does not accept {sample}"
        );
    }
}

#[test]
fn template_maps_every_field_the_shipper_adds() {
    let mapped = mapped_fields();
    for (field, sample) in shipper_field_samples() {
        let kind = mapped
            .get(field)
            .unwrap_or_else(|| panic!("{field} is not mapped in {MAPPINGS}"));
        assert!(
            accepts(kind, &sample),
            "{field}: type {kind} does not accept {sample}"
        );
    }
}

#[test]
fn a_line_written_by_the_service_logger_indexes_without_mapping_errors() {
    let identity = service_kit::line::ServiceIdentity {
        name: "payment".into(),
        version: "0.1.0".into(),
        environment: "production".into(),
        host: "3f2a9c1b7d4e".into(),
    };
    let formatter = service_kit::line::LineFormatter::new(&identity, chrono_tz::Asia::Tehran);
    let line = formatter.dropped_lines_report(2);
    let document: serde_json::Map<String, Value> =
        serde_json::from_slice(&line).expect("the logger writes JSON");
    let mapped = mapped_fields();
    assert!(document.len() >= 8, "{document:?}");
    for (field, value) in &document {
        assert!(
            field::SERVICE_FIELDS.contains(&field.as_str()),
            "{field} (from a real log line) is not declared in schema::field::SERVICE_FIELDS"
        );
        let kind = mapped
            .get(field)
            .unwrap_or_else(|| panic!("{field} (from a real log line) is not mapped"));
        assert!(
            accepts(kind, value),
            "{field}: type {kind} does not accept {value}"
        );
    }
}

#[test]
fn category_and_stack_trace_have_the_types_the_dashboards_need() {
    let mapped = mapped_fields();
    // Terms aggregations and exact filters on the category and the transaction id.
    assert_eq!(mapped[field::LOG_CATEGORY], "keyword");
    assert_eq!(mapped[field::TRANSACTION_ID], "keyword");
    // Percentiles of the duration, ranges on the status code.
    assert_eq!(mapped[field::EVENT_DURATION], "long");
    assert_eq!(mapped[field::HTTP_RESPONSE_STATUS_CODE], "long");
    // Infix search in stack traces (ECS maps it as wildcard).
    assert_eq!(mapped[field::ERROR_STACK_TRACE], "wildcard");
}

#[test]
fn index_template_outranks_the_built_in_logs_template_and_covers_every_service() {
    let template = read_json(INDEX_TEMPLATE).expect("index template");
    let priority = template["priority"].as_u64().expect("priority");
    // Elastic reserves priorities up to 500 for its own templates (built-in logs: 100,
    // integrations: 200) and advises more than 500 for one's own.
    assert!(
        priority > 500,
        "priority {priority} must exceed 500, the range Elastic keeps for its own templates"
    );
    assert!(
        template["data_stream"].is_object(),
        "must create data streams"
    );
    let patterns: Vec<&str> = template["index_patterns"]
        .as_array()
        .expect("index_patterns")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for service in SERVICES {
        let dataset = service.replace('-', "_");
        assert!(!dataset.contains('-') && dataset.len() <= 100);
        let pattern = format!("logs-{dataset}-*");
        assert!(
            patterns.contains(&pattern.as_str()),
            "{pattern} missing from {patterns:?}"
        );
    }
    assert!(template["_meta"]["description"].is_string());
}

#[test]
fn index_template_composes_built_in_blocks_first_and_ours_last() {
    let template = read_json(INDEX_TEMPLATE).expect("index template");
    let composed: Vec<&str> = template["composed_of"]
        .as_array()
        .expect("composed_of")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let position = |name: &str| {
        composed
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{name} missing from composed_of {composed:?}"))
    };
    // Later component templates override earlier ones: ours must come after the generic ones.
    let order = [
        "logs@mappings",
        "logs@settings",
        "ecs@mappings",
        "didban-logs-settings",
        "didban-logs-mappings",
    ];
    for pair in order.windows(2) {
        assert!(
            position(pair[0]) < position(pair[1]),
            "{} must precede {}",
            pair[0],
            pair[1]
        );
    }
    let optional: Vec<&str> = template["ignore_missing_component_templates"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in &optional {
        assert!(
            name.ends_with("@custom"),
            "only operator hooks may be optional, not {name}"
        );
    }
    for name in composed {
        let ours = read_json(&format!(
            "elastic-templates/elasticsearch/component_template/{name}.json"
        ))
        .is_ok();
        assert!(
            ours || BUILT_IN_COMPONENT_TEMPLATES.contains(&name) || optional.contains(&name),
            "{name} is neither ours, built in, nor optional"
        );
    }
}

#[test]
fn settings_use_the_retention_policy_we_ship() {
    let settings = read_json(SETTINGS).expect("settings");
    let policy_name = settings["template"]["settings"]["index"]["lifecycle"]["name"]
        .as_str()
        .expect("index.lifecycle.name");
    let policy = read_json(&format!(
        "elastic-templates/elasticsearch/ilm_policy/{policy_name}.json"
    ))
    .expect("the policy named in the settings exists");
    let phases = &policy["policy"]["phases"];
    assert!(
        phases["hot"]["actions"]["rollover"].is_object(),
        "hot phase rolls over"
    );
    let delete_after = phases["delete"]["min_age"]
        .as_str()
        .expect("delete phase min_age");
    assert!(
        delete_after.ends_with('d'),
        "retention in days: {delete_after}"
    );
    assert!(phases["delete"]["actions"]["delete"].is_object());
}

/// The documents the shipper really builds (through its own enrichment code) for a service
/// log line and for each kind of bad line: every field of each must be mapped with a type
/// that accepts its value, so the template cannot fall behind the shipper either. Together
/// the documents must carry every field and every tag the schema declares for the shipper,
/// and nothing else beyond the service's own fields, so the schema cannot fall behind it.
#[test]
fn every_field_of_the_documents_the_shipper_builds_is_mapped() {
    use std::collections::BTreeSet;

    use shipper::encode::{Encoded, Enricher, SourceFile};
    use shipper::input::container_log::{Container, Stream};
    use shipper::input::identity::TailMark;
    use shipper::input::line_reader::Line;

    let identity = service_kit::line::ServiceIdentity {
        name: "loan-resource".into(),
        version: "0.1.0".into(),
        environment: "production".into(),
        host: "3f2a9c1b7d4e".into(),
    };
    let formatter = service_kit::line::LineFormatter::new(&identity, chrono_tz::Asia::Tehran);
    let service_line = formatter.dropped_lines_report(2);
    let service_line = service_line
        .strip_suffix(b"\n")
        .unwrap_or(&service_line)
        .to_vec();
    let record = Container::Record {
        stream: Stream::Stderr,
        time: b"2026-11-26T06:45:00.123456789Z",
    };
    // (line, truncated, unterminated, what its container runtime said of it)
    let cases: Vec<(Vec<u8>, bool, bool, Option<Container<'_>>)> = vec![
        (service_line.clone(), false, false, None),
        (b"plain text, not JSON".to_vec(), false, false, None),
        (b"caf\xe9 \xff invalid UTF-8".to_vec(), false, false, None),
        (
            br#"{"service.name":"payment","message":"cut"#.to_vec(),
            true,
            false,
            None,
        ),
        (b"last words".to_vec(), false, true, None),
        (service_line, false, false, Some(record)),
        (
            b"panic: a container's stderr".to_vec(),
            false,
            false,
            Some(record),
        ),
        (
            b"not a record of its runtime".to_vec(),
            false,
            false,
            Some(Container::Malformed),
        ),
    ];
    let mapped = mapped_fields();
    let mut enricher = Enricher::new("shipper-host", agent::NAME, "default");
    let mut fields_seen: BTreeSet<String> = BTreeSet::new();
    let mut tags_seen: BTreeSet<String> = BTreeSet::new();
    let plain_file = SourceFile::new(
        0xfeed,
        std::path::Path::new("/var/log/didban/loan-resource.log"),
    );
    // A link of kubelet's, which names the container id too.
    let pod_file = SourceFile::new(
        0xbeef,
        std::path::Path::new(
            "/var/log/containers/loan-resource-6c9d_shop_loan-resource-5d0b0d7c1b9e8a4c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a.log",
        ),
    );
    // kubelet's own directory, which names the pod's uid.
    let pods_file = SourceFile::new(
        0xcafe,
        std::path::Path::new(
            "/var/log/pods/shop_loan-resource-6c9d_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/loan-resource/0.log",
        ),
    );
    for (bytes, truncated, unterminated, container) in cases {
        let line = Line {
            offset: 4096,
            end: 4096 + bytes.len() as u64 + 1,
            bytes: &bytes,
            truncated,
            unterminated,
            tail: TailMark::default(),
            container,
        };
        let file = match container {
            None => &plain_file,
            Some(Container::Malformed) => &pods_file,
            Some(Container::Record { .. }) => &pod_file,
        };
        let mut out = Vec::new();
        let Encoded::Document { source_start, .. } =
            enricher.encode(&line, file, "2026-11-26T10:00:00.000Z", &mut out)
        else {
            panic!("no document for {:?}", String::from_utf8_lossy(&bytes));
        };
        let document: serde_json::Map<String, Value> =
            serde_json::from_slice(&out[source_start..out.len() - 1])
                .expect("the shipper writes JSON");
        for e in Enriched::ALL {
            assert!(
                document.contains_key(e.name()),
                "{} missing from {document:?}",
                e.name()
            );
        }
        assert_eq!(document[Enriched::AgentType.name()], agent::TYPE);
        assert_eq!(document[Enriched::AgentName.name()], agent::NAME);
        if let Some(tags) = document.get(field::TAGS) {
            for t in tags.as_array().expect("tags is an array") {
                tags_seen.insert(t.as_str().expect("a tag is a string").to_owned());
            }
        }
        for (field, value) in &document {
            let declared = field::SERVICE_FIELDS.contains(&field.as_str())
                || field::UNPARSED_FIELDS.contains(&field.as_str())
                || Enriched::from_name(field).is_some()
                || ContainerField::from_name(field).is_some();
            assert!(
                declared,
                "{field} (from a document the shipper builds) is not in the schema"
            );
            fields_seen.insert(field.clone());
            let kind = mapped.get(field).unwrap_or_else(|| {
                panic!("{field} (from a document the shipper builds) is not mapped in {MAPPINGS}")
            });
            assert!(
                accepts(kind, value),
                "{field}: type {kind} does not accept {value}"
            );
        }
    }
    for name in Enriched::ALL
        .iter()
        .map(|e| e.name())
        .chain(field::UNPARSED_FIELDS)
        .chain(ContainerField::ALL.iter().map(|c| c.name()))
    {
        assert!(fields_seen.contains(name), "no document carries {name}");
    }
    let tags_declared: BTreeSet<String> = tag::ALL.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        tags_seen, tags_declared,
        "the shipper's tags and the schema's"
    );
}

#[test]
fn our_resource_names_use_no_at_sign_except_the_custom_hooks() {
    // `@` marks Elastic's own resources (`logs@mappings`); Elastic advises against it in
    // one's own names, except for the `@custom` hooks it invites operators to create.
    let files = files_under("elastic-templates/elasticsearch", &[".json"]).expect("templates");
    assert!(files.len() >= 4, "{files:?}");
    for file in &files {
        let name = file
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .expect("file name");
        assert!(
            !name.contains('@'),
            "{file}: resource name {name} contains @"
        );
    }
    let template = read_json(INDEX_TEMPLATE).expect("index template");
    for name in template["composed_of"]
        .as_array()
        .expect("composed_of")
        .iter()
        .filter_map(Value::as_str)
    {
        let ours = !BUILT_IN_COMPONENT_TEMPLATES.contains(&name) && name != "logs@custom";
        if ours && name.contains('@') {
            assert!(
                name.ends_with("@custom"),
                "{name}: only @custom hooks may carry @"
            );
        }
    }
}
