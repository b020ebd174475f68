//! The `[static]` table of `plugin.toml`: a directory of files served on
//! plain HTTP GET under the plugin's route (its `index.html` at the route
//! itself), beside the WebSocket endpoint.
//!
//! ```toml
//! [static]
//! dir = "public"            # inside the plugin directory
//! max-file-bytes = 8388608  # larger files are refused (403)
//! ```

use super::grants::resolve_dir;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The default bound on a served file (8 MiB): pages, scripts and images,
/// not downloads.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 20;

/// The largest bound a manifest may set (1 GiB).
const MAX_MAX_FILE_BYTES: u64 = 1 << 30;

/// The table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a [static] table")]
pub(super) struct StaticV1 {
    /// The directory served, relative to the plugin directory; must stay
    /// inside it (symlinks included) and must not be the plugin directory
    /// itself, whose `plugin.toml` and sources are not for clients.
    dir: PathBuf,
    /// Files larger than this are refused with 403 (the bound keeps a
    /// stray build artifact or dump from being served by accident).
    #[serde(default = "default_max_file_bytes")]
    max_file_bytes: u64,
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

/// Resolved static files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFiles {
    /// The served directory, canonical (symlinks resolved), so a request
    /// can be checked to stay under it.
    pub dir: PathBuf,
    /// The largest file served.
    pub max_file_bytes: u64,
}

impl StaticV1 {
    /// Checks the directory against the plugin directory `dir`.
    pub(super) fn resolve(self, dir: &Path) -> Result<StaticFiles, (&'static str, String)> {
        let (served, _) = resolve_dir(dir, &self.dir).map_err(|r| ("static.dir", r))?;
        if self.max_file_bytes == 0 || self.max_file_bytes > MAX_MAX_FILE_BYTES {
            return Err(("static.max-file-bytes", format!("must be between 1 and {MAX_MAX_FILE_BYTES}")));
        }
        Ok(StaticFiles { dir: served, max_file_bytes: self.max_file_bytes })
    }
}
