//! One worker's shard of the flow table: a fixed-capacity, open-addressing hash table of
//! 64-byte connection objects, owned by exactly one worker (no locks, no atomics).
//!
//! - A slot *is* the connection object ([`Conn`], one cache line): the key lives inside it and
//!   `TcpState::Free` marks an empty slot, so a tracked or spliced flow costs 64 bytes of table
//!   and nothing else.
//! - Each connection is stored once, under its client→server key; the symmetric hash sends
//!   both directions to the same home slot, and a probe compares the packet's key in both
//!   orientations, which also yields the packet's direction.
//! - Linear probing with backward-shift deletion: no tombstones, so lookups stay short however
//!   many flows come and go.
//! - All memory is allocated once, at start. When the table holds `max_load` entries (7/8 of
//!   the slots) `insert` refuses: the caller drops the SYN and counts `flow_table_full`; the
//!   client retransmits, by which time housekeeping may have expired idle entries. Existing
//!   flows are never evicted to make room.
//! - Ageing runs in housekeeping slices ([`FlowTable::expire`]) that visit a bounded number of
//!   slots per call, so a worker never stalls on a full sweep.

use common::conn::Conn;
use common::flow::{Direction, FlowKey};

#[derive(Debug)]
pub struct FlowTable {
    slots: Box<[Conn]>,
    mask: usize,
    len: usize,
    max_load: usize,
    cursor: usize,
    /// Complete passes of the ageing cursor over the table.
    sweeps: u64,
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its maximum load.
    Full,
    /// The key (in either orientation) is already present, at this slot.
    Exists(usize),
}

