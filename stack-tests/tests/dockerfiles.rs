//! The five Dockerfiles: one shared build (so Docker's layer cache compiles the workspace
//! once for all images), and a small non-root runtime with a health check.

use stack_tests::files::read_text;

/// (Dockerfile, binary, port its health check and EXPOSE use).
const DOCKERFILES: &[(&str, &str, u16)] = &[
    ("services/loan-resource/Dockerfile", "loan-resource", 8001),
    ("services/payment/Dockerfile", "payment", 8002),
    ("services/reservation/Dockerfile", "reservation", 8003),
    ("shipper/Dockerfile", "shipper", 9600),
    (
        "test-support/es-test-server/Dockerfile",
        "es-test-server",
        9200,
    ),
];

/// Instructions of a Dockerfile: comments and blank lines dropped, continuations joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

fn stages(text: &str) -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = Vec::new();
    for instruction in instructions(text) {
        if instruction.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push(instruction);
        }
    }
    stages
}

#[test]
fn every_image_shares_the_same_build_stages() {
    let mut reference: Option<Vec<Vec<String>>> = None;
    for (file, _, _) in DOCKERFILES {
        let text = read_text(file).unwrap_or_else(|e| panic!("{e}"));
        let mut all = stages(&text);
        assert!(all.len() >= 2, "{file}: multi-stage");
        all.pop(); // the runtime stage is each image's own
        match &reference {
            None => reference = Some(all),
            Some(expected) => assert_eq!(
                &all, expected,
                "{file}: build stages differ, the layer cache is no longer shared"
            ),
        }
    }
}

#[test]
fn build_compiles_release_binaries_with_cached_dependencies() {
    let text = read_text(DOCKERFILES[0].0).unwrap_or_else(|e| panic!("{e}"));
    let all = instructions(&text);
    let cook = all
        .iter()
        .position(|i| i.contains("cargo chef cook --release"))
        .expect("dependency layer");
    let copy_all = all.iter().position(|i| i == "COPY . .").expect("COPY . .");
    let build = all
        .iter()
        .position(|i| i.contains("cargo build --release --locked"))
        .expect("release build");
    assert!(
        all.iter().filter(|i| *i == "COPY . .").count() == 2,
        "planner and builder copy the workspace"
    );
    let last_copy = all
        .iter()
        .rposition(|i| i == "COPY . .")
        .unwrap_or(copy_all);
    assert!(
        cook < last_copy && last_copy < build,
        "dependencies must be cooked before the sources are copied"
    );
}

#[test]
fn runtime_is_debian_slim_non_root_with_a_health_check() {
    for (file, binary, port) in DOCKERFILES {
        let text = read_text(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("# syntax=")),
            "{file}: a syntax line pulls an image"
        );
        let all = stages(&text);
        let runtime = all.last().expect("runtime stage");
        assert!(
            runtime[0].starts_with("FROM debian:bookworm-slim"),
            "{file}: {}",
            runtime[0]
        );
        let user = runtime
            .iter()
            .rev()
            .find_map(|i| i.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{file}: no USER"));
        let uid: u32 = user
            .split(':')
            .next()
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("{file}: numeric USER, got {user}"));
        assert!(uid >= 1000, "{file}: runs as uid {uid}");
        let health = runtime
            .iter()
            .find(|i| i.starts_with("HEALTHCHECK "))
            .unwrap_or_else(|| panic!("{file}: no HEALTHCHECK"));
        assert!(
            health.contains("/dev/tcp/127.0.0.1/") && health.contains("/health")
                || *binary == "es-test-server",
            "{file}: {health}"
        );
        assert!(
            runtime.iter().any(|i| i == &format!("EXPOSE {port}")),
            "{file}: EXPOSE {port}"
        );
        assert!(
            runtime
                .iter()
                .any(|i| i == &format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]")),
            "{file}: entrypoint {binary}"
        );
        assert!(
            runtime.iter().any(|i| i == &format!("COPY --from=builder /out/{binary} /usr/local/bin/{binary}")),
            "{file}: copies its own binary"
        );
        assert!(
            !runtime.iter().any(|i| i.contains("apt-get")),
            "{file}: the runtime needs no extra package"
        );
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
    assert!(lines.contains(&"**/target"));
}
