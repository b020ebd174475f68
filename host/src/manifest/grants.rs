//! The `[grants]` table of `plugin.toml`: the only capabilities a plugin can
//! be given. By default a plugin sees no environment variables and no files.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default, expecting = "a [grants] table")]
pub(super) struct GrantsV1 {
    /// Environment variables the plugin sees, with their values (config).
    env: BTreeMap<String, String>,
    /// Host environment variables passed through by name; unset ones are
    /// skipped.
    inherit_env: Vec<String>,
    /// Directories inside the plugin directory the plugin may read, each
    /// mounted read-only at `/<dir>`.
    read_dirs: Vec<PathBuf>,
}

/// Resolved grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Environment variables as (name, value), in name order.
    pub env: Vec<(String, String)>,
    /// Read-only directories as (host path, guest path).
    pub read_dirs: Vec<(PathBuf, String)>,
}

impl GrantsV1 {
    /// Checks names and paths against the plugin directory `dir`.
    pub(super) fn resolve(self, dir: &Path) -> Result<Grants, (&'static str, String)> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for name in self.inherit_env {
            check_env_name(&name).map_err(|r| ("grants.inherit-env", r))?;
            if let Ok(value) = std::env::var(&name) {
                env.insert(name, value);
            }
        }
        for (name, value) in self.env {
            check_env_name(&name).map_err(|r| ("grants.env", r))?;
            env.insert(name, value);
        }
        let mut read_dirs = Vec::new();
        for rel in self.read_dirs {
            read_dirs.push(resolve_dir(dir, &rel).map_err(|r| ("grants.read-dirs", r))?);
        }
        Ok(Grants { env: env.into_iter().collect(), read_dirs })
    }
}

fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok { Ok(()) } else { Err(format!("`{name}` is not a valid variable name")) }
}

/// A directory that must stay inside the plugin directory, even through
/// symlinks.
pub(super) fn resolve_dir(dir: &Path, rel: &Path) -> Result<(PathBuf, String), String> {
    let shown = rel.display();
    if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("`{shown}` escapes the plugin directory (use a path inside it)"));
    }
    let root = dir.canonicalize().map_err(|e| format!("cannot resolve the plugin directory: {e}"))?;
    let host = dir.join(rel).canonicalize().map_err(|e| format!("`{shown}`: {e}"))?;
    if !host.starts_with(&root) {
        return Err(format!("`{shown}` escapes the plugin directory (use a path inside it)"));
    }
    if host == root {
        return Err(format!("`{shown}` is the plugin directory itself; name a subdirectory"));
    }
    if !host.is_dir() {
        return Err(format!("`{shown}` is not a directory"));
    }
    let guest = format!("/{}", rel.to_string_lossy().trim_end_matches('/'));
    Ok((host, guest))
}
