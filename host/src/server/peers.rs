//! The per-client-address connection cap (`max-connections-per-ip`, off by
//! default): how many connections each address holds, and a permit that
//! counts one until it is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections held per client address, under a cap.
#[derive(Debug)]
pub(super) struct PeerCounts {
    /// Most connections one address may hold.
    max: usize,
    /// Addresses holding at least one connection.
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of `ip`, counted until dropped.
#[derive(Debug)]
pub(super) struct PeerPermit {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl PeerCounts {
    /// A cap of `max` connections per address.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, counts: Mutex::new(HashMap::new()) })
    }

    /// Counts one more connection of `ip`, unless it holds `max` already.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PeerPermit> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(ip).or_insert(0);
        if *held >= self.max {
            return None;
        }
        *held += 1;
        Some(PeerPermit { counts: self.clone(), ip })
    }
}

impl Drop for PeerPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = counts.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_and_gets_them_back() {
        let counts = PeerCounts::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = counts.admit(a).unwrap();
        let _second = counts.admit(a).unwrap();
        assert!(counts.admit(a).is_none());
        assert!(counts.admit(b).is_some(), "another address is not affected");
        drop(first);
        assert!(counts.admit(a).is_some());
    }
}
