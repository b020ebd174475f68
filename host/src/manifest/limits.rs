//! The `[limits]` table of `plugin.toml`: the sandbox's resource limits for
//! one plugin. Every field is optional and has a safe default.

use serde::Deserialize;
use std::time::Duration;

/// What happens to a session whose outbound queue stays full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueFull {
    /// Close the session with 1008 (policy violation) once its queue has been
    /// full for `queue-full-grace-ms`; the plugin's writes fail meanwhile.
    Close,
    /// Only fail the plugin's writes; the session stays open.
    Drop,
}

/// Per-plugin limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default, expecting = "a [limits] table")]
pub struct Limits {
    /// Linear memory the plugin instance may grow to, in MiB (default 64).
    pub memory_mib: u32,
    /// Table elements the instance may hold (default 100 000).
    pub table_elements: u32,
    /// Time one handler call may take, in ms, waits included (default 100).
    /// A call over it is interrupted: a trap, and a fresh instance.
    pub call_deadline_ms: u64,
    /// Largest message a client may send, in bytes (default 1 MiB); a
    /// larger one closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Live connections the endpoint accepts (default 10 000); more are
    /// refused with 503.
    pub max_connections: usize,
    /// Messages one session may have queued for sending (default 1024).
    pub queue_messages: usize,
    /// Bytes one session may have queued for sending (default 8 MiB).
    pub queue_bytes: usize,
    /// What a full outbound queue leads to: `close` (default) or `drop`.
    pub on_queue_full: QueueFull,
    /// How long a queue may stay full before `close` applies, in ms
    /// (default 1000).
    pub queue_full_grace_ms: u64,
    /// How long a client may leave the server's writes to it unread, in ms
    /// (default 15 000): a client that sends but never reads is not read
    /// either (backpressure), so its queue never refuses a write; once a
    /// write to its socket has waited this long, the connection is dropped.
    pub stall_timeout_ms: u64,
    /// Recycle an instance whose linear memory has grown this many MiB past
    /// its size after start, once the endpoint is idle (default 0: never).
    /// Memory never shrinks; recycling hands the live sessions and the
    /// `snapshot` state to a fresh instance, as a swap does.
    pub recycle_above_mib: u32,
    /// Bytes per second of stdout and stderr the plugin may log (default
    /// 16 KiB, bursts up to 4x); output beyond it is dropped and counted.
    pub log_bytes_per_sec: usize,
    /// Largest per-session attachment, in bytes (default 4096).
    pub attachment_bytes: usize,
    /// Topics one session may be a member of at once (default 64).
    pub topics_per_session: usize,
    /// Longest topic name, in bytes (default 128).
    pub topic_name_bytes: usize,
    /// Traps within `trap-window-secs` after which the endpoint backs off
    /// (default 5): its sessions are closed with 1011 and new connections
    /// get 503 for `backoff-secs`.
    pub max_traps: u32,
    /// The window `max-traps` counts in, in seconds (default 60).
    pub trap_window_secs: u64,
    /// How long a backed-off endpoint refuses connections (default 10).
    pub backoff_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 64,
            table_elements: 100_000,
            call_deadline_ms: 100,
            max_message_bytes: 1 << 20,
            max_connections: 10_000,
            queue_messages: 1024,
            queue_bytes: 8 << 20,
            on_queue_full: QueueFull::Close,
            queue_full_grace_ms: 1000,
            stall_timeout_ms: 15_000,
            recycle_above_mib: 0,
            log_bytes_per_sec: 16 << 10,
            attachment_bytes: 4096,
            topics_per_session: 64,
            topic_name_bytes: 128,
            max_traps: 5,
            trap_window_secs: 60,
            backoff_secs: 10,
        }
    }
}

impl Limits {
    /// The first value that is out of range, as (field, reason).
    pub(super) fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let checks: [(bool, &'static str, &'static str); 10] = [
            ((1..=4096).contains(&self.memory_mib), "limits.memory-mib", "must be 1 to 4096"),
            (self.call_deadline_ms >= 10, "limits.call-deadline-ms", "must be at least 10"),
            (self.max_message_bytes >= 125, "limits.max-message-bytes", "must be at least 125"),
            (self.max_connections >= 1, "limits.max-connections", "must be at least 1"),
            (self.queue_messages >= 1, "limits.queue-messages", "must be at least 1"),
            (self.queue_bytes >= 1, "limits.queue-bytes", "must be at least 1"),
            (self.stall_timeout_ms >= 100, "limits.stall-timeout-ms", "must be at least 100"),
            (self.topic_name_bytes >= 1, "limits.topic-name-bytes", "must be at least 1"),
            (self.max_traps >= 1, "limits.max-traps", "must be at least 1"),
            (self.trap_window_secs >= 1, "limits.trap-window-secs", "must be at least 1"),
        ];
        match checks.into_iter().find(|(ok, _, _)| !ok) {
            Some((_, field, reason)) => Err((field, reason)),
            None => Ok(()),
        }
    }

    /// Memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib as usize * (1 << 20)
    }

    /// The call deadline.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.call_deadline_ms)
    }

    /// How long a write to a client's socket may wait.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }

    /// The grace before a full queue closes its session.
    pub fn queue_full_grace(&self) -> Duration {
        Duration::from_millis(self.queue_full_grace_ms)
    }
}
