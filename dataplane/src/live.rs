//! What a worker shows the control plane while it runs: its counters, published to a shared
//! slot every [`PUBLISH_MS`], and bounded copies of its flows on request.
//!
//! # Counters: one slot per worker, a seqlock over atomics
//! A [`StatsSlot`] is written by exactly one worker and read by control. It is aligned to and
//! padded to whole cache lines (`align(64)`), so no two workers' slots (and nothing else) share
//! a line, and the worker writes it only every [`PUBLISH_MS`] — never per packet: between
//! publications the worker counts in plain integers ([`crate::worker::WorkerCounters`]) in its
//! own memory. A publication is a seqlock write (sequence odd, the words stored `Relaxed`,
//! sequence even with `Release`); a reader retries while the sequence is odd or changed under
//! it, so it always gets one consistent snapshot, and the worker never waits for anyone.
//!
//! # Flows by state: counted in the housekeeping sweep
//! The worker's ageing slice already visits every slot of its table, a bounded number per poll
//! ([`crate::flow_table::FlowTable::expire`]). It counts the live flows it visits by state and
//! phase into a [`FlowCensus`], and publishes the census of the last complete sweep: no extra
//! pass over the table, and no per-packet bookkeeping. The census lags by at most one sweep.
//!
//! # Flow listings: a buffer that changes hands
//! Control asks a worker for (some of) its flows by sending a [`FlowDump`] over the worker's
//! command ring: a boxed request whose `Vec` control has already allocated with room for
//! `limit` flows. The worker keeps it, and in its housekeeping slice copies the matching
//! flows of at most [`DUMP_SCAN_BUDGET`] slots per poll into it (a `push` within the capacity,
//! so no allocation), then hands the box back over the reply ring. Ownership moves with the
//! box, so nothing is shared, locked or allocated on the worker; the cost per poll is bounded
//! by the scan budget (64 KiB of table), and the listing is bounded by `limit`. Flows that
//! come and go during the scan may or may not be listed — it is a listing, not a transaction.
//! Packet and byte counts per flow are not listed: they are not in the 48-byte object, and
//! growing it for them would cost every flow a third more memory.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use common::conn::{Conn, ConnFlags, TcpState};
use common::flow::FlowKey;
use common::wire::Ipv4Addr;

use crate::datagram::{Datagram, Kind};
use crate::flow_table::Slot;

use crate::worker::WorkerCounters;

/// How often a worker publishes its counters (milliseconds of its clock).
pub const PUBLISH_MS: u32 = 100;
/// Table slots a worker scans per poll for a flow listing.
pub const DUMP_SCAN_BUDGET: usize = 1024;
/// The most flows one worker copies into one listing.
pub const FLOW_DUMP_MAX: usize = 4096;

/// Live flows by TCP state and by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCensus {
    /// Indexed by `TcpState as usize` (`Free` stays zero).
    pub by_state: [u64; TcpState::COUNT],
    /// Tracked from their SYN by a `pass` rule.
    pub pass: u64,
    /// Owned by the participating stack (the worker hands their packets to control).
    pub proxied: u64,
    /// Spliced: rewritten by their deltas.
    pub spliced: u64,
}

/// The phase of a flow as the worker sees it.
pub fn phase_of(c: &Conn) -> &'static str {
    let f = c.flags();
    if f & ConnFlags::PROXIED != 0 {
        "proxied"
    } else if f & ConnFlags::SPLICED != 0 {
        "spliced"
    } else {
        "pass"
    }
}

impl FlowCensus {
    #[inline]
    pub fn see(&mut self, c: &Conn) {
        self.by_state[c.state() as usize] += 1;
        let f = c.flags();
        if f & ConnFlags::PROXIED != 0 {
            self.proxied += 1;
        } else if f & ConnFlags::SPLICED != 0 {
            self.spliced += 1;
        } else {
            self.pass += 1;
        }
    }

    pub fn add(&mut self, o: &FlowCensus) {
        for (a, b) in self.by_state.iter_mut().zip(o.by_state.iter()) {
            *a += b;
        }
        self.pass += o.pass;
        self.proxied += o.proxied;
        self.spliced += o.spliced;
    }

    pub fn total(&self) -> u64 {
        self.pass + self.proxied + self.spliced
    }
}

/// One worker's published state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    pub counters: WorkerCounters,
    /// Flows in the worker's table (exact at publication).
    pub flows_active: u64,
    /// UDP flows and ICMP echo exchanges (exact at publication).
    pub udp_flows_active: u64,
    pub icmp_flows_active: u64,
    /// Flows by state and phase, as of the last complete housekeeping sweep.
    pub census: FlowCensus,
    /// The generation of the policy the worker applies (0 at start, +1 per reload).
    pub policy_generation: u64,
    /// The worker's clock at publication (wrapping milliseconds).
    pub published_ms: u64,
}

