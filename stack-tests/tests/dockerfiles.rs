//! The one `Dockerfile`: shared build stages (so the workspace is compiled once for every
//! image), and one small non-root runtime target per image, with a health check, built by
//! the compose files under the target's name.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

use serde_yaml::Value;
use stack_tests::compose::read_compose_file;
use stack_tests::dockerfile::{
    chain, chain_instructions, effective_env, effective_user, root_image, stages, Stage,
};
use stack_tests::files::{files_under, read_text};

const DOCKERFILE: &str = "Dockerfile";
const COMPOSE_FILES: &[&str] = &["docker-compose.yml", "docker-compose.smoke.yml"];
const RUNTIME_IMAGE: &str = "debian:bookworm-slim";
/// Stages that compile: no image may be built on them.
const BUILD_STAGES: &[&str] = &["chef", "planner", "builder"];

/// One image of the Dockerfile.
struct Image {
    /// Build target, binary and compose service that builds it.
    target: &'static str,
    /// Port its health check and EXPOSE use.
    port: u16,
    /// `USER` it runs as.
    user: &'static str,
    /// The accounts it creates (`useradd` names), in order.
    accounts: &'static [&'static str],
    /// Directories it creates: (path, owner, group, mode).
    dirs: &'static [(&'static str, &'static str, &'static str, &'static str)],
    /// Environment it must have.
    env: &'static [(&'static str, &'static str)],
}

const LOG_DIR: (&str, &str, &str, &str) = ("/var/log/didban", "didban", "didban", "2755");
const SERVICE_ENV: [(&str, &str); 2] = [
    ("LOG_DIR", "/var/log/didban"),
    ("LOG_TIMEZONE", "Asia/Tehran"),
];

const IMAGES: &[Image] = &[
    Image {
        target: "loan-resource",
        port: 8001,
        user: "10001:10001",
        accounts: &["didban"],
        dirs: &[LOG_DIR],
        env: &[("PORT", "8001"), SERVICE_ENV[0], SERVICE_ENV[1]],
    },
    Image {
        target: "payment",
        port: 8002,
        user: "10001:10001",
        accounts: &["didban"],
        dirs: &[LOG_DIR],
        env: &[("PORT", "8002"), SERVICE_ENV[0], SERVICE_ENV[1]],
    },
    Image {
        target: "reservation",
        port: 8003,
        user: "10001:10001",
        accounts: &["didban"],
        dirs: &[LOG_DIR],
        env: &[("PORT", "8003"), SERVICE_ENV[0], SERVICE_ENV[1]],
    },
    Image {
        target: "shipper",
        port: 9600,
        user: "10002:10002",
        accounts: &["didban", "shipper"],
        dirs: &[
            LOG_DIR,
            ("/var/lib/didban-shipper", "shipper", "shipper", "0750"),
            // Mount points of the services' log volumes (docker-compose.yml).
            ("/var/log/didban/loan-resource", "didban", "didban", "2755"),
            ("/var/log/didban/payment", "didban", "didban", "2755"),
            ("/var/log/didban/reservation", "didban", "didban", "2755"),
        ],
        env: &[
            (
                "SHIPPER_PATHS",
                "/var/log/didban/*.log,/var/log/didban/*.log.*",
            ),
            ("SHIPPER_DATA_DIR", "/var/lib/didban-shipper"),
            ("SHIPPER_METRICS_ADDR", "0.0.0.0:9600"),
        ],
    },
    Image {
        target: "es-test-server",
        port: 9200,
        user: "10003:10003",
        accounts: &["estest"],
        dirs: &[],
        env: &[],
    },
];

fn dockerfile_text() -> String {
    read_text(DOCKERFILE).unwrap_or_else(|e| panic!("{e}"))
}

fn dockerfile() -> Vec<Stage> {
    stages(&dockerfile_text())
}

fn image_chain<'a>(all: &'a [Stage], target: &str) -> Vec<&'a Stage> {
    chain(all, target).unwrap_or_else(|| panic!("{DOCKERFILE}: no stage {target}"))
}

/// (compose file, service, target) of every service with a build section.
fn compose_builds() -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::new();
    for file in COMPOSE_FILES {
        let compose = read_compose_file(file).unwrap_or_else(|e| panic!("{e}"));
        let services = compose["services"].as_mapping().expect("services");
        for (name, service) in services {
            let name = name.as_str().expect("service name").to_owned();
            let build = &service["build"];
            if !build.is_null() {
                out.push((*file, name, build.clone()));
            }
        }
    }
    out
}

#[test]
fn there_is_one_dockerfile_at_the_workspace_root() {
    assert!(!dockerfile().is_empty(), "{DOCKERFILE}: no stage");
    for dir in ["services", "shipper", "test-support", "stack-tests"] {
        let others: Vec<String> = files_under(dir, &["Dockerfile"])
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|f| !f.contains("/target/"))
            .collect();
        assert!(
            others.is_empty(),
            "{others:?}: a second Dockerfile would compile the workspace again"
        );
    }
}

