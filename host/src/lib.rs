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
//! Layers, each importing only those above it in this list:
//! - [`codec`]: the WebSocket framing of plain sessions (RFC 6455).
//! - [`log_limit`]: rate limits for log lines clients or plugins cause.
//! - [`metrics`]: what the server counts, per route (Prometheus).
//! - [`manifest`]: the `plugin.toml` schema, parsing and validation.
//! - [`config`]: server-wide settings and their defaults; `wasock.toml`.
//! - [`session`]: the host-owned state of every session: the registry,
//!   outbound queues, read credits, close frames.
//! - [`runtime`]: the wasmtime side: engine, bindings of both contracts
//!   (0.2, and the frozen 0.1), host functions over the session registry,
//!   the compiled plugin, plugin stdout/stderr.
//! - [`plugins`]: plugins on disk: discovery, build commands, reading and
//!   compiling components (the one way `serve`, `check` and tests load).
//! - [`endpoint`]: a route's plugin instances, each an actor on a thread:
//!   event queues, event loops, trap recovery, swaps.
//! - [`server`]: the network side: accept loop, TLS, HTTP upgrade (and the
//!   plugin's upgrade hook), plugins' static files, one task per WebSocket
//!   connection, graceful shutdown.
//! - [`cluster`]: many servers as one over NATS (`--cluster`).
//! - [`supervisor`]: keeps the served plugins in line with the disk: adds,
//!   hot-swaps (without dropping clients), moves and removes endpoints.
//! - [`admin`]: the admin listener (`/healthz`, `/readyz`, `/status`,
//!   `/metrics`).
//! - [`app`]: one way to assemble and run a server ([`Server`]).
//! - [`cli`]: the `wasock` subcommands (`serve`, `build`, `check`, `new`).

pub mod admin;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod endpoint;
pub mod log_limit;
pub mod manifest;
pub mod metrics;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod session;
pub mod supervisor;

pub use app::{Server, ServerBuilder, StartError};
pub use config::ServerConfig;
pub use session::SessionId;