/// The words of a snapshot: the counters ([`WorkerCounters::to_words`]), the active flows
/// (TCP, UDP, ICMP), the census (every state, then pass, proxied, spliced), the generation
/// and the clock.
const WORDS: usize = WorkerCounters::WORDS + 3 + TcpState::COUNT + 3 + 2;

impl WorkerSnapshot {
    fn to_words(self) -> [u64; WORDS] {
        let mut w = [0u64; WORDS];
        let mut i = 0;
        for v in self
            .counters
            .to_words()
            .iter()
            .chain(
                [
                    self.flows_active,
                    self.udp_flows_active,
                    self.icmp_flows_active,
                ]
                .iter(),
            )
            .chain(self.census.by_state.iter())
            .chain(
                [
                    self.census.pass,
                    self.census.proxied,
                    self.census.spliced,
                    self.policy_generation,
                    self.published_ms,
                ]
                .iter(),
            )
        {
            w[i] = *v;
            i += 1;
        }
        debug_assert_eq!(i, WORDS);
        w
    }

    fn from_words(w: &[u64; WORDS]) -> WorkerSnapshot {
        let (counters, rest) = w.split_at(WorkerCounters::WORDS);
        let mut counter_words = [0u64; WorkerCounters::WORDS];
        counter_words.copy_from_slice(counters);
        let mut it = rest.iter().copied();
        let mut next = || it.next().unwrap_or(0);
        let flows_active = next();
        let udp_flows_active = next();
        let icmp_flows_active = next();
        let mut census = FlowCensus::default();
        for s in census.by_state.iter_mut() {
            *s = next();
        }
        census.pass = next();
        census.proxied = next();
        census.spliced = next();
        WorkerSnapshot {
            counters: WorkerCounters::from_words(&counter_words),
            flows_active,
            udp_flows_active,
            icmp_flows_active,
            census,
            policy_generation: next(),
            published_ms: next(),
        }
    }
}

/// One worker's published counters (see the module documentation).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct StatsSlot {
    /// Even: stable; odd: a publication is being written. Zero: nothing published yet.
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

/// How often a reader retries a snapshot that changed under it before giving up this time.
const READ_RETRIES: usize = 10_000;

impl Default for StatsSlot {
    fn default() -> Self {
        StatsSlot {
            seq: AtomicU64::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl StatsSlot {
    pub fn new() -> StatsSlot {
        StatsSlot::default()
    }

    /// Publishes `s`. Only the slot's worker calls this (one writer): a seqlock write.
    pub fn publish(&self, s: &WorkerSnapshot) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // The odd sequence is visible before any word changes.
        fence(Ordering::Release);
        for (slot, v) in self.words.iter().zip(s.to_words()) {
            slot.store(v, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The last published snapshot: `None` before the first publication, or if the writer
    /// kept changing it through every retry (the caller keeps its previous one).
    pub fn read(&self) -> Option<WorkerSnapshot> {
        for _ in 0..READ_RETRIES {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut w = [0u64; WORDS];
            for (v, slot) in w.iter_mut().zip(self.words.iter()) {
                *v = slot.load(Ordering::Relaxed);
            }
            // The word loads happen before the second sequence load.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(WorkerSnapshot::from_words(&w));
            }
        }
        None
    }

    /// How many publications there have been.
    pub fn publications(&self) -> u64 {
        self.seq.load(Ordering::Relaxed) / 2
    }
}

/// Which flows a listing wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// Either end's address inside this network (address, prefix length).
    pub net: Option<(Ipv4Addr, u8)>,
    /// Either end's port.
    pub port: Option<u16>,
}

impl FlowFilter {
    #[inline]
    pub fn matches(&self, c: &Conn) -> bool {
        self.matches_key(&c.key())
    }

    /// Whether a flow keyed `k` (either way round) is wanted.
    #[inline]
    pub fn matches_key(&self, k: &FlowKey) -> bool {
        let net_ok = match self.net {
            None => true,
            Some((addr, len)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len.min(32)))
                };
                (k.src.0 & mask) == (addr.0 & mask) || (k.dst.0 & mask) == (addr.0 & mask)
            }
        };
        let port_ok = match self.port {
            None => true,
            Some(p) => k.sport == p || k.dport == p,
        };
        net_ok && port_ok
    }

