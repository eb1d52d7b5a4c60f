//! Index and data stream name validation, shared by every path that creates
//! an index (MetadataCreateIndexService#validateIndexOrAliasName).

use crate::error::EsError;

/// Validates an index or data stream name (MetadataCreateIndexService#validateIndexOrAliasName).
pub fn validate_index_name(name: &str) -> Result<(), EsError> {
    let invalid = |why: &str| {
        Err(EsError::new(
            400,
            "invalid_index_name_exception",
            format!("Invalid index name [{name}], {why}"),
        )
        .with("index_uuid", "_na_")
        .with("index", name))
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name.to_lowercase() != name {
        return invalid("must be lowercase");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return invalid(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #, :]",
        );
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return invalid("index name is too long");
    }
    Ok(())
}
