//! From a manifest to a compiled plugin: read the component once, hash it
//! (the hash names the version and keys the compile cache), compile it.
//!
//! The supervisor reads first and compiles only what changed; [`load`] does
//! both for every plugin under some paths (`check`, the tests).

use super::discover;
use crate::manifest::Manifest;
use crate::runtime::{CompiledPlugin, Digest, LoadError, Runtime};
use std::path::PathBuf;
use std::time::Instant;

/// A plugin's component, read from disk and hashed, not yet compiled.
#[derive(Debug)]
pub struct Source {
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// The component's bytes: what is compiled is exactly what was hashed.
    bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
}

impl Source {
    /// Reads the component `manifest` names.
    pub fn read(manifest: Manifest) -> Result<Self, LoadError> {
        let bytes = std::fs::read(&manifest.component).map_err(|source| LoadError::Read {
            plugin: manifest.name.clone(),
            path: manifest.component.clone(),
            source,
        })?;
        let digest = Digest::of(&bytes);
        Ok(Self { manifest, bytes, digest })
    }

    /// Compiles (or loads from the compile cache) and checks the component.
    pub fn compile(&self, runtime: &Runtime) -> Result<CompiledPlugin, LoadError> {
        let started = Instant::now();
        let plugin = CompiledPlugin::from_bytes(runtime, &self.manifest, &self.bytes, &self.digest)?;
        tracing::debug!(plugin = %plugin.name, origin = ?plugin.origin, elapsed = ?started.elapsed(), "compiled");
        Ok(plugin)
    }
}

/// The outcome of [`load`]: the plugins that are ready and, for each one
/// that is not, what is wrong with it.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Compiled plugins with their manifests, in discovery order.
    pub plugins: Vec<(Manifest, CompiledPlugin)>,
    /// One error per plugin (or path) that could not be loaded.
    pub errors: Vec<anyhow::Error>,
}

/// Discovers the plugins under `paths` and compiles each; a broken plugin
/// is reported and skipped.
pub fn load(runtime: &Runtime, paths: &[PathBuf]) -> Loaded {
    let (manifests, errors) = discover(paths);
    let mut loaded = Loaded { errors: errors.into_iter().map(anyhow::Error::from).collect(), ..Loaded::default() };
    for manifest in manifests {
        match Source::read(manifest).and_then(|source| Ok((source.compile(runtime)?, source.manifest))) {
            Ok((plugin, manifest)) => loaded.plugins.push((manifest, plugin)),
            Err(err) => loaded.errors.push(err.into()),
        }
    }
    loaded
}