    /// Parses `CIDR`, `ADDRESS`, `PORT`, or `CIDR:PORT` / `ADDRESS:PORT` / `:PORT`.
    pub fn parse(s: &str) -> Result<FlowFilter, String> {
        let s = s.trim();
        let bad = || format!("bad flow filter {s:?}: want CIDR, ADDRESS, PORT or CIDR:PORT");
        if s.is_empty() {
            return Ok(FlowFilter::default());
        }
        if let Ok(p) = s.parse::<u16>() {
            return Ok(FlowFilter {
                net: None,
                port: Some(p),
            });
        }
        let (net, port) = match s.rsplit_once(':') {
            Some((n, p)) => (n, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net = if net.is_empty() {
            None
        } else {
            let (a, len) = match net.split_once('/') {
                Some((a, l)) => (
                    a,
                    l.parse::<u8>().ok().filter(|l| *l <= 32).ok_or_else(bad)?,
                ),
                None => (net, 32),
            };
            let a: std::net::Ipv4Addr = a.parse().map_err(|_| bad())?;
            Some((Ipv4Addr::from(a), len))
        };
        Ok(FlowFilter { net, port })
    }
}

/// A flow listing on its way through a worker (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDump {
    /// Control's number for the request.
    pub request: u64,
    pub filter: FlowFilter,
    /// The most flows to copy (at most the capacity control gave `flows`).
    pub limit: usize,
    /// The copies. Allocated by control with room for `limit`; the worker never grows it.
    pub flows: Vec<Conn>,
    /// The UDP flows and ICMP echo exchanges, as `flows` (with the same room).
    pub datagrams: Vec<(Kind, Datagram)>,
    /// Which table the scan is in: TCP, then UDP, then ICMP.
    pub table: u8,
    /// Flows that matched the filter, copied or not.
    pub matched: u64,
    /// Flows in the worker's table when the scan ended.
    pub total: u64,
    /// The worker that filled it, and its clock when it was done (for idle times).
    pub worker: u16,
    pub now_ms: u32,
    /// The next slot to scan.
    pub cursor: usize,
}

impl FlowDump {
    /// A request for up to `limit` (≤ [`FLOW_DUMP_MAX`]) flows matching `filter`.
    pub fn new(request: u64, filter: FlowFilter, limit: usize) -> Box<FlowDump> {
        let limit = limit.min(FLOW_DUMP_MAX);
        Box::new(FlowDump {
            request,
            filter,
            limit,
            flows: Vec::with_capacity(limit),
            datagrams: Vec::with_capacity(limit),
            table: 0,
            matched: 0,
            total: 0,
            worker: 0,
            now_ms: 0,
            cursor: 0,
        })
    }

    /// Scans up to `budget` slots of `slots` from the cursor; returns true when the scan has
    /// reached the end. Never allocates: a flow past `limit` or past the capacity is only
    /// counted.
    pub fn scan(&mut self, slots: &[Conn], budget: usize) -> bool {
        let end = self.cursor.saturating_add(budget).min(slots.len());
        let room = self.room();
        for c in &slots[self.cursor.min(end)..end] {
            if c.is_free() || !self.filter.matches(c) {
                continue;
            }
            self.matched += 1;
            if self.flows.len() + self.datagrams.len() < room {
                self.flows.push(*c);
            }
        }
        self.cursor = end;
        end >= slots.len()
    }

    /// As [`FlowDump::scan`], over a table of datagram flows of `kind`.
    pub fn scan_datagrams(&mut self, kind: Kind, slots: &[Datagram], budget: usize) -> bool {
        let end = self.cursor.saturating_add(budget).min(slots.len());
        let room = self.room();
        for d in &slots[self.cursor.min(end)..end] {
            if d.is_free() || !self.filter.matches_key(&d.key) {
                continue;
            }
            self.matched += 1;
            if self.flows.len() + self.datagrams.len() < room {
                self.datagrams.push((kind, *d));
            }
        }
        self.cursor = end;
        end >= slots.len()
    }

