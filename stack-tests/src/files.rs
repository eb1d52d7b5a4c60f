//! Reading the repository's files by their path from the workspace root.

use std::path::{Path, PathBuf};

/// A file of the stack that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// Path of the file (with `:<line>` for NDJSON).
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The file is not valid YAML.
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        /// Path of the file.
        path: PathBuf,
        /// Why.
        source: serde_yaml::Error,
    },
}

/// The workspace root: this crate lives one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Absolute path of `relative` (a path from the workspace root).
pub fn path(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// Text of a file given by its path from the workspace root.
pub fn read_text(relative: &str) -> Result<String, FileError> {
    let path = path(relative);
    std::fs::read_to_string(&path).map_err(|source| FileError::Read { path, source })
}

/// A JSON file given by its path from the workspace root.
pub fn read_json(relative: &str) -> Result<serde_json::Value, FileError> {
    let text = read_text(relative)?;
    serde_json::from_str(&text).map_err(|source| FileError::Json {
        path: relative.to_owned(),
        source,
    })
}

/// An NDJSON file: one JSON value per non-empty line.
pub fn read_ndjson(relative: &str) -> Result<Vec<serde_json::Value>, FileError> {
    let text = read_text(relative)?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| FileError::Json {
                path: format!("{relative}:{}", index + 1),
                source,
            })
        })
        .collect()
}

/// A YAML file given by its path from the workspace root.
pub fn read_yaml(relative: &str) -> Result<serde_yaml::Value, FileError> {
    let path = path(relative);
    let text = std::fs::read_to_string(&path).map_err(|source| FileError::Read {
        path: path.clone(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| FileError::Yaml { path, source })
}

/// Every file under `relative` (recursively) whose name ends with one of `extensions`,
/// as paths from the workspace root, sorted.
pub fn files_under(relative: &str, extensions: &[&str]) -> Result<Vec<String>, FileError> {
    let mut found = Vec::new();
    let mut pending = vec![path(relative)];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| FileError::Read {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| FileError::Read {
                path: dir.clone(),
                source,
            })?;
            let entry_path = entry.path();
            if entry_path.is_dir() {
                pending.push(entry_path);
            } else if let Some(name) = entry_path.file_name().and_then(|n| n.to_str()) {
                if extensions.iter().any(|ext| name.ends_with(ext)) {
                    if let Ok(rel) = entry_path.strip_prefix(workspace_root()) {
                        found.push(rel.to_string_lossy().into_owned());
                    }
                }
            }
        }
    }
    found.sort();
    Ok(found)
}
