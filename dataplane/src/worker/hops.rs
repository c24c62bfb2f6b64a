//! The vector path's next hops by destination and ingress interface: a small direct-mapped
//! cache in front of the own-address, route and neighbour lookups, so that traffic to many
//! clients (where consecutive packets rarely share a destination) pays for those lookups
//! once per destination, not once per packet.
//!
//! It caches the answer of `Worker::fast_hop` as it is, "the slow path decides" included,
//! and is emptied whenever that answer can change: a neighbour entry set or removed, a
//! reload (routes, addresses, interfaces). Emptying is a generation bump, not a sweep.

use common::config::Iface;
use common::rewrite::Hop;
use common::wire::Ipv4Addr;

/// Entries: a power of two. A /24 of clients fits without a collision.
const ENTRIES: usize = 256;

/// One destination seen from one ingress interface.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// The cache's generation when the entry was written (0: never written).
    generation: u32,
    dst: Ipv4Addr,
    ingress: Iface,
    /// The egress port and next hop, or `None` when the slow path decides.
    hop: Option<(u8, Hop)>,
}

#[derive(Debug)]
pub(super) struct HopCache {
    entries: Box<[Entry; ENTRIES]>,
    /// Starts at 1, so a zeroed entry is never current.
    generation: u32,
}

impl HopCache {
    pub(super) fn new() -> HopCache {
        HopCache {
            entries: Box::new([Entry::default(); ENTRIES]),
            generation: 1,
        }
    }

    #[inline(always)]
    fn index(dst: Ipv4Addr, ingress: Iface) -> usize {
        let k = u64::from(dst.0) | u64::from(ingress.0) << 32;
        (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - ENTRIES.trailing_zeros())) as usize
    }

    /// The cached answer for `dst` from `ingress`: `None` when there is none, `Some(None)`
    /// when the slow path decides.
    #[inline(always)]
    pub(super) fn get(&self, dst: Ipv4Addr, ingress: Iface) -> Option<Option<(usize, Hop)>> {
        let e = &self.entries[Self::index(dst, ingress)];
        (e.generation == self.generation && e.dst == dst && e.ingress == ingress)
            .then(|| e.hop.map(|(port, hop)| (usize::from(port), hop)))
    }

    #[inline]
    pub(super) fn put(&mut self, dst: Ipv4Addr, ingress: Iface, hop: Option<(usize, Hop)>) {
        // Ports are at most 32 (the configuration's limit); a larger index is not cached.
        let Ok(hop) = hop
            .map(|(port, h)| u8::try_from(port).map(|p| (p, h)))
            .transpose()
        else {
            return;
        };
        self.entries[Self::index(dst, ingress)] = Entry {
            generation: self.generation,
            dst,
            ingress,
            hop,
        };
    }

    /// Forgets every entry.
    pub(super) fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped round: entries from 2³² generations ago would look current.
            self.entries.fill(Entry::default());
            self.generation = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::MacAddr;

    fn hop(n: u8) -> Hop {
        Hop {
            src: MacAddr([2, 0, 0, 0, 0, n]),
            dst: MacAddr([2, 0, 0, 0, 1, n]),
        }
    }

    #[test]
    fn answers_what_was_put_for_that_destination_and_ingress_until_cleared() {
        let mut c = HopCache::new();
        let a = Ipv4Addr::new(198, 18, 0, 10);
        let b = Ipv4Addr::new(198, 18, 0, 11);
        assert_eq!(c.get(a, Iface(0)).map(|h| h.map(|x| x.0)), None);
        c.put(a, Iface(0), Some((1, hop(1))));
        c.put(b, Iface(0), None);
        assert_eq!(c.get(a, Iface(0)), Some(Some((1, hop(1)))));
        assert_eq!(c.get(b, Iface(0)), Some(None), "the slow path decides");
        assert_eq!(
            c.get(a, Iface(1)),
            None,
            "another ingress is another question"
        );
        c.clear();
        assert_eq!(c.get(a, Iface(0)), None);
        assert_eq!(c.get(b, Iface(0)), None);
    }

    #[test]
    fn colliding_destinations_replace_each_other_and_never_answer_for_one_another() {
        let mut c = HopCache::new();
        let dsts: Vec<Ipv4Addr> = (0..4 * ENTRIES as u32)
            .map(|i| Ipv4Addr(0xc612_0000 + i))
            .collect();
        for (i, d) in dsts.iter().enumerate() {
            c.put(*d, Iface(0), Some((i % 4, hop(i as u8))));
        }
        let mut hits = 0;
        for (i, d) in dsts.iter().enumerate() {
            if let Some(h) = c.get(*d, Iface(0)) {
                assert_eq!(h, Some((i % 4, hop(i as u8))), "{d:?}");
                hits += 1;
            }
        }
        assert!(hits > 0 && hits <= ENTRIES, "{hits}");
    }

    #[test]
    fn the_generation_wrapping_round_forgets_everything() {
        let mut c = HopCache::new();
        let a = Ipv4Addr::new(198, 18, 0, 10);
        c.put(a, Iface(0), Some((0, hop(0))));
        c.generation = u32::MAX;
        c.entries[HopCache::index(a, Iface(0))].generation = 1;
        c.clear();
        assert_eq!(c.generation, 1);
        assert_eq!(c.get(a, Iface(0)), None);
    }
}
