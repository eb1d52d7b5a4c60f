//! The Kibana saved objects the stack imports at start: valid export NDJSON, references
//! that resolve inside the file, and queries only on fields that exist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::{BTreeMap, BTreeSet};

use schema::{field, Category};
use serde_json::Value;
use stack_tests::files::{read_json, read_ndjson};
use stack_tests::heartbeat_fields::heartbeat_field_type;
use stack_tests::mapping::flatten;
use stack_tests::saved_objects::SavedObject;

const NDJSON: &str = "elastic-templates/kibana/didban.ndjson";
const MAPPINGS: &str =
    "elastic-templates/elasticsearch/component_template/didban-logs-mappings.json";
const INDEX_TEMPLATE: &str = "elastic-templates/elasticsearch/index_template/didban-logs.json";

fn objects() -> Vec<SavedObject> {
    read_ndjson(NDJSON)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|v| SavedObject::from_value(v).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn by_id(objects: &[SavedObject]) -> BTreeMap<(String, String), &SavedObject> {
    objects
        .iter()
        .map(|o| ((o.kind.clone(), o.id.clone()), o))
        .collect()
}

fn data_view_title(objects: &[SavedObject], id: &str) -> String {
    objects
        .iter()
        .find(|o| o.kind == "index-pattern" && o.id == id)
        .and_then(|o| o.title().map(str::to_owned))
        .unwrap_or_else(|| panic!("no data view {id}"))
}

#[test]
fn ids_are_unique_and_every_object_carries_its_migration_version() {
    let objects = objects();
    assert_eq!(by_id(&objects).len(), objects.len(), "duplicate type/id");
    for o in &objects {
        // Without it, Kibana would run every migration since 7.x on an 8.x/9.x shape.
        assert!(
            o.raw["typeMigrationVersion"].is_string(),
            "{} {} has no typeMigrationVersion",
            o.kind,
            o.id
        );
        assert!(
            o.raw["attributes"].is_object(),
            "{} has no attributes",
            o.id
        );
    }
}

#[test]
fn every_reference_points_to_an_object_in_the_same_file() {
    let objects = objects();
    let known = by_id(&objects);
    for o in &objects {
        for r in o.references().unwrap_or_else(|e| panic!("{e}")) {
            assert!(
                known.contains_key(&(r.kind.clone(), r.id.clone())),
                "{} {} references missing {} {}",
                o.kind,
                o.id,
                r.kind,
                r.id
            );
        }
    }
}

#[test]
fn embedded_json_attributes_parse() {
    for o in objects() {
        for pointer in [
            "/attributes/panelsJSON",
            "/attributes/optionsJSON",
            "/attributes/kibanaSavedObjectMeta/searchSourceJSON",
            "/attributes/fieldFormatMap",
            "/attributes/fieldAttrs",
            "/attributes/runtimeFieldMap",
        ] {
            o.embedded_json(pointer).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn every_dashboard_panel_resolves_to_a_reference_of_its_type() {
    let objects = objects();
    let dashboards: Vec<&SavedObject> = objects.iter().filter(|o| o.kind == "dashboard").collect();
    assert!(!dashboards.is_empty());
    for dashboard in dashboards {
        let references = dashboard.references().unwrap_or_else(|e| panic!("{e}"));
        let panels = dashboard
            .embedded_json("/attributes/panelsJSON")
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("panelsJSON");
        let panels = panels.as_array().expect("panels array");
        assert!(!panels.is_empty(), "{} has no panels", dashboard.id);
        let mut indexes = BTreeSet::new();
        for panel in panels {
            let index = panel["panelIndex"].as_str().expect("panelIndex");
            assert!(
                indexes.insert(index.to_owned()),
                "duplicate panelIndex {index}"
            );
            assert_eq!(panel["gridData"]["i"].as_str(), Some(index));
            let ref_name = panel["panelRefName"].as_str().expect("panelRefName");
            let kind = panel["type"].as_str().expect("panel type");
            let name = format!("{index}:{ref_name}");
            let reference = references
                .iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("{}: no reference named {name}", dashboard.id));
            assert_eq!(reference.kind, kind, "{name}");
        }
    }
}

#[test]
fn every_lens_layer_has_its_data_view_reference() {
    for o in objects().iter().filter(|o| o.kind == "lens") {
        let references = o.references().unwrap_or_else(|e| panic!("{e}"));
        let layers = o.raw["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
            .as_object()
            .expect("formBased layers");
        for (layer_id, layer) in layers {
            let name = format!("indexpattern-datasource-layer-{layer_id}");
            assert!(
                references
                    .iter()
                    .any(|r| r.name == name && r.kind == "index-pattern"),
                "{}: layer {layer_id} has no data view",
                o.id
            );
            let columns = layer["columns"].as_object().expect("columns");
            let order: BTreeSet<&str> = layer["columnOrder"]
                .as_array()
                .expect("columnOrder")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let ids: BTreeSet<&str> = columns.keys().map(String::as_str).collect();
            assert_eq!(order, ids, "{}: columnOrder and columns disagree", o.id);
        }
    }
}

#[test]
fn the_service_logs_data_view_matches_the_index_template_patterns() {
    let objects = objects();
    let template = read_json(INDEX_TEMPLATE).expect("index template");
    let patterns: BTreeSet<String> = template["index_patterns"]
        .as_array()
        .expect("patterns")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let title = data_view_title(&objects, "didban-logs");
    let title_patterns: BTreeSet<String> = title.split(',').map(str::to_owned).collect();
    assert_eq!(title_patterns, patterns);
    assert_eq!(data_view_title(&objects, "didban-heartbeat"), "heartbeat-*");
}

#[test]
fn every_queried_field_exists_in_our_template_or_in_heartbeat() {
    let objects = objects();
    let ours = flatten(&read_json(MAPPINGS).expect("mappings")["template"]["mappings"]);
    let mut checked = 0;
    for o in &objects {
        let data_views = if o.kind == "index-pattern" {
            BTreeSet::from([o.id.clone()])
        } else {
            o.data_view_ids().unwrap_or_else(|e| panic!("{e}"))
        };
        for field in o.queried_fields().unwrap_or_else(|e| panic!("{e}")) {
            for dv in &data_views {
                let known = match data_view_title(&objects, dv).as_str() {
                    "heartbeat-*" => heartbeat_field_type(&field).is_some(),
                    _ => ours.contains_key(&field),
                };
                assert!(
                    known,
                    "{} {} queries {field}, unknown in data view {dv}",
                    o.kind, o.id
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} fields checked: is the extraction broken?"
    );
}

#[test]
fn category_values_in_queries_are_real_categories() {
    let name = regex::escape(field::LOG_CATEGORY);
    let re = regex::Regex::new(&format!(
        r"{name}\s*:\s*\(([^)]*)\)|{name}\s*:\s*([A-Za-z]+)"
    ))
    .expect("regex");
    let mut seen = 0;
    for o in objects() {
        let text = o.raw.to_string();
        for caps in re.captures_iter(&text) {
            let values = caps
                .get(1)
                .or_else(|| caps.get(2))
                .map(|m| m.as_str())
                .unwrap_or("");
            for value in values
                .split_whitespace()
                .filter(|v| !matches!(*v, "or" | "and" | "not"))
            {
                value
                    .parse::<Category>()
                    .unwrap_or_else(|e| panic!("{}: {e}", o.id));
                seen += 1;
            }
        }
    }
    assert!(seen >= 3, "the error panels filter on the error categories");
}

#[test]
fn the_services_and_uptime_dashboards_exist_and_read_the_right_data() {
    let objects = objects();
    let known = by_id(&objects);
    for (title, data_view, required_fields) in [
        (
            "Services",
            "didban-logs",
            vec![
                field::LOG_CATEGORY,
                field::SERVICE_NAME,
                field::TRANSACTION_ID,
                field::ERROR_STACK_TRACE,
                field::EVENT_DURATION,
            ],
        ),
        (
            "Uptime",
            "didban-heartbeat",
            vec![
                "monitor.status",
                "summary.up",
                "monitor.duration.us",
                "monitor.name",
            ],
        ),
    ] {
        let dashboard = objects
            .iter()
            .find(|o| o.kind == "dashboard" && o.title() == Some(title))
            .unwrap_or_else(|| panic!("no dashboard {title}"));
        let mut fields = BTreeSet::new();
        for r in dashboard.references().unwrap_or_else(|e| panic!("{e}")) {
            let panel = known[&(r.kind.clone(), r.id.clone())];
            let views = panel.data_view_ids().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                views,
                BTreeSet::from([data_view.to_owned()]),
                "{title}: panel {} reads {views:?}",
                panel.id
            );
            fields.extend(panel.queried_fields().unwrap_or_else(|e| panic!("{e}")));
        }
        for field in required_fields {
            assert!(fields.contains(field), "{title} never shows {field}");
        }
        // A live dashboard: refreshes on its own.
        assert_eq!(
            dashboard.raw["attributes"]["refreshInterval"]["pause"],
            Value::Bool(false)
        );
    }
}

/// The uptime alert rules query Heartbeat's data too: every field they use must be one
/// Heartbeat 9.2 writes.
#[test]
fn every_heartbeat_field_the_alert_rules_use_exists() {
    for field in alerting::HEARTBEAT_FIELDS_USED {
        assert!(
            stack_tests::heartbeat_fields::heartbeat_field_type(field).is_some(),
            "{field}: not a Heartbeat field we know of"
        );
    }
}
