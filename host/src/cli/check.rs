//! `wasock check PATH...`: validates manifests and components without
//! serving, and prints what each component imports and exports.

use super::serve::CacheArgs;
use crate::plugins;
use crate::runtime::Runtime;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `wasock check`.
#[derive(Debug, Args)]
pub struct Check {
    #[command(flatten)]
    cache: CacheArgs,
    /// Plugin directories, or directories holding plugin directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl Check {
    /// Checks each plugin; fails if any is broken.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        // Checking warms the compile cache for the next `serve`.
        let runtime = Runtime::with_cache(self.cache.compile_cache())?;
        let loaded = plugins::load(&runtime, &self.paths);
        for (manifest, plugin) in &loaded.plugins {
            println!("ok   {} {} ({})", plugin.name, plugin.route, manifest.component.display());
            println!("       contract {}", plugin.contract);
            for name in &plugin.imports {
                println!("       imports {name}");
            }
            for name in &plugin.exports {
                println!("       exports {name}");
            }
        }
        for err in &loaded.errors {
            println!("FAIL {err:#}");
        }
        Ok(if loaded.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}
