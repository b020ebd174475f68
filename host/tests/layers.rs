//! The crate's layers import only downward: a module may `use` the modules
//! before it in [`LAYERS`], never one after it (the order `lib.rs`'s Layout
//! section gives). Reads the sources, so a new upward import fails here.

use std::path::Path;

/// Bottom first.
const LAYERS: [&str; 15] = [
    "codec",
    "log_limit",
    "metrics",
    "manifest",
    "config",
    "session",
    "runtime",
    "plugins",
    "endpoint",
    "server",
    "cluster",
    "supervisor",
    "admin",
    "app",
    "cli",
];

/// Every `crate::<module>` a source file names outside comments.
fn imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            found.push(name);
        }
    }
    found
}

fn files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            files(&entry.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        let mut sources = Vec::new();
        let dir = src.join(layer);
        files(if dir.is_dir() { &dir } else { &src }, &mut sources);
        if !dir.is_dir() {
            sources.retain(|f| f.file_stem().is_some_and(|s| s == *layer));
        }
        assert!(!sources.is_empty(), "no sources for layer {layer}");
        for file in sources {
            for name in imports(&std::fs::read_to_string(&file).unwrap()) {
                if LAYERS.iter().position(|l| *l == name).is_some_and(|r| r > rank) {
                    violations.push(format!("{} imports crate::{name}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "upward imports:\n{}", violations.join("\n"));
}
