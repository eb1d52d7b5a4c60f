//! Who may do what on the Elastic side: the roles the setup step creates against the calls
//! each client makes, the superuser doing all index management, secrets and keys kept to
//! the containers that need them and off every command line, and Kibana's variables as
//! its image reads them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use serde_yaml::Value as Yaml;
use stack_tests::compose::read_compose_file;
use stack_tests::files::{files_under, read_text, read_yaml};

const COMPOSE: &str = "docker-compose.yml";
const SETUP: &str = "setup/elasticsearch.sh";
const SECRETS: &str = "setup/secrets.sh";

/// The roles `setup/elasticsearch.sh` PUTs: name -> role body.
fn roles() -> BTreeMap<String, Value> {
    let script = read_text(SETUP).unwrap_or_else(|e| panic!("{e}"));
    let re = regex::Regex::new(r"(?s)es PUT /_security/role/([a-z_]+) - <<'JSON'\n(.*?)\nJSON")
        .expect("regex");
    re.captures_iter(&script)
        .map(|c| {
            let body: Value = serde_json::from_str(&c[2])
                .unwrap_or_else(|e| panic!("role {} is not JSON: {e}", &c[1]));
            (c[1].to_owned(), body)
        })
        .collect()
}

/// `*` wildcards only, as in role index names.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| glob(tail, &name[head.len() + i..]))
        }
    }
}

