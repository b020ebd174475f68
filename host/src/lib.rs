//! wasock: a WebSocket server whose endpoints are sandboxed WebAssembly
//! components.
//!
//! A plugin is a directory with a `plugin.toml` and a component implementing
//! the `wasock:plugin` world (`wit/wasock.wit`). The server routes each
//! WebSocket upgrade to its plugin's endpoint; the endpoint runs one component
//! instance on a thread of its own and feeds it that endpoint's events in
//! order, and the component writes back through non-blocking host calls.
//!
//! # Layout
//! - [`config`]: server-wide settings and their defaults.
//! - [`manifest`]: the `plugin.toml` schema, parsing and validation.
//! - [`plugins`]: finding plugin directories and running their build commands.
//! - [`loader`]: paths to compiled plugins, skipping (and reporting) broken ones.
//! - [`runtime`]: the wasmtime side: engine, bindings, host functions, the
//!   compiled plugin, and the log sink for plugin stdout/stderr.
//! - [`endpoint`]: one plugin instance as an actor: its event queue, its
//!   session registry and per-session outbound queues.
//! - [`server`]: the network side: accept loop, HTTP upgrade, one task per
//!   WebSocket connection, graceful shutdown.
//! - [`supervisor`]: keeps the served plugins in line with the disk: adds,
//!   hot-swaps (without dropping clients), moves and removes endpoints.
//! - [`cli`]: the `wasock` subcommands (`serve`, `build`, `check`).

pub mod cli;
pub mod config;
pub mod endpoint;
pub mod loader;
pub mod manifest;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod supervisor;

pub use config::ServerConfig;
pub use endpoint::SessionId;
