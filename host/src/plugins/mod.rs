//! Plugins on disk: finding plugin directories, running their build
//! commands, and reading and compiling their components. `serve` (through
//! the supervisor), `check` and the tests all load plugins this one way.
//!
//! A path given on the command line is either a plugin directory (it holds a
//! `plugin.toml`) or a directory of plugin directories. Discovery never stops
//! at the first bad plugin: it returns every manifest it could read and every
//! error, so the server can serve the good ones and report the rest.
//!
//! - [`build`]: a plugin's build command.
//! - [`source`]: a component read and hashed, then compiled.

pub mod build;
pub mod source;

pub use build::{BuildError, build};
pub use source::{Loaded, Source, load};

use crate::manifest::{MANIFEST_FILE, Manifest, ManifestError};
use std::path::{Path, PathBuf};

/// Why a plugin (or a path) was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The path given is neither a plugin directory nor holds any.
    #[error("{path}: no {MANIFEST_FILE} in it or in its subdirectories")]
    NoPlugins {
        /// The path given.
        path: PathBuf,
    },
    /// The path could not be listed.
    #[error("{path}: cannot read directory: {source}")]
    ReadDir {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Two plugins claim the same route.
    #[error("plugin `{name}` ({file}): route {route} is already served by plugin `{other}`")]
    DuplicateRoute {
        /// The plugin that was skipped.
        name: String,
        /// Its manifest.
        file: PathBuf,
        /// The route both claim.
        route: String,
        /// The plugin that keeps the route.
        other: String,
    },
    /// Two plugins have the same name.
    #[error("plugin `{name}` ({file}): the name is already used by {other}")]
    DuplicateName {
        /// The name both use.
        name: String,
        /// The manifest that was skipped.
        file: PathBuf,
        /// The manifest that keeps the name.
        other: PathBuf,
    },
}

impl DiscoverError {
    /// The plugin directory the error is about, if it is about one.
    pub fn plugin_dir(&self) -> Option<PathBuf> {
        let file = match self {
            DiscoverError::Manifest(err) => err.path(),
            DiscoverError::DuplicateRoute { file, .. } | DiscoverError::DuplicateName { file, .. } => file,
            DiscoverError::NoPlugins { .. } | DiscoverError::ReadDir { .. } => return None,
        };
        file.parent().map(Path::to_path_buf)
    }
}

/// Every plugin found under `paths`, in path order, plus what went wrong.
/// Of two plugins with one route or name, the first found is kept.
pub fn discover(paths: &[PathBuf]) -> (Vec<Manifest>, Vec<DiscoverError>) {
    let mut found: Vec<Manifest> = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match plugin_dirs(path) {
            Ok(dirs) => {
                for dir in dirs {
                    match Manifest::load(&dir) {
                        Ok(m) => match conflict(&found, &m) {
                            Some(err) => errors.push(err),
                            None => found.push(m),
                        },
                        Err(err) => errors.push(err.into()),
                    }
                }
            }
            Err(err) => errors.push(err),
        }
    }
    (found, errors)
}

fn conflict(found: &[Manifest], m: &Manifest) -> Option<DiscoverError> {
    if let Some(other) = found.iter().find(|o| o.route == m.route) {
        return Some(DiscoverError::DuplicateRoute {
            name: m.name.clone(),
            file: m.file.clone(),
            route: m.route.clone(),
            other: other.name.clone(),
        });
    }
    found.iter().find(|o| o.name == m.name).map(|other| DiscoverError::DuplicateName {
        name: m.name.clone(),
        file: m.file.clone(),
        other: other.file.clone(),
    })
}

/// `path` itself if it is a plugin directory, else its subdirectories that
/// are, sorted by name.
fn plugin_dirs(path: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
    if path.join(MANIFEST_FILE).is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|source| DiscoverError::ReadDir { path: path.to_path_buf(), source })?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(MANIFEST_FILE).is_file()).collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(DiscoverError::NoPlugins { path: path.to_path_buf() });
    }
    Ok(dirs)
}
