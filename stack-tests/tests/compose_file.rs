//! `docker-compose.yml` and `.env.example`: secure by default (Elasticsearch and Kibana on
//! 127.0.0.1 only, no secret in the file or its model, hardened containers, one log volume
//! per service), and wired as the shipper and the services expect.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::BTreeMap;

use serde_yaml::Value;
use stack_tests::compose::{
    container_port, interpolate, parse_env_file, published_host_ip, read_compose_file,
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
    "ELASTICSEARCH_PASSWORD_FILE",
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

/// Names of the settings that hold secrets: passwords and keys, and the alert channels
/// (their URLs carry tokens and passwords).
fn secret_name() -> regex::Regex {
    regex::Regex::new(
        r"(?i)((password|secret|token|api_key|_key|encryptionkey)$|^alert_(telegram|slack|email|webhook)$)",
    )
    .expect("regex")
}

#[test]
fn secrets_reach_containers_only_as_files_in_secrets_volumes() {
    // A secret given as a value (even `${VAR}` from .env) is in `docker compose config`
    // and in `docker inspect`; as a `*_FILE` path it is neither.
    let secret = secret_name();
    let compose = compose();
    let mut files = 0;
    for (name, service) in services(&compose) {
        let Some(environment) = service["environment"].as_mapping() else {
            continue;
        };
        for (key, value) in environment {
            let key = key.as_str().expect("env name");
            let value = value.as_str().unwrap_or_default();
            assert!(
                !secret.is_match(key),
                "{name}: secret {key} given as a value ({value:?}); give {key}_FILE instead"
            );
            if let Some(base) = key.strip_suffix("_FILE") {
                if secret.is_match(base) {
                    assert!(
                        value.starts_with("/didban/secrets/"),
                        "{name}: {key} = {value:?} is not in a secrets volume"
                    );
                    files += 1;
                }
            }
        }
    }
    assert!(
        files >= 11,
        "only {files} secret files found: did the names change?"
    );
}

#[test]
fn no_secret_variable_of_env_is_interpolated_into_the_compose_model() {
    // setup/secrets.sh reads .env itself: compose must never interpolate a secret, or
    // `docker compose config` prints it.
    let text = read_text(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let reference = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)").expect("regex");
    let secret = secret_name();
    for caps in reference.captures_iter(&text) {
        let name = &caps[1];
        assert!(
            !secret.is_match(name),
            "docker-compose.yml interpolates the secret ${{{name}}}"
        );
    }
}

#[test]
fn a_start_needs_no_env_file() {
    // No required variable: `docker compose up` works on a fresh clone, and every value
    // resolves with an empty environment.
    let text = read_text(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !regex::Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?")
            .expect("regex")
            .is_match(&text),
        "docker-compose.yml still requires a variable"
    );
    let compose = compose();
    let empty = BTreeMap::new();
    for (name, service) in services(&compose) {
        let rendered = serde_yaml::to_string(&service).expect("yaml");
        for line in rendered.lines() {
            assert!(
                interpolate(line, &empty).is_some(),
                "{name}: {line} needs a variable"
            );
        }
    }
}

#[test]
fn env_example_lists_every_override_commented_out() {
    // Every secret setup/secrets.sh takes from .env is documented in .env.example, and
    // none is set there: a copied .env.example changes nothing but what one uncomments.
    let script = read_text("setup/secrets.sh").unwrap_or_else(|e| panic!("{e}"));
    let taken = regex::Regex::new(r"(?m)^(?:secret|optional) ([A-Z_]+) ").expect("regex");
    let names: Vec<&str> = taken
        .captures_iter(&script)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    let example = read_text(ENV_EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let set = env_example();
    for name in names {
        assert!(
            example.contains(&format!("# {name}=")),
            "{name} is not documented (commented out) in {ENV_EXAMPLE}"
        );
        assert!(!set.contains_key(name), "{ENV_EXAMPLE} sets {name}");
    }
    let gitignore = read_text(".gitignore").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        gitignore.lines().any(|l| l.trim() == ".env"),
        ".env must never be committed"
    );
}

#[test]
fn our_containers_drop_every_capability_and_have_a_read_only_root() {
    let compose = compose();
    for (name, _, _) in BUILT {
        let service = &compose["services"][*name];
        assert_eq!(
            strings(&service["cap_drop"]),
            vec!["ALL".to_owned()],
            "{name}"
        );
        assert!(
            strings(&service["security_opt"]).contains(&"no-new-privileges:true".to_owned()),
            "{name}"
        );
        assert_eq!(service["read_only"].as_bool(), Some(true), "{name}");
        assert!(
            strings(&service["tmpfs"])
                .iter()
                .any(|t| t.starts_with("/tmp")),
            "{name}: a writable /tmp"
        );
    }
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
        let one_shot = matches!(
            name.as_str(),
            "setup" | "kibana-provisioning" | "heartbeat-setup"
        );
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
fn each_service_writes_its_own_log_volume_which_the_shipper_reads_read_only() {
    let compose = compose();
    let shipper = &compose["services"]["shipper"];
    let shipper_volumes = strings(&shipper["volumes"]);
    let paths = shipper["environment"]["SHIPPER_PATHS"]
        .as_str()
        .expect("SHIPPER_PATHS");
    for (name, _, _) in &BUILT[..3] {
        let volume = format!("{name}-logs");
        assert_eq!(
            strings(&compose["services"][*name]["volumes"]),
            vec![format!("{volume}:/var/log/didban")],
            "{name} mounts its own log volume and nothing else"
        );
        assert_eq!(
            compose["services"][*name]["environment"]["LOG_DIR"].as_str(),
            Some("/var/log/didban")
        );
        let mount = format!("{volume}:/var/log/didban/{name}:ro");
        assert!(shipper_volumes.contains(&mount), "shipper: {mount} missing");
        assert!(
            paths.contains(&format!("/var/log/didban/{name}/*.log")),
            "SHIPPER_PATHS does not read {name}'s directory: {paths}"
        );
        for (other, service) in services(&compose) {
            if other != *name && other != "shipper" {
                assert!(
                    !strings(&service["volumes"])
                        .iter()
                        .any(|v| v.starts_with(&format!("{volume}:"))),
                    "{other} mounts {volume}"
                );
            }
        }
    }
    let data_dir = shipper["environment"]["SHIPPER_DATA_DIR"]
        .as_str()
        .expect("data dir");
    assert!(
        shipper_volumes
            .iter()
            .any(|v| v == &format!("shipper-data:{data_dir}")),
        "{shipper_volumes:?}"
    );
    let declared = compose["volumes"].as_mapping().expect("named volumes");
    for (name, service) in services(&compose) {
        for volume in strings(&service["volumes"]) {
            let source = volume.split(':').next().unwrap_or_default();
            if !source.starts_with('.') && !source.starts_with('$') {
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
