//! Which data stream a document goes to: `logs-<dataset>-<namespace>`.
//!
//! The dataset comes from the line's `service.name`, or from the file name when the line has
//! none (a non-JSON line, a line of another program). Elasticsearch forbids `-` in the
//! dataset (it separates the parts of the name), upper case, and a few other characters, and
//! limits it to 100 bytes; [`dataset`] makes any name valid rather than letting a document be
//! rejected for its routing.

use std::path::Path;

const MAX_DATASET: usize = 100;

/// A valid dataset for a service name or file stem; `None` if nothing usable remains.
pub(crate) fn dataset(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len().min(MAX_DATASET));
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = match c {
            'a'..='z' | '0'..='9' | '_' | '.' => c,
            _ if c.is_alphanumeric() && !c.is_uppercase() => c,
            _ => '_',
        };
        if out.len() + c.len_utf8() > MAX_DATASET {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches(['_', '.']);
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_string())
    }
}

/// The dataset of a file with no service name in it: its name up to the first `.log`
/// (`payment.log.1` -> `payment`), or `generic`.
pub(crate) fn dataset_from_path(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match name.find(".log") {
        Some(i) if i > 0 => &name[..i],
        _ => name.split('.').next().unwrap_or(""),
    };
    dataset(stem).unwrap_or_else(|| "generic".to_string())
}

/// Is `namespace` valid for a data stream name?
pub(crate) fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > MAX_DATASET {
        return Err("must be 1 to 100 characters".into());
    }
    if let Some(bad) = namespace
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "may hold only lower-case letters, digits, '_' and '.', not {bad:?}"
        ));
    }
    if namespace.starts_with(['_', '.']) {
        return Err("must not start with '_' or '.'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_become_valid_datasets() {
        assert_eq!(dataset("loan-resource").as_deref(), Some("loan_resource"));
        assert_eq!(dataset("Payment").as_deref(), Some("payment"));
        assert_eq!(dataset("a b/c*d").as_deref(), Some("a_b_c_d"));
        assert_eq!(dataset("--x").as_deref(), Some("x"));
        assert_eq!(dataset("---"), None);
        assert_eq!(dataset(&"x".repeat(300)).map(|d| d.len()), Some(100));
    }

    #[test]
    fn files_name_their_dataset() {
        assert_eq!(dataset_from_path(Path::new("/l/payment.log")), "payment");
        assert_eq!(
            dataset_from_path(Path::new("/l/loan-resource.log.3")),
            "loan_resource"
        );
        assert_eq!(dataset_from_path(Path::new("/l/.log")), "generic");
        assert_eq!(dataset_from_path(Path::new("/l/app.txt")), "app");
    }

    #[test]
    fn namespaces_are_checked() {
        assert!(check_namespace("default").is_ok());
        assert!(check_namespace("prod.eu_1").is_ok());
        assert!(check_namespace("Prod").is_err());
        assert!(check_namespace("a-b").is_err());
        assert!(check_namespace("").is_err());
        assert!(check_namespace("_x").is_err());
    }
}