    /// How many flows of all kinds fit, allocated by control.
    fn room(&self) -> usize {
        self.limit
            .min(self.flows.capacity())
            .min(self.datagrams.capacity())
    }
}

/// What a worker hands back to control outside the packet ring.
#[derive(Debug)]
pub enum Reply {
    /// A finished flow listing.
    Flows(Box<FlowDump>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::DropReason;
    use common::flow::FlowKey;
    use std::sync::Arc;

    fn snap(k: u64) -> WorkerSnapshot {
        let mut s = WorkerSnapshot::default();
        s.counters.rx = k;
        s.counters.tx = k + 1;
        s.counters.ignored = k + 2;
        s.counters.drops_captured = k + 9;
        s.counters.capture_ring_full = k + 10;
        s.counters.drops.0[DropReason::COUNT - 1] = k + 3;
        s.flows_active = k + 4;
        s.udp_flows_active = k + 11;
        s.icmp_flows_active = k + 12;
        s.census.by_state[TcpState::Established as usize] = k + 5;
        s.census.spliced = k + 6;
        s.policy_generation = k + 7;
        s.published_ms = k + 8;
        s
    }

    #[test]
    fn words_round_trip() {
        let s = snap(100);
        assert_eq!(WorkerSnapshot::from_words(&s.to_words()), s);
    }

    /// Every word of a snapshot, each a distinct value, comes back where it was.
    #[test]
    fn every_word_round_trips() {
        let w: [u64; WORDS] = std::array::from_fn(|i| 100 + i as u64);
        assert_eq!(WorkerSnapshot::from_words(&w).to_words(), w);
    }

    #[test]
    fn slot_is_cache_line_padded() {
        assert_eq!(std::mem::align_of::<StatsSlot>(), 64);
        assert_eq!(std::mem::size_of::<StatsSlot>() % 64, 0);
    }

    #[test]
    fn nothing_before_the_first_publication() {
        let slot = StatsSlot::new();
        assert_eq!(slot.read(), None);
        slot.publish(&snap(1));
        assert_eq!(slot.read(), Some(snap(1)));
        assert_eq!(slot.publications(), 1);
    }

    /// A reader racing a writer only ever sees whole snapshots.
    #[test]
    fn concurrent_reads_are_never_torn() {
        let slot = Arc::new(StatsSlot::new());
        slot.publish(&snap(0));
        let w = Arc::clone(&slot);
        let writer = std::thread::spawn(move || {
            for k in 1..20_000u64 {
                w.publish(&snap(k * 10));
            }
        });
        let mut seen = 0;
        let mut last = 0;
        while !writer.is_finished() || seen == 0 {
            if let Some(s) = slot.read() {
                let k = s.counters.rx;
                assert_eq!(s, snap(k), "torn snapshot");
                assert!(k >= last, "went backwards");
                last = k;
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(slot.read(), Some(snap(199_990)));
    }

    fn conn(i: u32, port: u16) -> Conn {
        let key = FlowKey::new(
            Ipv4Addr::new(198, 18, 0, (i % 200) as u8 + 1),
            10_000 + i as u16,
            Ipv4Addr::new(198, 19, 0, 2),
            port,
        );
        let mut c = Conn::new_pass(&key, 0);
        c.set_state(TcpState::Established);
        c
    }

    #[test]
    fn filters() {
        let c = conn(0, 9000);
        let f = |s: &str| FlowFilter::parse(s).unwrap();
        assert!(f("").matches(&c));
        assert!(f("9000").matches(&c));
        assert!(f("10000").matches(&c));
        assert!(!f("9001").matches(&c));
        assert!(f("198.18.0.0/24").matches(&c));
        assert!(f("198.19.0.2").matches(&c));
        assert!(!f("198.20.0.0/16").matches(&c));
        assert!(f("198.18.0.0/15:9000").matches(&c));
        assert!(!f("198.18.0.0/15:80").matches(&c));
        assert!(f(":9000").matches(&c));
        assert!(f("0.0.0.0/0").matches(&c));
        for bad in ["x", "198.18.0.0/33", "1.2.3.4:x", "1.2.3/8"] {
            assert!(FlowFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_dump_is_bounded_and_never_grows() {
        let mut slots = vec![Conn::default(); 5000];
        for i in 0..1000u32 {
            slots[i as usize * 5] = conn(i, if i % 2 == 0 { 9000 } else { 80 });
        }
        let mut d = FlowDump::new(7, FlowFilter::parse("9000").unwrap(), 10);
        let cap = d.flows.capacity();
        let mut polls = 0;
        while !d.scan(&slots, DUMP_SCAN_BUDGET) {
            polls += 1;
            assert!(polls < 100);
        }
        assert_eq!(polls, 4, "5000 slots at 1024 a poll");
        assert_eq!(d.flows.len(), 10);
        assert_eq!(d.matched, 500);
        assert_eq!(d.flows.capacity(), cap);
        assert!(d.flows.iter().all(|c| c.server_port == 9000));
        assert!(FlowDump::new(0, FlowFilter::default(), usize::MAX).limit <= FLOW_DUMP_MAX);
    }
}
