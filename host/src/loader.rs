//! From command-line paths to compiled plugins: discover the plugin
//! directories, optionally run their build commands, compile and type-check
//! each component. A broken plugin is reported and skipped; the rest load.

use crate::manifest::Manifest;
use crate::plugins;
use crate::runtime::{CompiledPlugin, Runtime};
use std::path::PathBuf;
use std::time::Instant;

/// The outcome of loading: the plugins that are ready and, for each one that
/// is not, what is wrong with it.
#[derive(Default)]
pub struct Loaded {
    /// Compiled plugins with their manifests, in discovery order.
    pub plugins: Vec<(Manifest, CompiledPlugin)>,
    /// One error per plugin (or path) that could not be loaded.
    pub errors: Vec<anyhow::Error>,
}

/// Discovers the plugins under `paths`, builds them first if `build`, and
/// compiles each.
pub fn load(runtime: &Runtime, paths: &[PathBuf], build: bool) -> Loaded {
    let (manifests, errors) = plugins::discover(paths);
    let mut loaded = Loaded {
        errors: errors.into_iter().map(anyhow::Error::from).collect(),
        ..Loaded::default()
    };
    for manifest in manifests {
        if build && let Err(err) = plugins::build(&manifest) {
            loaded.errors.push(err.into());
            continue;
        }
        let started = Instant::now();
        match CompiledPlugin::load(runtime, &manifest) {
            Ok(plugin) => {
                tracing::info!(plugin = %plugin.name, route = %plugin.route, origin = ?plugin.origin, elapsed = ?started.elapsed(), "loaded");
                loaded.plugins.push((manifest, plugin));
            }
            Err(err) => loaded.errors.push(err.into()),
        }
    }
    loaded
}
