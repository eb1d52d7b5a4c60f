//! Embeds the Elasticsearch resources under `elastic-templates/elasticsearch/` into the binary.
//!
//! The shipper installs its ILM policies, component templates and index templates at start, so
//! a release must carry the exact files it was built with. Listing the directories here (rather
//! than naming each file in code) means a new template is picked up by adding a file: the file
//! name without `.json` is the resource name, the directory says what kind of resource it is.
//! When the directory is missing (a partial checkout), the list is simply empty; a unit test in
//! `output::templates` fails in that case so a release cannot ship without its templates.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Kinds of resources, in the order they must be installed: an index template refers to
/// component templates and (through its settings) to an ILM policy, so those come first.
const KINDS: [(&str, &str); 3] = [
    ("ilm_policy", "IlmPolicy"),
    ("component_template", "ComponentTemplate"),
    ("index_template", "IndexTemplate"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("../elastic-templates/elasticsearch");
    // A directory given to rerun-if-changed is scanned recursively, so adding, removing or
    // editing a template rebuilds the shipper.
    println!("cargo:rerun-if-changed={}", root.display());

    let mut generated = String::from("&[\n");
    for (dir, kind) in KINDS {
        let kind_dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", kind_dir.display());
        for path in json_files(&kind_dir) {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                println!(
                    "cargo:warning=skipping template with a non UTF-8 name: {}",
                    path.display()
                );
                continue;
            };
            let absolute = fs::canonicalize(&path).unwrap_or(path.clone());
            // `{:?}` renders a Rust string literal with every special character escaped.
            let _ = writeln!(
                generated,
                "    EmbeddedTemplate {{ kind: TemplateKind::{kind}, name: {name:?}, body: include_str!({:?}) }},",
                absolute.display().to_string()
            );
        }
    }
    generated.push_str("]\n");

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("templates.rs");
    if let Err(err) = fs::write(&out, generated) {
        panic!("cannot write {}: {err}", out.display());
    }
}

/// The `*.json` files of a directory, sorted by name so the install order is stable.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}
