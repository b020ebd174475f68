//! Server-wide settings: buffers, heartbeat, timeouts and the connection cap.
//!
//! Every knob has a production default (see [`ServerConfig::default`]); the
//! `serve` command exposes the ones an operator tunes most often as flags.
//! Per-plugin limits (memory, deadline, message size, queues) live in each
//! plugin's manifest: [`crate::manifest::Limits`].
//!
//! - [`file`]: `wasock.toml`, the same settings in a file.

pub mod file;

use std::time::Duration;

/// Settings shared by every endpoint of one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Bytes the writer gathers before it writes to the socket; batches of
    /// small replies go out in one syscall. (Reads need no setting: they go
    /// into one buffer per thread, see [`crate::codec`].)
    pub write_buffer_size: usize,
    /// How often the host pings each client.
    pub ping_interval: Duration,
    /// How long a client may go without answering pings (or sending anything)
    /// before the connection is closed as dead.
    pub pong_timeout: Duration,
    /// Events one endpoint may have waiting; connections reading faster than
    /// the plugin handles wait (TCP backpressure) rather than grow memory.
    pub event_queue_capacity: usize,
    /// How long a closing handshake may take before the socket is dropped.
    pub close_timeout: Duration,
    /// How long graceful shutdown waits for connections to close.
    pub shutdown_timeout: Duration,
    /// How long a stopping server reports not-ready (`/readyz` 503) while
    /// still serving, before it closes sessions: the time a load balancer
    /// needs to stop sending it clients.
    pub drain_delay: Duration,
    /// How long a client may take to send its HTTP request (upgrade)
    /// after connecting: slow-loris clients are cut off.
    pub handshake_timeout: Duration,
    /// Close a session (1001) when the client has sent no message (text or
    /// binary; heartbeat pongs do not count) for this long; `None` keeps idle
    /// sessions open.
    pub idle_timeout: Option<Duration>,
    /// Connections the server holds at once (HTTP and WebSocket); at the cap
    /// it stops accepting until one ends.
    pub max_connections: usize,
    /// Connections one client address may hold at once (HTTP and
    /// WebSocket); `None` (the default) sets no cap. More get 429.
    pub max_connections_per_ip: Option<usize>,
    /// Listen backlog for the accept queue (tokio's default, 1024, drops
    /// bursts of connects).
    pub listen_backlog: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            write_buffer_size: 8 << 10,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(75),
            event_queue_capacity: 4096,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_connections: 18_000,
            max_connections_per_ip: None,
            listen_backlog: 4096,
        }
    }
}
