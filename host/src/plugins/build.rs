//! Running a plugin's build command (`[build] command` in its manifest), as
//! `wasock build`, `serve --build` and the supervisor's rebuilds do.

use crate::manifest::Manifest;
use std::process::Command;

/// A build command that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The command could not be started.
    #[error("plugin `{name}`: cannot run build command `{command}`: {source}")]
    Spawn {
        /// The plugin.
        name: String,
        /// The command.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("plugin `{name}`: build command `{command}` failed ({status})")]
    Failed {
        /// The plugin.
        name: String,
        /// The command.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

/// Runs the plugin's build command (`sh -c`) with inherited stdio. A plugin
/// without one is left alone.
pub fn build(manifest: &Manifest) -> Result<(), BuildError> {
    let Some(build) = &manifest.build else {
        tracing::info!(plugin = %manifest.name, "no build command; using the component as is");
        return Ok(());
    };
    tracing::info!(plugin = %manifest.name, command = %build.command, "building");
    let status =
        Command::new("sh").arg("-c").arg(&build.command).current_dir(&build.workdir).status().map_err(|source| {
            BuildError::Spawn { name: manifest.name.clone(), command: build.command.clone(), source }
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed { name: manifest.name.clone(), command: build.command.clone(), status })
    }
}