fn cluster(role: &Value) -> BTreeSet<String> {
    role["cluster"]
        .as_array()
        .expect("cluster")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn index_privileges(role: &Value, index: &str) -> BTreeSet<String> {
    role["indices"]
        .as_array()
        .expect("indices")
        .iter()
        .filter(|entry| {
            entry["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|p| glob(p, index))
        })
        .flat_map(|entry| entry["privileges"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A call a client makes and the privilege Elasticsearch checks for it (x-pack core
/// `ClusterPrivilegeResolver` and `IndexPrivilege`; `monitor` covers reading templates).
enum Needs {
    Cluster(&'static str),
    Index(&'static str, &'static str),
}

const SHIPPER_CALLS: &[(&str, Needs)] = &[
    (
        "GET _component_template, _index_template (templates in place, built-ins there)",
        Needs::Cluster("monitor"),
    ),
    (
        "GET _ilm/policy/didban-logs (policy in place)",
        Needs::Cluster("read_ilm"),
    ),
    (
        "_bulk create into its data streams",
        Needs::Index("logs-payment-default", "create_doc"),
    ),
    (
        "the first create makes the data stream",
        Needs::Index("logs-loan_resource-default", "auto_configure"),
    ),
    (
        "GET _data_stream of its streams",
        Needs::Index("logs-reservation-default", "view_index_metadata"),
    ),
    (
        "search of replayed ids",
        Needs::Index("logs-payment-default", "read"),
    ),
    (
        "search of the failure store",
        Needs::Index("logs-payment-default", "read_failure_store"),
    ),
    (
        "uptime rules: search heartbeat-*",
        Needs::Index("heartbeat-9.2.1", "read"),
    ),
];

const HEARTBEAT_CALLS: &[(&str, Needs)] = &[
    (
        "HEAD _index_template/heartbeat-9.2.1 (libbeat template loader)",
        Needs::Cluster("monitor"),
    ),
    (
        "GET _ilm/policy/didban-heartbeat (lifecycle check)",
        Needs::Cluster("read_ilm"),
    ),
    ("GET _ingest/pipeline", Needs::Cluster("read_pipeline")),
    (
        "GET _data_stream/heartbeat-9.2.1",
        Needs::Index("heartbeat-9.2.1", "view_index_metadata"),
    ),
    // libbeat/template/load.go putDataStream; auto_configure does not cover it.
    (
        "PUT _data_stream/heartbeat-9.2.1",
        Needs::Index("heartbeat-9.2.1", "create_index"),
    ),
    (
        "_bulk create",
        Needs::Index("heartbeat-9.2.1", "create_doc"),
    ),
    (
        "auto-created data stream on write",
        Needs::Index("heartbeat-9.2.1", "auto_configure"),
    ),
    // The monitorstate loader reads the last state of every monitor at start.
    (
        "search heartbeat-* for the last monitor states",
        Needs::Index("heartbeat-9.2.1", "read"),
    ),
];

fn check_calls(role_name: &str, calls: &[(&str, Needs)]) {
    let roles = roles();
    let role = roles
        .get(role_name)
        .unwrap_or_else(|| panic!("setup creates no role {role_name}: {:?}", roles.keys()));
    for (call, needs) in calls {
        match needs {
            Needs::Cluster(p) => assert!(
                cluster(role).contains(*p),
                "{role_name}: {call} needs the cluster privilege {p}"
            ),
            Needs::Index(index, p) => {
                let held = index_privileges(role, index);
                assert!(
                    held.contains(*p) || held.contains("all"),
                    "{role_name}: {call} needs {p} on {index}, has {held:?}"
                );
            }
        }
    }
}

#[test]
fn the_shippers_role_grants_every_call_the_shipper_makes() {
    check_calls("didban_shipper", SHIPPER_CALLS);
}

#[test]
fn heartbeats_role_grants_every_call_heartbeat_makes() {
    check_calls("didban_heartbeat", HEARTBEAT_CALLS);
}

#[test]
fn no_client_role_may_manage_the_cluster() {
    // manage_ilm would let a client rewrite any retention policy; manage_index_templates
    // any template. The setup step installs both with the superuser instead.
    let allowed = ["monitor", "read_ilm", "read_pipeline"];
    let roles = roles();
    assert_eq!(roles.len(), 2, "{:?}", roles.keys());
    for (name, role) in &roles {
        for p in cluster(role) {
            assert!(
                allowed.contains(&p.as_str()),
                "{name} holds the cluster privilege {p}"
            );
        }
        for entry in role["indices"].as_array().expect("indices") {
            for p in entry["privileges"].as_array().expect("privileges") {
                let p = p.as_str().unwrap_or_default();
                assert!(
                    !matches!(p, "all" | "manage" | "delete_index" | "manage_ilm"),
                    "{name} holds {p} on {}",
                    entry["names"]
                );
            }
        }
    }
}

#[test]
fn setup_installs_every_template_and_policy_the_shipper_embeds() {
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let setup = &compose["services"]["setup"];
    let mounts: Vec<&str> = setup["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        mounts.contains(&"./elastic-templates/elasticsearch:/didban/templates:ro"),
        "{mounts:?}"
    );
    let script = read_text(SETUP).unwrap_or_else(|e| panic!("{e}"));
    let files = files_under("elastic-templates/elasticsearch", &[".json"]).expect("files");
    let kinds: BTreeSet<&str> = files.iter().filter_map(|f| f.split('/').nth(2)).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["component_template", "ilm_policy", "index_template"])
    );
    let api = [
        ("ilm_policy", "/_ilm/policy/$name"),
        ("component_template", "/_component_template/$name"),
        ("index_template", "/_index_template/$name"),
    ];
    let mut last = 0;
    for (dir, path) in api {
        let lp = script
            .find(&format!("\"$TEMPLATES\"/{dir}/*.json"))
            .unwrap_or_else(|| panic!("setup does not install {dir}"));
        let put = script[lp..]
            .find(&format!("es PUT \"{path}\""))
            .unwrap_or_else(|| panic!("setup does not PUT {path}"));
        assert!(lp > last, "{dir} is installed out of order");
        last = lp + put;
    }
    // The index template is PUT only once the built-ins it composes exist.
    let wait = script
        .find("until es GET \"/_component_template/$builtin\"")
        .expect("wait");
    assert!(
        wait < script
            .find("\"$TEMPLATES\"/index_template/")
            .expect("index templates")
    );
}

/// Volume -> services that mount it.
fn mounts_by_volume() -> BTreeMap<String, BTreeSet<String>> {
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, service) in compose["services"].as_mapping().expect("services") {
        for v in service["volumes"].as_sequence().into_iter().flatten() {
            if let Some(source) = v.as_str().and_then(|v| v.split(':').next()) {
                out.entry(source.to_owned())
                    .or_default()
                    .insert(name.as_str().expect("name").to_owned());
            }
        }
    }
    out
}

#[test]
fn keys_and_secrets_are_mounted_only_where_they_are_needed() {
    let mounts = mounts_by_volume();
    let only = |volume: &str, services: &[&str]| {
        let expected: BTreeSet<String> = services.iter().map(|s| s.to_string()).collect();
        assert_eq!(mounts.get(volume), Some(&expected), "{volume}");
    };
    // The CA's private key lives in setup's own volume.
    only("setup-state", &["setup"]);
    only("es-certs", &["setup", "elasticsearch"]);
    only(
        "secrets-elastic",
        &[
            "setup",
            "elasticsearch",
            "kibana-provisioning",
            "heartbeat-setup",
        ],
    );
    only("secrets-kibana", &["setup", "kibana"]);
    only("secrets-shipper", &["setup", "shipper"]);
    only("secrets-heartbeat", &["setup", "heartbeat"]);
    let script = read_text(SETUP).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        script.contains("--ca-key \"$STATE/ca/ca.key\""),
        "the CA key is not under $STATE"
    );
    assert!(script.contains("STATE=/didban/state"));
    // Nothing but the CA certificate goes to the volume every client mounts.
    for line in script.lines().filter(|l| l.contains("$PUBLIC_CA/")) {
        assert!(
            !line.contains(".key") && !line.contains(".zip"),
            "setup puts more than the CA certificate into the shared volume: {line}"
        );
    }
    // The zip archives stay in a temporary directory of the setup container.
    for line in script.lines().filter(|l| l.contains(".zip")) {
        assert!(line.contains("$work/"), "{line}");
    }
}

#[test]
fn no_secret_is_put_on_a_command_line() {
    // `ps` shows every process's arguments: curl gets credentials from a config file (-K)
    // and bodies with passwords from stdin.
    let curl_user = regex::Regex::new(r"curl[^\n]*\s(-u|--user)\s").expect("regex");
    let inline_password =
        regex::Regex::new(r#"(-d|--data[a-z-]*)\s+['"][^'"]*password"#).expect("regex");
    for file in [COMPOSE, SETUP, SECRETS, "setup/with-secrets"] {
        let text = read_text(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !curl_user.is_match(&text),
            "{file}: curl -u puts the password in argv"
        );
        assert!(
            !inline_password.is_match(&text),
            "{file}: a password in a -d argument"
        );
    }
    let script = read_text(SETUP).unwrap_or_else(|e| panic!("{e}"));
    for line in script.lines().filter(|l| l.contains("\"password\"")) {
        // printf is a shell builtin: no process gets the password as an argument.
        let body = line.trim_start().trim_start_matches("until ");
        assert!(body.starts_with("printf '{\"password\""), "{line}");
    }
}

#[test]
fn setup_and_provisioning_print_what_elastic_answers_on_failure() {
    let script = read_text(SETUP).unwrap_or_else(|e| panic!("{e}"));
    assert!(script.contains("--fail-with-body"));
    assert!(
        script.contains("failed: $answer"),
        "setup discards the error text"
    );
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let provisioning = compose["services"]["kibana-provisioning"]["entrypoint"][2]
        .as_str()
        .expect("script");
    assert!(provisioning.contains("--fail-with-body"));
    assert!(
        provisioning.contains("failed: $$answer"),
        "provisioning discards the error text"
    );
}

/// Kibana settings the image's entrypoint maps from variables (elastic/kibana
/// `src/dev/build/tasks/os_packages/docker_generator/resources/base/bin/kibana-docker`,
/// `kibana_vars`): the variable is the setting upper-cased with `.` turned into `_`, and
/// becomes a `--setting=value` argument of the Kibana process. The ones this stack could use.
const KIBANA_SETTINGS: &[&str] = &[
    "elasticsearch.hosts",
    "elasticsearch.password",
    "elasticsearch.ssl.certificateAuthorities",
    "elasticsearch.ssl.verificationMode",
    "elasticsearch.username",
    "i18n.locale",
    "logging.root.level",
    "monitoring.ui.container.elasticsearch.enabled",
    "server.basePath",
    "server.host",
    "server.name",
    "server.publicBaseUrl",
    "server.shutdownTimeout",
    "telemetry.optIn",
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.reporting.encryptionKey",
    "xpack.security.encryptionKey",
];
/// Of those, the secrets: as variables they would be on Kibana's command line.
const KIBANA_SECRET_SETTINGS: &[&str] = &[
    "elasticsearch.password",
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.reporting.encryptionKey",
    "xpack.security.encryptionKey",
];

fn kibana_variable(setting: &str) -> String {
    setting.to_uppercase().replace('.', "_")
}

#[test]
fn kibanas_variables_are_named_as_its_image_maps_them_and_carry_no_secret() {
    let compose = read_compose_file(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
    let environment = compose["services"]["kibana"]["environment"]
        .as_mapping()
        .expect("environment");
    let mapped: BTreeMap<String, &str> = KIBANA_SETTINGS
        .iter()
        .map(|s| (kibana_variable(s), *s))
        .collect();
    let kibana_yml = read_yaml("kibana/kibana.yml").unwrap_or_else(|e| panic!("{e}"));
    let mut secrets_from_files = BTreeSet::new();
    for key in environment.keys().filter_map(Yaml::as_str) {
        if let Some(name) = key
            .strip_prefix("DIDBAN_")
            .and_then(|k| k.strip_suffix("_FILE"))
        {
            // Exported by with-secrets under a name that is no setting; kibana.yml uses it.
            assert!(!mapped.contains_key(&format!("DIDBAN_{name}")));
            secrets_from_files.insert(format!("DIDBAN_{name}"));
            continue;
        }
        let setting = mapped
            .get(key)
            .unwrap_or_else(|| panic!("kibana: {key} is no variable the image maps to a setting"));
        assert!(
            !KIBANA_SECRET_SETTINGS.contains(setting),
            "kibana: {key} would put a secret on Kibana's command line"
        );
    }
    for setting in [
        "elasticsearch.password",
        "xpack.encryptedSavedObjects.encryptionKey",
        "xpack.security.encryptionKey",
    ] {
        let value = kibana_yml[setting]
            .as_str()
            .unwrap_or_else(|| panic!("kibana.yml: {setting} missing"));
        let var = value
            .strip_prefix("${")
            .and_then(|v| v.strip_suffix('}'))
            .unwrap_or_else(|| panic!("kibana.yml: {setting} is not from the environment"));
        assert!(
            secrets_from_files.contains(var),
            "kibana.yml: {var} is not exported from a file"
        );
    }
    assert_eq!(
        environment.get("SERVER_NAME").and_then(Yaml::as_str),
        Some("kibana")
    );
}
