//! When each proxied connection next wants a turn, visited in time order: a tick costs the
//! connections that are due, not every connection the participating stack holds (with 50 000
//! logins parked, scanning them all every 10 ms took a third of the control lcore).

use std::collections::{BTreeSet, HashMap};

use common::flow::FlowKey;

/// At most one deadline (milliseconds) per key.
#[derive(Debug, Default)]
pub struct Timers {
    at: HashMap<FlowKey, u64>,
    order: BTreeSet<(u64, FlowKey)>,
}

impl Timers {
    /// Sets (or moves) `key`'s deadline.
    pub fn set(&mut self, key: FlowKey, at_ms: u64) {
        if let Some(old) = self.at.insert(key, at_ms) {
            self.order.remove(&(old, key));
        }
        self.order.insert((at_ms, key));
    }

    /// Forgets `key`'s deadline, if it has one.
    pub fn clear(&mut self, key: &FlowKey) {
        if let Some(old) = self.at.remove(key) {
            self.order.remove(&(old, *key));
        }
    }

    /// The earliest key whose deadline is at or before `now_ms`, removed.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<FlowKey> {
        let &(t, key) = self.order.first()?;
        if t > now_ms {
            return None;
        }
        self.order.pop_first();
        self.at.remove(&key);
        Some(key)
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<u64> {
        self.order.first().map(|&(t, _)| t)
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::Ipv4Addr;

    fn key(port: u16) -> FlowKey {
        FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            port,
            Ipv4Addr::new(198, 19, 0, 2),
            80,
        )
    }

    #[test]
    fn due_in_time_order_moved_and_cleared() {
        let mut t = Timers::default();
        t.set(key(1), 30);
        t.set(key(2), 10);
        t.set(key(3), 20);
        t.set(key(1), 5); // moved earlier
        t.clear(&key(3));
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_due(4), None, "nothing due yet");
        assert_eq!(t.pop_due(100), Some(key(1)));
        assert_eq!(t.pop_due(9), None);
        assert_eq!(t.pop_due(10), Some(key(2)));
        assert_eq!(t.pop_due(1000), None);
        assert!(t.is_empty());
        t.clear(&key(9)); // no deadline: harmless
    }
}
