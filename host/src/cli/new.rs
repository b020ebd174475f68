//! `wasock new --lang rust|js|python NAME`: creates a plugin directory with
//! a manifest, a minimal handler and the command that builds it, so that
//! `wasock serve --build NAME` serves it at `/NAME`.
//!
//! The templates live in `host/templates/` and are compiled into the binary.
//! JavaScript and Python plugins get a copy of the WIT contract (their
//! toolchains read it) and of their SDK file (`wasock.js`, `wasock.py`),
//! whose defaults fill in every event the plugin does not define; Rust
//! plugins depend on the guest SDK by path.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The languages `wasock new` has a template for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Lang {
    /// Rust, with the `wasock-guest` SDK.
    Rust,
    /// JavaScript, with componentize-js.
    Js,
    /// Python, with componentize-py.
    Python,
}

/// Arguments of `wasock new`.
#[derive(Debug, Args)]
pub struct New {
    /// The plugin's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The guest SDK for Rust plugins, by path [default: the one in the
    /// source tree wasock was built from, if it is still there; else the
    /// `wasock-guest` release from crates.io].
    #[arg(long = "sdk-path", alias = "sdk", value_name = "DIR")]
    sdk: Option<PathBuf>,
    /// The directory to create; its last component names the plugin and its
    /// route (lowercase letters, digits and `-`, starting with a letter).
    path: PathBuf,
}

const WIT: &str = include_str!("../../wit/wasock.wit");

/// (file, template) for each language.
fn files(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("plugin.toml", include_str!("../../templates/rust/plugin.toml")),
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../../templates/rust/lib.rs")),
            (".gitignore", include_str!("../../templates/rust/gitignore")),
        ],
        Lang::Js => &[
            ("plugin.toml", include_str!("../../templates/js/plugin.toml")),
            ("package.json", include_str!("../../templates/js/package.json")),
            ("app.js", include_str!("../../templates/js/app.js")),
            ("build.sh", include_str!("../../templates/js/build.sh")),
            ("wasock.js", include_str!("../../templates/js/wasock.js")),
            ("wit/wasock.wit", WIT),
            ("wit/js.wit", include_str!("../../templates/js/wit/js.wit")),
            ("wit/deps/cli/environment.wit", include_str!("../../templates/js/wit/deps/cli/environment.wit")),
            (".gitignore", include_str!("../../templates/js/gitignore")),
        ],
        Lang::Python => &[
            ("plugin.toml", include_str!("../../templates/python/plugin.toml")),
            ("app.py", include_str!("../../templates/python/app.py")),
            ("build.sh", include_str!("../../templates/python/build.sh")),
            ("wasock.py", include_str!("../../templates/python/wasock.py")),
            ("wit/wasock.wit", WIT),
            (".gitignore", include_str!("../../templates/python/gitignore")),
        ],
    }
}

impl New {
    /// Writes the plugin directory; refuses to touch an existing one.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let name = plugin_name(&self.path)?;
        if self.path.exists() {
            bail!("{} already exists; choose a new directory", self.path.display());
        }
        let sdk = match self.lang {
            Lang::Rust => rust_sdk(self.sdk)?,
            _ => String::new(),
        };
        for (file, template) in files(self.lang) {
            let text = template
                .replace("{{name}}", &name)
                .replace("{{crate}}", &name.replace('-', "_"))
                .replace("{{sdk}}", &sdk);
            let path = self.path.join(file);
            std::fs::create_dir_all(path.parent().unwrap_or(&self.path))
                .with_context(|| format!("cannot create {}", self.path.display()))?;
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("created {} ({:?} plugin `{name}`, route /{name})", self.path.display(), self.lang);
        println!("serve it:  wasock serve --build {}", self.path.display());
        Ok(ExitCode::SUCCESS)
    }
}

/// The plugin name the directory gives: also a crate name and a route.
fn plugin_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a plugin name", path.display()))?;
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!("`{name}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter");
    }
    Ok(name.to_owned())
}

/// The `wasock-guest` dependency, as a TOML value: the SDK at `given`, or
/// the one in the source tree this binary was built from (a checkout), or
/// else the crates.io release matching this binary's version.
fn rust_sdk(given: Option<PathBuf>) -> anyhow::Result<String> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let sdk = match given {
        Some(dir) => dir,
        None if checkout.join("Cargo.toml").is_file() => checkout,
        None => return Ok(format!("\"{}\"", env!("CARGO_PKG_VERSION"))),
    };
    let sdk = sdk.canonicalize().with_context(|| format!("no guest SDK at {} (pass --sdk-path DIR)", sdk.display()))?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!("{} is not the wasock-guest crate (pass --sdk-path DIR)", sdk.display());
    }
    let path = sdk.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!("{{ path = \"{path}\" }}"))
}
