//! `docker-compose.yml` and `.env.example`: secure by default (Elasticsearch and Kibana on
//! 127.0.0.1 only, no secret in the file), and wired as the shipper and the services expect.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::BTreeMap;

use serde_yaml::Value;
use stack_tests::compose::{
    container_port, interpolate, is_single_variable, parse_env_file, published_host_ip,
    read_compose_file,
};
use stack_tests::dockerfile::stages;
use stack_tests::files::read_text;

const COMPOSE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";
/// Services built from this repository: (service, target of the root Dockerfile, container
/// port).
const BUILT: &[(&str, &str, u16)] = &[
    ("loan-resource", "loan-resource", 8001),
    ("payment", "payment", 8002),
    ("reservation", "reservation", 8003),
    ("shipper", "shipper", 9600),
];
/// The shipper's settings (its documented interface).
const SHIPPER_SETTINGS: &[&str] = &[
    "ELASTICSEARCH_URL",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_CA_CERT",
    "SHIPPER_PATHS",
    "SHIPPER_DATA_DIR",
    "SHIPPER_METRICS_ADDR",
];

fn compose() -> Value {
    read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"))
}

fn services(compose: &Value) -> Vec<(String, Value)> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn env_example() -> BTreeMap<String, String> {
    parse_env_file(&read_text(ENV_EXAMPLE).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn elasticsearch_and_kibana_are_published_on_loopback_only() {
    let compose = compose();
    // Whether .env is a copy of .env.example or missing the port variables altogether.
    for env in [env_example(), BTreeMap::new()] {
        for (service, port) in [("elasticsearch", 9200), ("kibana", 5601)] {
            let ports = strings(&compose["services"][service]["ports"]);
            assert!(!ports.is_empty(), "{service} publishes nothing");
            for mapping in ports {
                let resolved = interpolate(&mapping, &env).unwrap_or_else(|| panic!("{mapping}"));
                assert_eq!(container_port(&resolved), Some(port));
                assert_eq!(
                    published_host_ip(&resolved),
                    Some("127.0.0.1"),
                    "{service}: {resolved}"
                );
            }
        }
    }
}

#[test]
fn only_the_documented_ports_reach_the_host() {
    let compose = compose();
    let mut published = Vec::new();
    for (name, service) in services(&compose) {
        for mapping in strings(&service["ports"]) {
            let resolved = interpolate(&mapping, &BTreeMap::new()).expect("ports have defaults");
            published.push((name.clone(), container_port(&resolved).expect("port")));
        }
    }
    published.sort();
    let expected = vec![
        ("elasticsearch".to_owned(), 9200),
        ("kibana".to_owned(), 5601),
        ("loan-resource".to_owned(), 8001),
        ("payment".to_owned(), 8002),
        ("reservation".to_owned(), 8003),
        ("shipper".to_owned(), 9600),
    ];
    assert_eq!(published, expected);
}

#[test]
fn no_secret_is_written_in_the_compose_file() {
    // Passwords and keys, and the alert channels (their URLs carry tokens and passwords).
    let secret_name = regex::Regex::new(
        r"(?i)((password|secret|token|api_key|_key|encryptionkey)$|^alert_(telegram|slack|email|webhook)$)",
    )
    .expect("regex");
    let compose = compose();
    let mut checked = 0;
    for (name, service) in services(&compose) {
        let Some(environment) = service["environment"].as_mapping() else {
            continue;
        };
        for (key, value) in environment {
            let key = key.as_str().expect("env name");
            if secret_name.is_match(key) {
                let value = value.as_str().unwrap_or_default();
                assert!(
                    is_single_variable(value),
                    "{name}: {key} must come from .env, not {value:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 12,
        "only {checked} secrets found: did the names change?"
    );
}

#[test]
fn every_required_variable_is_in_env_example_with_a_placeholder() {
    let text = read_text(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let example = env_example();
    let required = regex::Regex::new(r"\$\{([A-Z_][A-Z0-9_]*):\?").expect("regex");
    let mut names: Vec<&str> = required
        .captures_iter(&text)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let value = example
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {ENV_EXAMPLE}"));
        // The setup step accepts letters and digits only, so a placeholder can never be
        // started with by mistake.
        assert!(
            value.contains("CHANGE_ME"),
            "{name} in {ENV_EXAMPLE} must be a placeholder, not {value:?}"
        );
    }
    let gitignore = read_text(".gitignore").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        gitignore.lines().any(|l| l.trim() == ".env"),
        ".env must never be committed"
    );
}

#[test]
fn built_services_have_their_own_target_and_a_restart_policy() {
    let compose = compose();
    let dockerfile = read_text("Dockerfile").unwrap_or_else(|e| panic!("{e}"));
    let stages = stages(&dockerfile);
    for (name, target, _) in BUILT {
        let service = &compose["services"][*name];
        assert_eq!(
            service["build"]["context"].as_str(),
            Some("."),
            "{name}: the workspace is the context"
        );
        assert!(
            service["build"]["dockerfile"].is_null(),
            "{name}: built from the root Dockerfile (the default), not {:?}",
            service["build"]["dockerfile"]
        );
        assert_eq!(service["build"]["target"].as_str(), Some(*target), "{name}");
        assert!(
            stages.iter().any(|s| s.name.as_deref() == Some(*target)),
            "Dockerfile: no stage {target}"
        );
        assert_eq!(
            service["restart"].as_str(),
            Some("unless-stopped"),
            "{name}"
        );
    }
    for (name, service) in services(&compose) {
        let restart = service["restart"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no restart policy"));
        let one_shot = matches!(name.as_str(), "setup" | "kibana-provisioning");
        assert_eq!(restart == "no", one_shot, "{name}: restart {restart}");
    }
}

#[test]
fn every_dependency_waits_for_a_condition() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let Some(deps) = service["depends_on"].as_mapping() else {
            continue;
        };
        for (dep, spec) in deps {
            let dep = dep.as_str().expect("name");
            assert!(
                compose["services"][dep].is_mapping(),
                "{name} depends on unknown {dep}"
            );
            let condition = spec["condition"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} -> {dep}: no condition"));
            assert!(
                matches!(
                    condition,
                    "service_healthy" | "service_completed_successfully"
                ),
                "{name} -> {dep}: {condition}"
            );
        }
    }
}

#[test]
fn services_write_the_log_volume_and_the_shipper_reads_it_read_only() {
    let compose = compose();
    let logs_mount = |name: &str| {
        strings(&compose["services"][name]["volumes"])
            .into_iter()
            .find(|v| v.starts_with("service-logs:"))
            .unwrap_or_else(|| panic!("{name} does not mount service-logs"))
    };
    for (name, _, _) in &BUILT[..3] {
        assert_eq!(logs_mount(name), "service-logs:/var/log/didban");
        assert_eq!(
            compose["services"][*name]["environment"]["LOG_DIR"].as_str(),
            Some("/var/log/didban")
        );
    }
    assert_eq!(logs_mount("shipper"), "service-logs:/var/log/didban:ro");
    let shipper = &compose["services"]["shipper"];
    let volumes = strings(&shipper["volumes"]);
    let data_dir = shipper["environment"]["SHIPPER_DATA_DIR"]
        .as_str()
        .expect("data dir");
    assert!(
        volumes
            .iter()
            .any(|v| v == &format!("shipper-data:{data_dir}")),
        "{volumes:?}"
    );
    let declared = compose["volumes"].as_mapping().expect("named volumes");
    for (name, service) in services(&compose) {
        for volume in strings(&service["volumes"]) {
            let source = volume.split(':').next().unwrap_or_default();
            if !source.starts_with('.') {
                assert!(
                    declared.contains_key(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }
}

#[test]
fn the_shipper_gets_every_setting_of_its_interface() {
    let compose = compose();
    let environment = &compose["services"]["shipper"]["environment"];
    for key in SHIPPER_SETTINGS {
        assert!(environment[*key].is_string(), "shipper: {key} not set");
    }
    assert!(environment["SHIPPER_PATHS"]
        .as_str()
        .unwrap_or_default()
        .starts_with("/var/log/didban/"));
    let url = environment["ELASTICSEARCH_URL"]
        .as_str()
        .unwrap_or_default();
    assert!(
        url.starts_with("https://elasticsearch:"),
        "TLS to the secured node: {url}"
    );
}

#[test]
fn payment_calls_the_other_services_by_their_compose_names() {
    let compose = compose();
    let environment = &compose["services"]["payment"]["environment"];
    for (var, target, port) in [
        ("LOAN_RESOURCE_URL", "loan-resource", 8001),
        ("RESERVATION_URL", "reservation", 8003),
    ] {
        assert_eq!(
            environment[var].as_str(),
            Some(format!("http://{target}:{port}").as_str())
        );
        assert!(compose["services"][target].is_mapping());
    }
}

#[test]
fn every_container_joins_the_one_stack_network() {
    let compose = compose();
    let networks = compose["networks"].as_mapping().expect("networks");
    assert_eq!(networks.len(), 1);
    for (name, service) in services(&compose) {
        assert_eq!(
            strings(&service["networks"]),
            vec!["didban".to_owned()],
            "{name}"
        );
    }
}
