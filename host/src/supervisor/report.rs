//! What a reload did ([`ReloadReport`]), and why a plugin was not
//! (re)loaded ([`ReloadError`]): each error names the plugin and says
//! whether its running version stays.

use crate::endpoint::SwapError;
use crate::plugins::{BuildError, DiscoverError};
use crate::runtime::LoadError;

/// What one reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Plugins started.
    pub added: Vec<String>,
    /// Plugins replaced by a new version.
    pub swapped: Vec<String>,
    /// Plugins removed.
    pub removed: Vec<String>,
    /// What went wrong; the running versions stay.
    pub failed: Vec<ReloadError>,
}

/// Why a plugin was not (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Its directory or manifest is broken, or it clashes with another.
    #[error("{error}{}", keeping(*.running))]
    Discover {
        /// What is wrong.
        error: DiscoverError,
        /// Whether a version of it keeps serving.
        running: bool,
    },
    /// Its build command failed.
    #[error("{error}{}", keeping(*.running))]
    Build {
        /// What failed.
        error: BuildError,
        /// Whether a version of it keeps serving.
        running: bool,
    },
    /// Its component cannot be read, compiled or started.
    #[error("{error}{}", keeping(*.running))]
    Load {
        /// What is wrong.
        error: LoadError,
        /// Whether a version of it keeps serving.
        running: bool,
    },
    /// Its endpoint could not start.
    #[error("plugin `{name}`: {error:#}")]
    Start {
        /// The plugin.
        name: String,
        /// What failed.
        error: anyhow::Error,
    },
    /// The new version did not take over; the running one keeps serving.
    #[error("plugin `{name}`: {error}; keeping version {kept}")]
    Swap {
        /// The plugin.
        name: String,
        /// Why the new version did not take over.
        error: SwapError,
        /// The version still serving.
        kept: String,
    },
}

/// The note that a running version stays, if one does.
fn keeping(running: bool) -> &'static str {
    if running { "; keeping the running version" } else { "" }
}
