//! Heartbeat's configuration: one 10-second HTTP check per service, on the address the
//! compose file gives that service, writing to the secured Elasticsearch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::BTreeSet;

use serde_yaml::Value;
use stack_tests::compose::container_port;
use stack_tests::compose::read_compose_file;
use stack_tests::files::read_yaml;

const HEARTBEAT: &str = "heartbeat/heartbeat.yml";
const COMPOSE: &str = "docker-compose.yml";
const SERVICES: &[&str] = &["loan-resource", "payment", "reservation"];

fn monitors() -> Vec<Value> {
    let config = read_yaml(HEARTBEAT).unwrap_or_else(|e| panic!("{e}"));
    config["heartbeat.monitors"]
        .as_sequence()
        .expect("heartbeat.monitors is a list")
        .clone()
}

fn seconds(duration: &str) -> Option<f64> {
    let (number, unit) = duration.split_at(duration.find(|c: char| c.is_ascii_alphabetic())?);
    let number: f64 = number.parse().ok()?;
    match unit {
        "ms" => Some(number / 1000.0),
        "s" => Some(number),
        "m" => Some(number * 60.0),
        _ => None,
    }
}

#[test]
fn there_is_one_http_monitor_per_service_every_ten_seconds() {
    let monitors = monitors();
    assert_eq!(monitors.len(), SERVICES.len());
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for m in &monitors {
        assert_eq!(m["type"].as_str(), Some("http"));
        assert_eq!(m["schedule"].as_str(), Some("@every 10s"));
        let id = m["id"].as_str().expect("explicit id");
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        let name = m["name"].as_str().expect("name");
        assert_eq!(
            m[schema::field::SERVICE_NAME].as_str(),
            Some(name),
            "service.name links the monitor to its service"
        );
        names.insert(name.to_owned());
        let status: Vec<u64> = m["check.response.status"]
            .as_sequence()
            .expect("check.response.status")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(status, vec![200], "{id}: only 200 is up");
        let timeout = seconds(m["timeout"].as_str().expect("timeout")).expect("timeout unit");
        assert!(
            timeout > 0.0 && timeout < 10.0,
            "{id}: timeout {timeout}s must be shorter than the schedule"
        );
    }
    let expected: BTreeSet<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    assert_eq!(names, expected);
}

#[test]
fn monitor_urls_are_the_health_endpoints_of_the_compose_services() {
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    for m in monitors() {
        let name = m["name"].as_str().expect("name");
        let urls = m["urls"].as_sequence().expect("urls");
        assert_eq!(urls.len(), 1, "{name}");
        let url = urls[0].as_str().expect("url");
        let service = &compose["services"][name];
        assert!(service.is_mapping(), "{name} is not a compose service");
        let port: u16 = service["environment"]["PORT"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: PORT in compose"));
        assert_eq!(url, format!("http://{name}:{port}/health"));
        let published: Vec<u16> = service["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .filter_map(Value::as_str)
            .filter_map(container_port)
            .collect();
        assert!(
            published.contains(&port),
            "{name} listens on {port} but publishes {published:?}"
        );
    }
}

#[test]
fn output_is_the_secured_elasticsearch_with_the_setup_ca_and_env_credentials() {
    let config = read_yaml(HEARTBEAT).unwrap_or_else(|e| panic!("{e}"));
    let output = &config["output.elasticsearch"];
    for key in ["hosts", "username", "password"] {
        let value = output[key]
            .as_str()
            .unwrap_or_else(|| panic!("output.elasticsearch.{key}"));
        assert!(
            value.starts_with("${") && value.ends_with('}'),
            "{key} must come from the environment"
        );
    }
    let ca = output["ssl.certificate_authorities"][0]
        .as_str()
        .expect("CA");
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let heartbeat = &compose["services"]["heartbeat"];
    let hosts = heartbeat["environment"]["ELASTICSEARCH_HOSTS"]
        .as_str()
        .expect("hosts env");
    assert!(hosts.starts_with("https://elasticsearch:"), "{hosts}");
    let mounts_ca = heartbeat["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .any(|v| {
            let mut parts = v.split(':');
            parts.next() == Some("ca-cert")
                && parts.next().is_some_and(|target| ca.starts_with(target))
        });
    assert!(
        mounts_ca,
        "{ca} is not inside the ca-cert volume mounted in heartbeat"
    );
}

#[test]
fn heartbeat_data_has_a_retention_and_replicas_a_single_node_can_place() {
    let config = read_yaml(HEARTBEAT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config["setup.ilm.enabled"].as_bool(), Some(true));
    let policy_name = config["setup.ilm.policy_name"]
        .as_str()
        .expect("policy name");
    assert_ne!(
        policy_name, "heartbeat",
        "the Beats default keeps data forever"
    );
    let policy_path = config["setup.ilm.policy_file"]
        .as_str()
        .expect("policy file");
    // The file is mounted from the repository into both Heartbeat containers.
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let mut source = None;
    for service in ["heartbeat-setup", "heartbeat"] {
        let found = compose["services"][service]["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .filter_map(Value::as_str)
            .find_map(|v| {
                let mut parts = v.split(':');
                let (from, to) = (parts.next()?, parts.next()?);
                (to == policy_path).then(|| from.trim_start_matches("./").to_owned())
            })
            .unwrap_or_else(|| panic!("{service} does not mount {policy_path}"));
        source = Some(found);
    }
    let policy = stack_tests::files::read_json(&source.expect("mounted")).expect("policy");
    let delete = &policy["policy"]["phases"]["delete"];
    assert!(
        delete["actions"]["delete"].is_object(),
        "no delete phase: {policy}"
    );
    assert!(delete["min_age"].is_string());
    // Installed once, by the superuser; Heartbeat itself never overwrites.
    assert_eq!(config["setup.ilm.overwrite"].as_bool(), Some(false));
    assert_eq!(config["setup.template.overwrite"].as_bool(), Some(false));
    let settings = &config["setup.template.settings"];
    let replicas_ok = settings["index.auto_expand_replicas"].as_str() == Some("0-1")
        || settings["index.number_of_replicas"].as_u64() == Some(0);
    assert!(
        replicas_ok,
        "one replica cannot be placed on one node: {settings:?}"
    );
}

#[test]
fn heartbeat_setup_installs_index_management_as_the_superuser() {
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let setup = &compose["services"]["heartbeat-setup"];
    let command: Vec<&str> = setup["command"]
        .as_sequence()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        command
            .windows(2)
            .any(|w| w == ["setup", "--index-management"]),
        "{command:?}"
    );
    assert_eq!(
        setup["environment"]["ELASTICSEARCH_USERNAME"].as_str(),
        Some("elastic")
    );
    let heartbeat = &compose["services"]["heartbeat"];
    assert_eq!(
        heartbeat["depends_on"]["heartbeat-setup"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        heartbeat["environment"]["ELASTICSEARCH_USERNAME"].as_str(),
        Some("didban_heartbeat")
    );
}
