//! Rate limits for log lines that a client or a plugin can cause: each kind
//! of line goes out at most once per interval, and the next one that goes
//! out says how many were held back meanwhile. Nothing a client or plugin
//! does can make a host log line repeat without bound.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One kind of log line's limit.
#[derive(Debug)]
pub struct LogLimit {
    /// At most one line per this.
    every: Duration,
    /// When the last line went out, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Self { every, state: Mutex::new((None, 0)) }
    }

    /// `Some(held back)` if a line may go out now, with how many were held
    /// back since the last one; `None` (and counted) if not.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                state.0 = Some(now);
                Some(std::mem::take(&mut state.1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_the_count_held_back() {
        let limit = LogLimit::new(Duration::from_millis(50));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limit.allow(), Some(2));
    }
}
