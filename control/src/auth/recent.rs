//! A bounded map that remembers in which order its entries were last written: the auth cache
//! (by login) and the rate limiter (by address) both evict the entry written longest ago when
//! full and purge from the oldest end, so a purge walks only the entries it removes.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

#[derive(Debug, Clone)]
struct Stamped<V> {
    value: V,
    stamp: u64,
}

/// At most `capacity` entries (at least 1), each stamped by its last write.
#[derive(Debug, Clone)]
pub(crate) struct Recent<K, V> {
    entries: HashMap<K, Stamped<V>>,
    /// Write stamp → key, oldest first: the eviction and purge order.
    order: BTreeMap<u64, K>,
    next_stamp: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Recent<K, V> {
    pub fn new(capacity: usize) -> Self {
        Recent {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            capacity: capacity.max(1),
        }
    }

    /// Puts `value` under `key`, replacing what was there, as the newest entry.
    pub fn insert(&mut self, key: K, value: V) {
        let stamp = self.restamp(&key);
        self.entries.insert(key, Stamped { value, stamp });
    }

    /// The value under `key` (`make()` if there is none) to change, made the newest entry.
    pub fn update(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let stamp = self.restamp(&key);
        let e = self.entries.entry(key).or_insert_with(|| Stamped {
            value: make(),
            stamp,
        });
        e.stamp = stamp;
        &mut e.value
    }

    /// A new stamp for `key`, in the order in place of its old one; for a key not there yet
    /// the oldest entries go first until one more fits.
    fn restamp(&mut self, key: &K) -> u64 {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some(e) = self.entries.get(key) {
            self.order.remove(&e.stamp);
        } else {
            while self.entries.len() >= self.capacity {
                let Some((_, old)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&old);
            }
        }
        self.order.insert(stamp, key.clone());
        stamp
    }

    /// Reading or changing a value leaves its place in the order.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order
            .values()
            .filter_map(|k| Some((k, &self.entries.get(k)?.value)))
    }

    /// Removes entries from the oldest on while `expired` says so.
    pub fn purge_while(&mut self, mut expired: impl FnMut(&V) -> bool) {
        while let Some(oldest) = self.order.first_entry() {
            if !expired(&self.entries[oldest.get()].value) {
                break;
            }
            self.entries.remove(&oldest.remove());
        }
    }

    /// Keeps the entries `keep` says to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|key, e| {
            let k = keep(key, &e.value);
            if !k {
                order.remove(&e.stamp);
            }
            k
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the order holds exactly the entries, each once under its own stamp (what every
    /// change above must leave).
    #[cfg(test)]
    pub fn is_consistent(&self) -> bool {
        self.order.len() == self.entries.len()
            && self
                .order
                .iter()
                .all(|(s, k)| self.entries.get(k).is_some_and(|e| e.stamp == *s))
    }
}
