//! Reading `docker-compose.yml` the way Docker Compose interpolates it.

use std::collections::BTreeMap;

use crate::files::{read_yaml, FileError};

/// `docker-compose.yml` with YAML merge keys (`<<: *anchor`) applied, as Compose reads it.
pub fn read_compose_file(relative: &str) -> Result<serde_yaml::Value, FileError> {
    let mut value = read_yaml(relative)?;
    value.apply_merge().map_err(|source| FileError::Yaml {
        path: crate::files::path(relative),
        source,
    })?;
    Ok(value)
}

/// Variables of an env file (`KEY=value` lines; `#` comments and blank lines ignored).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// `value` with every `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `${VAR:?message}`
/// replaced as Compose does, taking variables from `env`; `$$` stays a literal `$`.
/// `None` when a required variable (`:?`, or a bare `${VAR}`) is not in `env`.
pub fn interpolate(value: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let re =
        regex::Regex::new(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-|:?\?)([^}]*))?\}").ok()?;
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for caps in re.captures_iter(value) {
        let whole = caps.get(0)?;
        out.push_str(&value[last..whole.start()]);
        last = whole.end();
        if whole.as_str() == "$$" {
            out.push('$');
            continue;
        }
        let name = caps.get(1)?.as_str();
        let set = env.get(name).filter(|v| !v.is_empty());
        let replacement = match caps.get(2).map(|m| m.as_str()) {
            Some(":-") => set.cloned().unwrap_or_else(|| caps[3].to_owned()),
            Some("-") => env.get(name).cloned().unwrap_or_else(|| caps[3].to_owned()),
            _ => set.cloned()?,
        };
        out.push_str(&replacement);
    }
    out.push_str(&value[last..]);
    Some(out)
}

/// Whether `value` is nothing but one variable reference (`${VAR}`, `${VAR:?msg}`, ...):
/// the only acceptable form for a secret in the compose file.
pub fn is_single_variable(value: &str) -> bool {
    regex::Regex::new(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$")
        .map(|re| re.is_match(value))
        .unwrap_or(false)
}

/// The host part of a published port `host_ip:host_port:container_port` (after
/// interpolation); `None` when no host address is given (all interfaces).
pub fn published_host_ip(mapping: &str) -> Option<&str> {
    let parts: Vec<&str> = mapping.rsplitn(3, ':').collect();
    // rsplitn: [container, host_port, host_ip]
    parts.get(2).copied()
}

/// The container port of a published port mapping.
pub fn container_port(mapping: &str) -> Option<u16> {
    mapping
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn interpolate_uses_defaults_values_and_literal_dollars() {
        let e = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(
            interpolate("${A:-9}/${B:-9}/${EMPTY:-x}/${EMPTY-x}/$$A", &e).as_deref(),
            Some("1/9/x//$A")
        );
        assert_eq!(interpolate("${B:?set B}", &e), None);
        assert_eq!(interpolate("${A:?set A}", &e).as_deref(), Some("1"));
    }

    #[test]
    fn single_variable_detects_literal_secrets() {
        assert!(is_single_variable("${ELASTIC_PASSWORD:?set it}"));
        assert!(is_single_variable("${X}"));
        assert!(!is_single_variable("changeme"));
        assert!(!is_single_variable("pre${X}"));
    }

    #[test]
    fn published_ports_split_into_address_and_container_port() {
        assert_eq!(published_host_ip("127.0.0.1:9200:9200"), Some("127.0.0.1"));
        assert_eq!(published_host_ip("8001:8001"), None);
        assert_eq!(container_port("127.0.0.1:9600:9600"), Some(9600));
        assert_eq!(container_port("8002:8002/tcp"), Some(8002));
    }
}
