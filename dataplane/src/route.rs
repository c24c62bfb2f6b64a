//! Routing between the box's interfaces (ports and VLANs): connected subnets of each, then
//! static routes, longest prefix first; and the worker's copy of the neighbour table.
//!
//! Both are small (a box has a handful of prefixes and, per worker, the next hops it has
//! used), so lookups are linear scans over arrays fixed at start: no allocation and no hashing
//! on the hot path. The neighbour table is filled only by control commands; a miss sends the
//! packet to control, which resolves it with ARP and tells every worker.

use common::config::{Config, Iface};
use common::wire::{Ipv4Addr, MacAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    network: u32,
    mask: u32,
    prefix: u8,
    out: Iface,
    /// `None` for a connected subnet: the destination itself is the next hop.
    via: Option<Ipv4Addr>,
}

/// The routing table, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Router {
    entries: Vec<Entry>,
    own: Vec<(Ipv4Addr, Iface)>,
}

/// Where a routed packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub out: Iface,
    pub ip: Ipv4Addr,
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let mut entries = Vec::new();
        let mut own = Vec::new();
        for (i, link) in cfg.links().iter().enumerate() {
            let iface = Iface(i as u8);
            for c in &link.addresses {
                own.push((c.addr, iface));
                entries.push(Entry {
                    network: c.network().0,
                    mask: c.mask(),
                    prefix: c.prefix,
                    out: iface,
                    via: None,
                });
            }
        }
        for r in &cfg.routes {
            entries.push(Entry {
                network: r.to.network().0,
                mask: r.to.mask(),
                prefix: r.to.prefix,
                out: r.interface,
                via: Some(r.via),
            });
        }
        // Longest prefix first; connected before static at equal length (stable sort).
        entries.sort_by_key(|e| std::cmp::Reverse(e.prefix));
        Router { entries, own }
    }

    /// The next hop for `dst`, if any route covers it.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        self.entries
            .iter()
            .find(|e| dst.0 & e.mask == e.network)
            .map(|e| NextHop {
                out: e.out,
                ip: e.via.unwrap_or(dst),
            })
    }

    /// Whether `ip` is one of the box's own addresses (on any interface).
    #[inline]
    pub fn is_own(&self, ip: Ipv4Addr) -> bool {
        self.own.iter().any(|(a, _)| *a == ip)
    }

    /// The box's own address on `side` facing `peer` (for ARP requests and ICMP errors).
    pub fn own_address(&self, side: Iface, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        let mut first = None;
        for e in self
            .entries
            .iter()
            .filter(|e| e.out == side && e.via.is_none())
        {
            let addr = self
                .own
                .iter()
                .find(|(a, s)| *s == side && a.0 & e.mask == e.network)
                .map(|(a, _)| *a);
            if peer.0 & e.mask == e.network {
                return addr;
            }
            first = first.or(addr);
        }
        first
    }
}

/// A worker's neighbour cache: next-hop IP → MAC, per interface, fixed capacity.
///
/// Looked up for every forwarded packet, so it is a hash table (linear probing, at most half
/// full, backward-shift deletion), not a list: an interface on a /24 of clients has up to 254
/// neighbours. All memory is allocated at start; when full, the oldest entry makes room (the
/// control plane holds the authoritative table and re-sends an entry on the next miss).
#[derive(Debug, Clone)]
pub struct Neighbours {
    slots: Box<[Option<(Iface, Ipv4Addr, MacAddr)>]>,
    /// `64 - log2(slots)`: the index is the top bits of a multiplicative hash.
    shift: u32,
    /// Keys in the order they were added, for eviction (never grows beyond `cap`).
    order: std::collections::VecDeque<(Iface, Ipv4Addr)>,
    cap: usize,
}

