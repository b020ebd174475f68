//! The `plugin.toml` manifest: its versioned schema, parsing and validation.
//!
//! A manifest names the plugin, the route it serves and the component file,
//! relative to the plugin directory. Unknown fields are rejected so a typo
//! never passes silently, and every error names the file and the field.
//!
//! ```toml
//! manifest-version = 1
//! name = "echo"
//! route = "/echo"
//! component = "../target/wasm32-wasip2/release/echo.wasm"
//! instances = 2         # optional; instances serving the route (default 1)
//!
//! [build]
//! command = "cargo build --release --target wasm32-wasip2 -p echo"
//!
//! [limits]              # optional; see `limits.rs` for every field
//! memory-mib = 64
//!
//! [grants]              # optional; nothing is granted by default
//! env = { GREETING = "hello" }
//! read-dirs = ["data"]
//!
//! [static]              # optional; files served on plain HTTP GET
//! dir = "public"
//!
//! [deflate]             # optional; permessage-deflate, off without it
//! ```
//!
//! - [`limits`]: the `[limits]` table.
//! - [`grants`]: the `[grants]` table.
//! - [`files`]: the `[static]` table.
//! - [`deflate`]: the `[deflate]` table.

mod deflate;
mod files;
mod grants;
mod limits;

pub use deflate::Deflate;
pub use files::{DEFAULT_MAX_FILE_BYTES, StaticFiles};
pub use grants::Grants;
pub use limits::{Limits, QueueFull};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file name of a manifest inside a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// Most instances one route may have (sets of them are 64-bit masks).
pub const MAX_INSTANCES: usize = 64;

/// The only schema version this host reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What can be wrong with a manifest. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field has the wrong type, is missing
    /// or is unknown.
    #[error("{path}: {message}")]
    Parse {
        /// The manifest's path.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The `manifest-version` is one this host does not read.
    #[error("{path}: manifest-version {found} is not supported (this wasock reads version {MANIFEST_VERSION})")]
    UnsupportedVersion {
        /// The manifest's path.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// A field parsed but its value is not allowed.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        /// The manifest's path.
        path: PathBuf,
        /// The field's name as written in the file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ManifestError {
    /// The manifest file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. }
            | ManifestError::Parse { path, .. }
            | ManifestError::UnsupportedVersion { path, .. }
            | ManifestError::InvalidField { path, .. } => path,
        }
    }
}

/// The schema of `plugin.toml`, version 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a plugin manifest")]
struct ManifestV1 {
    /// Schema version; must be 1.
    manifest_version: u32,
    /// The plugin's name: lowercase letters, digits, `-` and `_`. Shown in
    /// every log line the plugin causes.
    name: String,
    /// The URL path clients connect to, e.g. `/chat`. Exact match; starts
    /// with `/`; no query or fragment.
    route: String,
    /// The component file, relative to the plugin directory.
    component: PathBuf,
    /// How many instances serve the route, each on a thread of its own
    /// (default 1: one instance sees every session).
    #[serde(default = "one")]
    instances: usize,
    /// How to build the component from source; optional.
    #[serde(default)]
    build: Option<BuildV1>,
    /// Resource limits; every field has a default.
    #[serde(default)]
    limits: Limits,
    /// Capabilities granted to the plugin; none by default.
    #[serde(default)]
    grants: grants::GrantsV1,
    /// Files served on plain HTTP GET under the route; none by default.
    #[serde(default, rename = "static")]
    static_files: Option<files::StaticV1>,
    /// permessage-deflate; off without the table.
    #[serde(default)]
    deflate: Option<deflate::DeflateV1>,
}

fn one() -> usize {
    1
}

/// The `[build]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a [build] table")]
struct BuildV1 {
    /// A shell command (`sh -c`) that builds the component.
    command: String,
    /// Directory to run it in, relative to the plugin directory; defaults to
    /// the plugin directory.
    #[serde(default)]
    workdir: Option<PathBuf>,
}

/// A validated manifest, with paths resolved against its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The plugin's name.
    pub name: String,
    /// The route it serves.
    pub route: String,
    /// The plugin directory (holds `plugin.toml`).
    pub dir: PathBuf,
    /// The manifest file itself, for error messages.
    pub file: PathBuf,
    /// Absolute or directory-relative path of the component.
    pub component: PathBuf,
    /// How many instances serve the route (1 to
    /// [`MAX_INSTANCES`]).
    pub instances: usize,
    /// The build command, if any.
    pub build: Option<BuildCommand>,
    /// The sandbox's limits.
    pub limits: Limits,
    /// What the plugin may access.
    pub grants: Grants,
    /// The static files served under the route, if any.
    pub static_files: Option<StaticFiles>,
    /// permessage-deflate settings, if the route negotiates it.
    pub deflate: Option<Deflate>,
}

/// How to build a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    /// The shell command.
    pub command: String,
    /// Where to run it.
    pub workdir: PathBuf,
}