impl FlowTable {
    /// A table with room for at least `capacity` connections (rounded up to a power of two
    /// slots, with 1/8 kept free so probes stay short).
    pub fn new(capacity: usize) -> FlowTable {
        let want = capacity.max(8) + capacity.max(8) / 7;
        let slots = want.next_power_of_two();
        FlowTable {
            slots: vec![Conn::default(); slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
            max_load: slots - slots / 8,
            cursor: 0,
            sweeps: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of connections the table accepts before refusing inserts.
    pub fn max_load(&self) -> usize {
        self.max_load
    }

    /// Bytes of table memory per connection slot.
    pub fn bytes_per_slot(&self) -> usize {
        core::mem::size_of::<Conn>()
    }

    /// Total table memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<Conn>()
    }

    #[inline]
    fn home(&self, key: &FlowKey) -> usize {
        key.symmetric_hash() as usize & self.mask
    }

    /// Finds the connection a packet with `key` belongs to, and which way it travels.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(usize, Direction)> {
        let mut i = self.home(key);
        loop {
            let c = &self.slots[i];
            if c.is_free() {
                return None;
            }
            if let Some(d) = c.direction_of(key) {
                return Some((i, d));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// A hint to the CPU that `key`'s home slot will be read soon (bulk lookups).
    #[inline]
    pub fn home_slot(&self, key: &FlowKey) -> &Conn {
        &self.slots[self.home(key)]
    }

    #[inline]
    pub fn get(&self, idx: usize) -> &Conn {
        &self.slots[idx]
    }

    #[inline]
    pub fn get_mut(&mut self, idx: usize) -> &mut Conn {
        &mut self.slots[idx]
    }

    /// Inserts `conn` (keyed client→server). Returns its slot.
    pub fn insert(&mut self, conn: Conn) -> Result<usize, InsertError> {
        debug_assert!(!conn.is_free());
        let key = conn.key();
        let mut i = self.home(&key);
        loop {
            let c = &self.slots[i];
            if c.is_free() {
                break;
            }
            if c.direction_of(&key).is_some() {
                return Err(InsertError::Exists(i));
            }
            i = (i + 1) & self.mask;
        }
        if self.len >= self.max_load {
            return Err(InsertError::Full);
        }
        self.slots[i] = conn;
        self.len += 1;
        Ok(i)
    }

    /// Removes the connection at `idx`, shifting later members of its probe run back so no
    /// tombstone is left.
    pub fn remove_at(&mut self, idx: usize) -> Conn {
        let removed = self.slots[idx];
        debug_assert!(!removed.is_free());
        let mut hole = idx;
        let mut j = (idx + 1) & self.mask;
        loop {
            let c = self.slots[j];
            if c.is_free() {
                break;
            }
            let home = self.home(&c.key());
            // Move c into the hole unless its home lies cyclically in (hole, j].
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = c;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.slots[hole] = Conn::default();
        self.len -= 1;
        // Wrap-around cursor: a shifted entry may be visited twice or skipped once by the
        // current sweep; either is harmless for ageing.
        removed
    }

    /// Removes the connection `key` belongs to, if any.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Conn> {
        self.lookup(key).map(|(i, _)| self.remove_at(i))
    }

    /// Visits up to `budget` slots from the sweep cursor and removes every connection for
    /// which `expired(conn)` is true, calling `on_expire` with it. Returns how many went.
    pub fn expire(
        &mut self,
        budget: usize,
        mut expired: impl FnMut(&Conn) -> bool,
        mut on_expire: impl FnMut(&Conn),
    ) -> usize {
        let mut n = 0;
        for _ in 0..budget.min(self.slots.len()) {
            let i = self.cursor;
            let c = self.slots[i];
            if !c.is_free() && expired(&c) {
                self.remove_at(i);
                on_expire(&c);
                n += 1;
                // The slot may now hold a shifted entry: look at it again next call.
                continue;
            }
            self.cursor = (self.cursor + 1) & self.mask;
            if self.cursor == 0 {
                self.sweeps += 1;
            }
        }
        n
    }

    /// How many times [`FlowTable::expire`] has gone all the way round the table.
    pub fn sweeps(&self) -> u64 {
        self.sweeps
    }

    /// Every slot, free or not, in table order (bounded scans for flow listings).
    pub fn slots(&self) -> &[Conn] {
        &self.slots
    }

    /// Iterates the live connections (management, not the hot path).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Conn)> {
        self.slots.iter().enumerate().filter(|(_, c)| !c.is_free())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::conn::TcpState;
    use common::wire::Ipv4Addr;
    use std::collections::HashMap;

    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            Ipv4Addr(0xc612_0000 | (i >> 16)),
            (i & 0xffff) as u16,
            Ipv4Addr::new(198, 19, 0, 2),
            80,
        )
    }

    fn conn(i: u32) -> Conn {
        Conn::new_pass(&key(i), 0, i)
    }

    #[test]
    fn insert_lookup_both_directions_remove() {
        let mut t = FlowTable::new(1024);
        for i in 0..500 {
            t.insert(conn(i)).unwrap();
        }
        assert_eq!(t.len(), 500);
        for i in 0..500 {
            let (s, d) = t.lookup(&key(i)).unwrap();
            assert_eq!(d, Direction::ClientToServer);
            assert_eq!(t.get(s).last_seen, i);
            let (s2, d2) = t.lookup(&key(i).reversed()).unwrap();
            assert_eq!((s2, d2), (s, Direction::ServerToClient));
        }
        assert_eq!(
            t.insert(conn(7)),
            Err(InsertError::Exists(t.lookup(&key(7)).unwrap().0))
        );
        for i in (0..500).step_by(2) {
            assert!(t.remove(&key(i)).is_some());
        }
        for i in 0..500 {
            assert_eq!(t.lookup(&key(i)).is_some(), i % 2 == 1, "key {i}");
        }
        assert_eq!(t.len(), 250);
    }

    #[test]
    fn refuses_at_max_load_and_accepts_again_after_removal() {
        let mut t = FlowTable::new(100);
        let max = t.max_load();
        assert!(max >= 100);
        for i in 0..max as u32 {
            t.insert(conn(i)).unwrap();
        }
        assert_eq!(t.insert(conn(max as u32)), Err(InsertError::Full));
        t.remove(&key(3)).unwrap();
        t.insert(conn(max as u32)).unwrap();
        // lookups of absent keys terminate (there is always a free slot)
        assert!(t.lookup(&key(1_000_000)).is_none());
    }

    #[test]
    fn churn_matches_a_model() {
        // Random inserts and removals against a HashMap model: backward-shift deletion must
        // never lose or duplicate an entry.
        let mut t = FlowTable::new(256);
        let mut model: HashMap<u32, ()> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % 400) as u32;
            if x & 0x100 != 0 {
                let r = t.insert(conn(i));
                match (r, model.contains_key(&i)) {
                    (Ok(_), false) => {
                        model.insert(i, ());
                    }
                    (Err(InsertError::Exists(_)), true) => {}
                    (Err(InsertError::Full), false) => assert!(t.len() >= t.max_load()),
                    other => panic!("{other:?}"),
                }
            } else {
                assert_eq!(t.remove(&key(i)).is_some(), model.remove(&i).is_some());
            }
            assert_eq!(t.len(), model.len());
        }
        for i in 0..400 {
            assert_eq!(t.lookup(&key(i)).is_some(), model.contains_key(&i));
        }
    }

    #[test]
    fn expire_in_slices() {
        let mut t = FlowTable::new(1024);
        for i in 0..300 {
            t.insert(conn(i)).unwrap();
        }
        let slots = t.memory_bytes() / t.bytes_per_slot();
        let mut gone = Vec::new();
        // Expire the even ones, 64 slots per call.
        let mut calls = 0;
        while gone.len() < 150 && calls < 10 * slots / 64 {
            t.expire(64, |c| c.last_seen % 2 == 0, |c| gone.push(c.last_seen));
            calls += 1;
        }
        assert_eq!(gone.len(), 150);
        assert!(gone.iter().all(|v| v % 2 == 0));
        assert_eq!(t.len(), 150);
        assert!(t
            .iter()
            .all(|(_, c)| c.state == TcpState::SynSent && c.last_seen % 2 == 1));
    }
}