impl Neighbours {
    pub fn new(cap: usize) -> Neighbours {
        let cap = cap.max(1);
        let n = (cap * 2).next_power_of_two();
        Neighbours {
            slots: vec![None; n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
            order: std::collections::VecDeque::with_capacity(cap),
            cap,
        }
    }

    #[inline]
    fn home(&self, side: Iface, ip: Ipv4Addr) -> usize {
        let k = u64::from(ip.0) | (u64::from(side.0) << 32);
        (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    fn find(&self, side: Iface, ip: Ipv4Addr) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(side, ip);
        // At most half full: a free slot always ends the probe.
        loop {
            match self.slots[i] {
                None => return None,
                Some((s, a, _)) if s == side && a == ip => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    #[inline]
    pub fn get(&self, side: Iface, ip: Ipv4Addr) -> Option<MacAddr> {
        self.find(side, ip)
            .and_then(|i| self.slots[i])
            .map(|(_, _, m)| m)
    }

    /// Sets or (with `None`) removes an entry.
    pub fn set(&mut self, side: Iface, ip: Ipv4Addr, mac: Option<MacAddr>) {
        match (self.find(side, ip), mac) {
            (Some(i), Some(m)) => self.slots[i] = Some((side, ip, m)),
            (Some(i), None) => {
                self.remove_at(i);
                self.order.retain(|&k| k != (side, ip));
            }
            (None, Some(m)) => {
                if self.order.len() == self.cap {
                    if let Some((s, a)) = self.order.pop_front() {
                        if let Some(i) = self.find(s, a) {
                            self.remove_at(i);
                        }
                    }
                }
                let mask = self.slots.len() - 1;
                let mut i = self.home(side, ip);
                while self.slots[i].is_some() {
                    i = (i + 1) & mask;
                }
                self.slots[i] = Some((side, ip, m));
                self.order.push_back((side, ip));
            }
            (None, None) => {}
        }
    }

    /// Empties slot `i` and moves later members of its probe run back, so no lookup ever
    /// stops short at the hole.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        self.slots[hole] = None;
        let mut j = (hole + 1) & mask;
        while let Some((s, a, _)) = self.slots[j] {
            let home = self.home(s, a);
            // Move j back into the hole unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
            j = (j + 1) & mask;
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{INSIDE, OUTSIDE};

    fn hop(out: Iface, ip: Ipv4Addr) -> Option<NextHop> {
        Some(NextHop { out, ip })
    }

    /// Checks each (destination, next hop) pair against the router.
    fn lookups(r: &Router, cases: &[(Ipv4Addr, Option<NextHop>)]) {
        for (dst, want) in cases {
            assert_eq!(r.lookup(*dst), *want, "to {dst:?}");
        }
    }

    fn cfg() -> Config {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/testbed.yaml"
        ))
        .unwrap();
        common::config::parse(&text, "testbed.yaml").unwrap()
    }

    #[test]
    fn connected_subnets_route_to_their_port() {
        let r = Router::new(&cfg());
        let server = Ipv4Addr::new(198, 19, 0, 2);
        let client = Ipv4Addr::new(198, 18, 0, 1);
        lookups(
            &r,
            &[
                (server, hop(OUTSIDE, server)),
                (client, hop(INSIDE, client)),
                (Ipv4Addr::new(203, 0, 113, 1), None),
            ],
        );
        assert!(r.is_own(Ipv4Addr::new(198, 18, 0, 254)));
        assert!(!r.is_own(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(
            r.own_address(OUTSIDE, Ipv4Addr::new(198, 19, 0, 2)),
            Some(Ipv4Addr::new(198, 19, 0, 254))
        );
    }

    #[test]
    fn static_routes_longest_prefix_first() {
        let mut c = cfg();
        c.routes.push(common::config::Route {
            to: "0.0.0.0/0".parse().unwrap(),
            via: Ipv4Addr::new(198, 19, 0, 1),
            interface: OUTSIDE,
        });
        c.routes.push(common::config::Route {
            to: "203.0.113.0/24".parse().unwrap(),
            via: Ipv4Addr::new(198, 18, 0, 9),
            interface: INSIDE,
        });
        let r = Router::new(&c);
        lookups(
            &r,
            &[
                (
                    Ipv4Addr::new(203, 0, 113, 7),
                    hop(INSIDE, Ipv4Addr::new(198, 18, 0, 9)),
                ),
                (
                    Ipv4Addr::new(8, 8, 8, 8),
                    hop(OUTSIDE, Ipv4Addr::new(198, 19, 0, 1)),
                ),
            ],
        );
        // connected beats the default route
        assert_eq!(r.lookup(Ipv4Addr::new(198, 18, 0, 1)).unwrap().out, INSIDE);
    }

    #[test]
    fn neighbours_set_replace_remove_and_evict() {
        let mut n = Neighbours::new(2);
        let m1 = MacAddr([2, 0, 0, 0, 0, 1]);
        let m2 = MacAddr([2, 0, 0, 0, 0, 2]);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let c = Ipv4Addr::new(198, 18, 0, 3);
        n.set(INSIDE, a, Some(m1));
        assert_eq!(n.get(INSIDE, a), Some(m1));
        assert_eq!(n.get(OUTSIDE, a), None);
        n.set(INSIDE, a, Some(m2));
        assert_eq!(n.get(INSIDE, a), Some(m2));
        n.set(INSIDE, b, Some(m1));
        n.set(INSIDE, c, Some(m1));
        assert_eq!(n.len(), 2);
        assert_eq!(n.get(INSIDE, a), None, "oldest evicted");
        n.set(INSIDE, b, None);
        assert_eq!(n.get(INSIDE, b), None);
    }

    #[test]
    fn neighbours_match_a_list_under_churn() {
        // A model: the old list implementation (oldest evicted first).
        let cap = 8;
        let mut n = Neighbours::new(cap);
        let mut model: Vec<(Iface, Ipv4Addr, MacAddr)> = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let side = Iface((x & 3) as u8);
            let ip = Ipv4Addr::new(198, 18, 0, (x >> 8) as u8 % 24);
            let mac = !(x >> 16).is_multiple_of(4);
            let m = MacAddr([2, 0, 0, 0, (step >> 8) as u8, step as u8]);
            n.set(side, ip, mac.then_some(m));
            let pos = model.iter().position(|&(s, a, _)| s == side && a == ip);
            match (pos, mac) {
                (Some(i), true) => model[i].2 = m,
                (Some(i), false) => {
                    model.remove(i);
                }
                (None, true) => {
                    if model.len() == cap {
                        model.remove(0);
                    }
                    model.push((side, ip, m));
                }
                (None, false) => {}
            }
            assert_eq!(n.len(), model.len(), "step {step}");
            for last in 0..24u8 {
                for side in (0..4).map(Iface) {
                    let a = Ipv4Addr::new(198, 18, 0, last);
                    let want = model.iter().find(|e| e.0 == side && e.1 == a).map(|e| e.2);
                    assert_eq!(n.get(side, a), want, "step {step}: {side:?} {a}");
                }
            }
        }
    }
}