impl Manifest {
    /// Reads and validates `<dir>/plugin.toml`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let file = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&file).map_err(|source| ManifestError::Read { path: file.clone(), source })?;
        Self::parse(&text, dir, file)
    }

    /// Validates manifest `text` as if read from `file` in `dir`.
    pub fn parse(text: &str, dir: &Path, file: PathBuf) -> Result<Self, ManifestError> {
        let raw: ManifestV1 = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                return Err(ManifestError::Parse { path: file, message: parse_message(text, &err) });
            }
        };
        let invalid =
            |field, reason: &str| ManifestError::InvalidField { path: file.clone(), field, reason: reason.to_owned() };
        if raw.manifest_version != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion { path: file, found: raw.manifest_version });
        }
        if raw.name.is_empty()
            || !raw.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(invalid("name", "must be non-empty lowercase letters, digits, `-` or `_`"));
        }
        validate_route(&raw.route).map_err(|reason| invalid("route", reason))?;
        if raw.component.as_os_str().is_empty() {
            return Err(invalid("component", "must name the component file"));
        }
        if !(1..=MAX_INSTANCES).contains(&raw.instances) {
            return Err(invalid("instances", &format!("must be 1 to {MAX_INSTANCES}")));
        }
        raw.limits.validate().map_err(|(field, reason)| invalid(field, reason))?;
        let grants = raw.grants.resolve(dir).map_err(|(field, reason)| invalid(field, &reason))?;
        let static_files =
            raw.static_files.map(|s| s.resolve(dir)).transpose().map_err(|(field, reason)| invalid(field, &reason))?;
        let deflate = raw.deflate.map(deflate::DeflateV1::resolve).transpose().map_err(|(f, r)| invalid(f, &r))?;
        let build = match raw.build {
            Some(b) if b.command.trim().is_empty() => {
                return Err(invalid("build.command", "must not be empty"));
            }
            Some(b) => Some(BuildCommand { command: b.command, workdir: dir.join(b.workdir.unwrap_or_default()) }),
            None => None,
        };
        Ok(Self {
            name: raw.name,
            route: raw.route,
            component: dir.join(raw.component),
            instances: raw.instances,
            dir: dir.to_path_buf(),
            file,
            build,
            limits: raw.limits,
            grants,
            static_files,
            deflate,
        })
    }
}

/// A route is an absolute URL path without query, fragment or blanks.
fn validate_route(route: &str) -> Result<(), &'static str> {
    if !route.starts_with('/') {
        return Err("must start with `/`");
    }
    if route.contains(['?', '#']) {
        return Err("must not contain a query (`?`) or fragment (`#`)");
    }
    if route.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("must not contain blanks or control characters");
    }
    if route.parse::<hyper::Uri>().is_err() {
        return Err("is not a valid URL path");
    }
    Ok(())
}

/// The parser's error as one line: `line L, column C: message`, with the
/// key of that line (`field `x``) when the message does not name it.
pub(crate) fn parse_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end().to_owned();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.len() - line_start + 1;
            let key = text[line_start..]
                .lines()
                .next()
                .and_then(|l| l.split_once('='))
                .map(|(key, _)| key.trim())
                .filter(|key| !key.is_empty() && !key.starts_with('[') && !message.contains(&format!("`{key}`")))
                .filter(|_| !message.starts_with("missing field"));
            match key {
                Some(key) => format!("line {line}, column {column}: field `{key}`: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new("p"), PathBuf::from("p/plugin.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = "manifest-version = 1\nname = \"echo\"\nroute = \"/echo\"\ncomponent = \"echo.wasm\"\n";

    #[test]
    fn accepts_a_minimal_manifest() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.name, "echo");
        assert_eq!(m.route, "/echo");
        assert_eq!(m.component, Path::new("p/echo.wasm"));
        assert_eq!(m.build, None);
    }

    #[test]
    fn resolves_the_build_workdir() {
        let m = parse(&format!("{GOOD}[build]\ncommand = \"make\"\nworkdir = \"..\"\n")).unwrap();
        let build = m.build.unwrap();
        assert_eq!(build.command, "make");
        assert_eq!(build.workdir, Path::new("p/.."));
    }

    #[test]
    fn rejects_unknown_fields_with_their_line() {
        let err = parse(&format!("{GOOD}colour = \"blue\"\n")).unwrap_err();
        assert!(err.starts_with("p/plugin.toml: line 5, column 1: unknown field `colour`"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        let cases = [
            (GOOD.replace("/echo", "echo"), "field `route`: must start with `/`"),
            (GOOD.replace("/echo", "/e?x=1"), "field `route`: must not contain a query"),
            (GOOD.replace("\"echo\"", "\"Echo!\""), "field `name`: must be non-empty"),
            (GOOD.replace("= 1", "= 2"), "manifest-version 2 is not supported"),
            (GOOD.replace("echo.wasm", ""), "field `component`: must name"),
            (format!("{GOOD}instances = 0\n"), "field `instances`: must be 1 to 64"),
            (format!("{GOOD}instances = 65\n"), "field `instances`: must be 1 to 64"),
            (GOOD.replace("name = \"echo\"\n", ""), "missing field `name`"),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}