#[test]
fn stage_names_are_unique_and_every_image_has_its_target() {
    let all = dockerfile();
    let mut names: Vec<&str> = all.iter().filter_map(|s| s.name.as_deref()).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a stage name is used twice: {names:?}");
    for image in IMAGES {
        assert!(
            names.contains(&image.target),
            "{DOCKERFILE}: no target {}",
            image.target
        );
    }
    for stage in BUILD_STAGES {
        assert!(names.contains(stage), "{DOCKERFILE}: no stage {stage}");
    }
}

#[test]
fn every_compose_build_names_a_target_of_the_root_dockerfile() {
    let all = dockerfile();
    let builds = compose_builds();
    assert!(builds.len() >= 5, "{builds:?}");
    for (file, service, build) in &builds {
        assert_eq!(
            build["context"].as_str(),
            Some("."),
            "{file}: {service}: the workspace is the context"
        );
        assert!(
            matches!(build["dockerfile"].as_str(), None | Some(DOCKERFILE)),
            "{file}: {service}: built from {:?}, not the root {DOCKERFILE}",
            build["dockerfile"]
        );
        let target = build["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: {service}: no build target"));
        assert!(
            IMAGES.iter().any(|i| i.target == target),
            "{file}: {service}: target {target} is not an image of {DOCKERFILE}"
        );
        assert!(
            chain(&all, target).is_some(),
            "{file}: {service}: no stage {target} in {DOCKERFILE}"
        );
    }
    for image in IMAGES {
        assert!(
            builds
                .iter()
                .any(|(_, _, b)| b["target"].as_str() == Some(image.target)),
            "no compose file builds {}",
            image.target
        );
    }
}

#[test]
fn build_compiles_release_binaries_with_cached_dependencies() {
    let all = dockerfile();
    let compiling: Vec<&Stage> = all.iter().filter(|s| s.base.starts_with("rust:")).collect();
    assert_eq!(
        compiling.len(),
        1,
        "one toolchain stage, the base of the others"
    );
    let builds: Vec<&str> = all
        .iter()
        .flat_map(|s| s.with_keyword("RUN "))
        .filter(|i| i.contains("cargo build"))
        .collect();
    assert_eq!(
        builds.len(),
        1,
        "the workspace is compiled once: {builds:?}"
    );
    assert!(
        builds[0].contains("cargo build --release --locked --workspace --bins"),
        "{}",
        builds[0]
    );
    for image in IMAGES {
        assert!(
            builds[0].contains(&format!("target/release/{}", image.target)),
            "the build keeps no {} binary",
            image.target
        );
    }

    let builder = image_chain(&all, "builder");
    let names: Vec<Option<&str>> = builder.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, [Some("builder"), Some("chef")]);
    let planner = image_chain(&all, "planner");
    assert_eq!(planner.get(1).and_then(|s| s.name.as_deref()), Some("chef"));
    assert!(
        planner[0].instructions.iter().any(|i| i == "COPY . .")
            && planner[0]
                .instructions
                .iter()
                .any(|i| i.contains("cargo chef prepare")),
        "the planner copies the workspace and writes the recipe"
    );

    let steps = &builder[0].instructions;
    let recipe = steps
        .iter()
        .position(|i| i.starts_with("COPY --from=planner "))
        .expect("recipe from the planner");
    let cook = steps
        .iter()
        .position(|i| i.contains("cargo chef cook --release"))
        .expect("dependency layer");
    let copy_all = steps
        .iter()
        .position(|i| i == "COPY . .")
        .expect("COPY . .");
    let build = steps
        .iter()
        .position(|i| i.contains("cargo build --release --locked"))
        .expect("release build");
    assert_eq!(
        all.iter()
            .flat_map(|s| &s.instructions)
            .filter(|i| *i == "COPY . .")
            .count(),
        2,
        "planner and builder copy the workspace"
    );
    assert!(
        recipe < cook && cook < copy_all && copy_all < build,
        "dependencies must be cooked before the sources are copied"
    );
}

