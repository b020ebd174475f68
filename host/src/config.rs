//! Server-wide settings: protocol limits, heartbeat, queues and timeouts.
//!
//! Every knob has a production default (see [`ServerConfig::default`]); the
//! `serve` command exposes the ones an operator tunes most often as flags.

use std::time::Duration;

/// Settings shared by every endpoint of one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest message (after reassembling frames) a client may send. A larger
    /// one closes the connection with 1009 (message too big).
    pub max_message_size: usize,
    /// Largest single frame a client may send.
    pub max_frame_size: usize,
    /// Size of each connection's read buffer. Small keeps idle connections
    /// cheap; large messages just take more reads.
    pub read_buffer_size: usize,
    /// Bytes the writer gathers before it writes to the socket; batches of
    /// small replies go out in one syscall.
    pub write_buffer_size: usize,
    /// How often the host pings each client.
    pub ping_interval: Duration,
    /// How long a client may go without answering pings (or sending anything)
    /// before the connection is closed as dead.
    pub pong_timeout: Duration,
    /// Messages a session may have queued for sending before writes to it
    /// fail with `queue-full`.
    pub max_queued_messages: usize,
    /// Bytes a session may have queued for sending before writes to it fail
    /// with `queue-full`.
    pub max_queued_bytes: usize,
    /// Events one endpoint may have waiting; connections reading faster than
    /// the plugin handles wait (TCP backpressure) rather than grow memory.
    pub event_queue_capacity: usize,
    /// How long a closing handshake may take before the socket is dropped.
    pub close_timeout: Duration,
    /// How long graceful shutdown waits for connections to close.
    pub shutdown_timeout: Duration,
    /// Linear memory one plugin instance may grow to.
    pub max_plugin_memory: usize,
    /// CPU time one plugin call may take before it is interrupted.
    pub call_deadline: Duration,
    /// Listen backlog for the accept queue (tokio's default, 1024, drops
    /// bursts of connects).
    pub listen_backlog: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 4 << 10,
            write_buffer_size: 8 << 10,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(75),
            max_queued_messages: 1024,
            max_queued_bytes: 8 << 20,
            event_queue_capacity: 4096,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            max_plugin_memory: 64 << 20,
            call_deadline: Duration::from_millis(100),
            listen_backlog: 4096,
        }
    }
}
