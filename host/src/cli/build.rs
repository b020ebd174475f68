//! `wasock build PATH...`: runs every plugin's build command.

use crate::plugins;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `wasock build`.
#[derive(Debug, Args)]
pub struct Build {
    /// Plugin directories, or directories holding plugin directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl Build {
    /// Builds each plugin; fails if any manifest or build fails.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let (manifests, errors) = plugins::discover(&self.paths);
        let mut failed = !errors.is_empty();
        for err in errors {
            tracing::error!("{err}");
        }
        for manifest in &manifests {
            if let Err(err) = plugins::build(manifest) {
                tracing::error!("{err}");
                failed = true;
            }
        }
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}