#[test]
fn runtime_is_debian_slim_non_root_with_a_health_check() {
    let text = dockerfile_text();
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("# syntax=")),
        "a syntax line pulls an image"
    );
    let all = dockerfile();
    for image in IMAGES {
        let target = image.target;
        let runtime = image_chain(&all, target);
        assert_eq!(root_image(&runtime), Some(RUNTIME_IMAGE), "{target}");
        for stage in &runtime {
            let name = stage.name.as_deref().unwrap_or_default();
            assert!(
                !BUILD_STAGES.contains(&name) && !stage.base.starts_with("rust"),
                "{target}: built on {name} ({}), a toolchain image",
                stage.base
            );
        }
        let user = effective_user(&runtime).unwrap_or_else(|| panic!("{target}: no USER"));
        let uid: u32 = user
            .split(':')
            .next()
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("{target}: numeric USER, got {user}"));
        assert!(uid >= 1000, "{target}: runs as uid {uid}");
        assert_eq!(user, image.user, "{target}");

        let health = chain_instructions(&runtime, "HEALTHCHECK ");
        let health = health
            .last()
            .unwrap_or_else(|| panic!("{target}: no HEALTHCHECK"));
        assert!(
            health.contains("/dev/tcp/127.0.0.1/") && health.contains(&image.port.to_string()),
            "{target}: {health}"
        );
        assert!(
            health.contains("/health") || target == "es-test-server",
            "{target}: {health}"
        );
        assert_eq!(
            chain_instructions(&runtime, "EXPOSE "),
            [format!("EXPOSE {}", image.port)],
            "{target}"
        );
        assert_eq!(
            chain_instructions(&runtime, "ENTRYPOINT "),
            [format!("ENTRYPOINT [\"/usr/local/bin/{target}\"]")],
            "{target}"
        );
        assert_eq!(
            chain_instructions(&runtime, "COPY "),
            [format!(
                "COPY --from=builder /out/{target} /usr/local/bin/{target}"
            )],
            "{target}: copies its own binary and nothing else"
        );
        assert!(
            !chain_instructions(&runtime, "RUN ")
                .iter()
                .any(|i| i.contains("apt-get")),
            "{target}: the runtime needs no extra package"
        );
        let env = effective_env(&runtime);
        for (key, value) in image.env {
            assert_eq!(
                env.get(*key).map(String::as_str),
                Some(*value),
                "{target}: ENV {key}"
            );
        }
    }
}

#[test]
fn each_image_creates_exactly_its_own_accounts_and_directories() {
    let all = dockerfile();
    for image in IMAGES {
        let target = image.target;
        let runtime = image_chain(&all, target);
        let commands: Vec<String> = chain_instructions(&runtime, "RUN ")
            .iter()
            .flat_map(|run| run.trim_start_matches("RUN ").split("&&"))
            .map(|c| c.trim().to_owned())
            .collect();
        let accounts: Vec<&str> = commands
            .iter()
            .filter(|c| c.starts_with("useradd "))
            .filter_map(|c| c.split_whitespace().last())
            .collect();
        assert_eq!(accounts, image.accounts, "{target}: accounts");
        for command in commands.iter().filter(|c| c.starts_with("useradd ")) {
            assert!(
                command.contains("--system")
                    && command.contains("--no-create-home")
                    && command.contains("--shell /usr/sbin/nologin"),
                "{target}: {command}"
            );
        }
        if image.accounts.contains(&"shipper") {
            assert!(
                commands
                    .iter()
                    .any(|c| c.starts_with("useradd ") && c.contains("--groups didban")),
                "{target}: the shipper reads the logs through group didban"
            );
        }
        let dirs: Vec<&String> = commands
            .iter()
            .filter(|c| c.starts_with("install -d "))
            .collect();
        assert_eq!(dirs.len(), image.dirs.len(), "{target}: {dirs:?}");
        for (dir, owner, group, mode) in image.dirs {
            let expected = format!("install -d -o {owner} -g {group} -m {mode} {dir}");
            assert!(
                dirs.iter().any(|d| **d == expected),
                "{target}: {expected} missing from {dirs:?}"
            );
        }
    }
}

#[test]
fn dockerignore_keeps_the_context_to_what_cargo_needs() {
    let text = read_text(".dockerignore").unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        lines.first(),
        Some(&"*"),
        "allow-list: everything excluded first"
    );
    for needed in [
        "!Cargo.toml",
        "!Cargo.lock",
        "!alerting/",
        "!services/",
        "!shipper/",
        "!test-support/",
        "!elastic-templates/elasticsearch/",
    ] {
        assert!(lines.contains(&needed), "{needed} missing");
    }
    // Every workspace member must be in the context, or `cargo chef` cannot read the
    // workspace: a new crate that the list forgets breaks every image.
    let manifest = read_text("Cargo.toml").unwrap_or_else(|e| panic!("{e}"));
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("the workspace's members list");
    let mut checked = 0;
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        let Some(top) = member.split('/').next().filter(|t| !t.is_empty()) else {
            continue;
        };
        let allowed = format!("!{top}/");
        assert!(
            lines.contains(&allowed.as_str()),
            "workspace member {member}: {allowed} missing from .dockerignore"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} workspace members found");
    assert!(lines.contains(&"**/target"));
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with('!') && l.contains(DOCKERFILE)),
        "the Dockerfile in the context rebuilds every binary when one runtime stage changes"
    );
}
