//! `wasock-c`: the two steps of building a wasock plugin in C that need
//! component-model tooling, as one small program built with the workspace
//! (instead of installing `wit-bindgen-cli` and `wasm-tools`).
//!
//! - `wasock-c bindings <wit-dir> <out-dir>` writes `plugin.h`, `plugin.c` and
//!   `plugin_component_type.o` for a world (default `plugin`). Borrowed
//!   handles are dropped by the generated code when a handler returns.
//! - `wasock-c component <core.wasm> <out.wasm>` wraps a core module built by
//!   clang for `wasm32-wasi` (reactor) into a component, adapting its WASI
//!   preview 1 imports (stdio) to preview 2.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate C bindings for a world of the WIT package in `wit`.
    Bindings {
        /// The WIT directory (wasock's `wit/`).
        wit: PathBuf,
        /// Where to write the generated files.
        out: PathBuf,
        /// The world: `plugin`, or `stateful-plugin` to export `lifecycle`.
        #[arg(long, default_value = "plugin")]
        world: String,
    },
    /// Package a core wasm module (with its component-type section, linked
    /// in from the bindings' object file) as a component.
    Component {
        /// The core module clang produced.
        core: PathBuf,
        /// The component to write.
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bindings { wit, out, world } => bindings(&wit, &out, &world),
        Command::Component { core, out } => component(&core, &out),
    }
}

fn bindings(wit: &std::path::Path, out: &std::path::Path, world: &str) -> Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading WIT from {}", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world `{world}` in {}", wit.display()))?;
    let opts = wit_bindgen_c::Opts {
        autodrop_borrows: wit_bindgen_c::Enabled::Yes,
        rename_world: Some("plugin".into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    opts.build().generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn component(core: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("the module has no wasock component-type section (link the bindings' object file)")?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?
        .validate(true)
        .encode()
        .context("packaging the component")?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
