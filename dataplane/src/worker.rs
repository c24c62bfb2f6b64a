//! The poll-mode worker: one per lcore, owning RX/TX queue *i* of every port and shard *i* of
//! the flow table (DESIGN.md §2, §3).
//!
//! One call of [`Worker::poll`] is one turn of the loop: apply control commands, receive a
//! burst from each port and give every packet a [`Verdict`], flush the TX buffers, age a slice
//! of the flow table. The lcore loop calls [`Worker::turn`] instead, which does the same but,
//! while the ports keep filling whole bursts, leaves out everything except RX, processing and
//! TX on all but one turn in [`HOUSEKEEPING_EVERY`]: the clock, the rings from control and the
//! ageing then cost nothing on most turns of a saturated worker. Nothing here allocates, locks
//! or logs per packet: bursts and TX buffers
//! are inline arrays, the flow table and neighbour cache are sized at start, rings are
//! lock-free and a full ring or TX queue is a counted drop. Time is passed in (`now_ms`,
//! wrapping milliseconds), so the same code runs under DPDK and in the simulation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::config::{first_match, Action, Iface, Traffic, Zone};
use common::conn::TsEdit;
use common::conn::{Conn, ConnFlags, TcpState};
use common::flow::{Direction, FlowKey};
use common::rewrite::split::{plan_split, write_piece, NoSplit};
use common::rewrite::{
    apply_ts_insert, plan_ts_insert, rewrite_frame_mapped, unrewrite_icmp_quote, Hop, RewriteError,
};
use common::seq::SeqNumber;
use common::wire::ethernet::{EtherType, EthernetFrame};
use common::wire::icmp::IcmpPacket;
use common::wire::ipv4::{Ipv4Packet, Protocol};
use common::wire::tcp::{flags, OptionMap, TcpPacket};
use common::wire::{Ipv4Addr, MacAddr};

use crate::context::{Context, ForwardMode};
use crate::contract::{Command, FromControl, ToControl, Why, WorkerRings};
use crate::datagram::{Datagrams, Kind};
use crate::flow_table::{FlowTable, InsertError};
use crate::iface::{retag, tag_for, Retag};
use crate::live::{
    FlowCensus, FlowDump, Reply, StatsSlot, WorkerSnapshot, DUMP_SCAN_BUDGET, PUBLISH_MS,
};
use crate::packet::{Burst, Packet, BURST};
use crate::port::{flow_key_of, PortQueue};
use crate::rate::TokenBucket;
use crate::route::Neighbours;
use crate::steer::Steering;
use crate::track::{init_from_syn, track, Segment, TrackVerdict};
use crate::verdict::{DropReason, Verdict};

mod counters;
mod datagram;
mod dispatch;
mod handoff;
mod hops;
mod new_flow;
mod vector;
pub use counters::WorkerCounters;

/// The zone a packet arrives from and the zone its route leaves into: what the policy
/// matches besides the packet itself.
#[derive(Debug, Clone, Copy)]
struct Zones {
    from: Zone,
    to: Zone,
}

impl Zones {
    /// What the policy is asked about a packet between these zones.
    #[inline]
    fn traffic(self, protocol: u8, src: Ipv4Addr, dst: Ipv4Addr, dport: Option<u16>) -> Traffic {
        Traffic {
            from: self.from,
            to: self.to,
            protocol,
            src,
            dst,
            dport,
        }
    }
}

/// A packet's flow key and its symmetric hash, computed once per burst (see
/// [`Worker::prefetch_flows`]).
type Hashed = (FlowKey, u32);

/// TX buffer size per port: two bursts, flushed when full and at the end of every poll.
const TX_BUFFER: usize = 2 * BURST;
/// Times a flush retries a TX queue that took only part of a burst before dropping the rest.
const TX_RETRIES: usize = 4;
/// Flow-table slots aged per poll.
const EXPIRE_BUDGET: usize = 64;
/// While RX bursts come back full, [`Worker::turn`] reads the clock, applies commands, takes
/// the control plane's packets and ages the table once in this many turns (about half a
/// millisecond of a saturated worker, so commands are still served promptly); any turn whose
/// bursts were not full is followed by a complete one.
pub const HOUSEKEEPING_EVERY: u32 = 64;
/// How many skipped turns a housekeeping turn makes up for: its budgets for packets from
/// control and for ageing are this many times a turn's, at most, so a busy worker neither
/// throttles the participating stack's traffic to one burst per 64 turns nor falls behind on
/// ageing, and no single turn stalls the ports for long.
const CATCH_UP: usize = 8;
/// Commands applied per poll, so a flood of commands cannot starve the ports.
const COMMAND_BUDGET: usize = 64;
/// Next hops a worker caches.
const NEIGHBOURS: usize = 256;

pub struct Worker<Q: PortQueue> {
    pub id: u16,
    ports: Vec<Q>,
    ctx: Arc<Context>,
    table: FlowTable,
    datagrams: Datagrams,
    neighbours: Neighbours,
    /// The vector path's next hops by destination, in front of the router and `neighbours`.
    hops: hops::HopCache,
    rings: WorkerRings<Q::Pkt>,
    /// One TX buffer per port.
    tx: Vec<Burst<Q::Pkt, TX_BUFFER>>,
    pub counters: WorkerCounters,
    /// Where the counters are published for control (see `crate::live`).
    slot: Arc<StatsSlot>,
    last_publish: u32,
    /// The census of the sweep in progress, and of the last complete one.
    census: FlowCensus,
    last_census: FlowCensus,
    sweeps: u64,
    /// A flow listing being filled in the housekeeping slices.
    dump: Option<Box<FlowDump>>,
    /// The clock as the last complete turn read it ([`Worker::turn`] reuses it in between).
    now_ms: u32,
    /// Turns since the last complete one.
    light_turns: u32,
    /// The last turn's RX filled a whole burst on some port: more is waiting.
    backlog: bool,
    /// The drop capture's rate, this worker's share (zero: drops are not captured).
    capture: TokenBucket,
    /// Whether bursts take the vector path (`worker::vector`); off, every packet takes
    /// [`Worker::process`] (the reference the differential tests compare with).
    vector: bool,
}

impl<Q: PortQueue> Worker<Q> {
    /// `ports` are this worker's queue pair on every port, in the configuration's order.
    pub fn new(id: u16, ports: Vec<Q>, ctx: Arc<Context>, rings: WorkerRings<Q::Pkt>) -> Self {
        let tx = ports.iter().map(|_| Burst::new()).collect();
        Worker {
            tx,
            id,
            ports,
            capture: TokenBucket::new(ctx.drop_capture_share(id)),
            table: FlowTable::new(ctx.flows_per_worker),
            datagrams: Datagrams::new(
                ctx.datagrams_per_worker,
                ctx.udp_timeout_ms,
                ctx.icmp_timeout_ms,
            ),
            ctx,
            neighbours: Neighbours::new(NEIGHBOURS),
            hops: hops::HopCache::new(),
            rings,
            counters: WorkerCounters::default(),
            slot: Arc::new(StatsSlot::new()),
            last_publish: 0,
            census: FlowCensus::default(),
            last_census: FlowCensus::default(),
            sweeps: 0,
            dump: None,
            now_ms: 0,
            light_turns: 0,
            backlog: false,
            vector: true,
        }
    }

    /// Sends every packet through [`Worker::process`], the slow path: the reference the
    /// vector path is compared with.
    pub fn slow_path_only(&mut self) {
        self.vector = false;
    }

    /// The slot this worker publishes its counters to (control reads it).
    pub fn stats_slot(&self) -> Arc<StatsSlot> {
        Arc::clone(&self.slot)
    }

    /// What the worker would publish now.
    pub fn snapshot(&self, now_ms: u32) -> WorkerSnapshot {
        WorkerSnapshot {
            counters: self.counters,
            flows_active: self.table.len() as u64,
            udp_flows_active: self.datagrams.len(Kind::Udp) as u64,
            icmp_flows_active: self.datagrams.len(Kind::IcmpEcho) as u64,
            census: self.last_census,
            policy_generation: self.ctx.generation,
            published_ms: u64::from(now_ms),
        }
    }

    /// Publishes the counters now (the loop does it every `PUBLISH_MS`).
    pub fn publish(&mut self, now_ms: u32) {
        self.slot.publish(&self.snapshot(now_ms));
        self.last_publish = now_ms;
    }

    /// The policy generation the worker applies.
    pub fn policy_generation(&self) -> u64 {
        self.ctx.generation
    }

    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// One complete turn of the loop at `now_ms`. Returns the number of packets received.
    pub fn poll(&mut self, now_ms: u32) -> usize {
        self.full_turn(now_ms, 1)
    }

    /// One turn of the lcore loop, reading `clock` only when the turn needs it. A complete
    /// turn ([`Worker::poll`]) when the last one found no backlog (every RX burst short of
    /// full) or after [`HOUSEKEEPING_EVERY`] turns; otherwise only RX, processing and TX, with
    /// the time the last complete turn read (the idle timeouts are seconds, so a timestamp
    /// at most a few hundred microseconds old changes nothing). Returns the packets received.
    pub fn turn(&mut self, clock: impl FnOnce() -> u32) -> usize {
        if self.backlog && self.light_turns < HOUSEKEEPING_EVERY {
            self.light_turns += 1;
            return self.forward(self.now_ms);
        }
        let catch_up = (self.light_turns as usize).clamp(1, CATCH_UP);
        self.full_turn(clock(), catch_up)
    }

    fn full_turn(&mut self, now_ms: u32, catch_up: usize) -> usize {
        self.now_ms = now_ms;
        self.light_turns = 0;
        self.apply_commands();
        self.take_from_control(now_ms, BURST * catch_up);
        let got = self.forward(now_ms);
        self.expire(now_ms, EXPIRE_BUDGET * catch_up);
        self.expire_datagrams(now_ms, EXPIRE_BUDGET * catch_up);
        self.housekeeping(now_ms);
        got
    }

    /// Receives a burst from each port, gives every packet its verdict and flushes the TX
    /// buffers. Returns the packets received.
    fn forward(&mut self, now_ms: u32) -> usize {
        let mut got = 0;
        let mut backlog = false;
        for port in 0..self.ports.len() {
            let mut rx: Burst<Q::Pkt, BURST> = Burst::new();
            let n = self.ports[port].rx_burst(&mut rx);
            got += n;
            backlog |= n == BURST;
            self.counters.rx += n as u64;
            if self.steers() {
                self.hand_off(port, &mut rx);
            }
            match self.ctx.mode {
                ForwardMode::Full if self.vector => self.vector_burst(port, &mut rx, now_ms),
                ForwardMode::Full => {
                    let hashed = self.prefetch_flows(&rx);
                    for (pkt, h) in rx.drain().zip(hashed) {
                        self.handle(port, pkt, now_ms, h);
                    }
                }
                ForwardMode::Lookup => self.lookup_only(port, &mut rx),
                ForwardMode::Io => {
                    for pkt in rx.drain() {
                        self.handle(port, pkt, now_ms, None);
                    }
                }
            }
        }
        if self.steers() {
            backlog |= self.take_handoffs(now_ms);
        }
        for port in 0..self.ports.len() {
            self.flush(port);
        }
        self.backlog = backlog;
        got
    }

    /// Brings a burst's flow-table lines in before the first lookup (l3fwd's bulk lookup),
    /// so the misses overlap instead of queueing up: every packet's tag line, then, with the
    /// tags in, every candidate slot (both its lines when it straddles two). (Prefetching each slot only a few packets ahead of its
    /// use was slower at 1 M flows: fewer misses in flight.) Returns each packet's key and
    /// hash, so its lookup does not compute the hash again (it is on the critical path).
    fn prefetch_flows(&self, rx: &Burst<Q::Pkt, BURST>) -> [Option<Hashed>; BURST] {
        let mut hashed = [None; BURST];
        for (h, pkt) in hashed.iter_mut().zip(rx.iter()) {
            *h = flow_key_of(pkt.data()).map(|k| {
                let hash = k.symmetric_hash();
                crate::hint::prefetch(self.table.tag_line(hash));
                (k, hash)
            });
        }
        for (_, hash) in hashed.iter().flatten() {
            if let Some(c) = self.table.candidate(*hash) {
                crate::hint::prefetch_all(c);
            }
        }
        hashed
    }

    /// The bounded extras of a turn: a slice of a pending flow listing, and the counters'
    /// publication when it is due. Neither allocates nor locks (see `crate::live`).
    fn housekeeping(&mut self, now_ms: u32) {
        if let Some(d) = self.dump.as_mut() {
            let budget = DUMP_SCAN_BUDGET;
            let done = match d.table {
                0 => d.scan(self.table.slots(), budget),
                1 => d.scan_datagrams(Kind::Udp, self.datagrams.slots(Kind::Udp), budget),
                _ => d.scan_datagrams(Kind::IcmpEcho, self.datagrams.slots(Kind::IcmpEcho), budget),
            };
            if done && d.table < 2 {
                d.table += 1;
                d.cursor = 0;
            } else if done {
                d.total = (self.table.len()
                    + self.datagrams.len(Kind::Udp)
                    + self.datagrams.len(Kind::IcmpEcho)) as u64;
                d.worker = self.id;
                d.now_ms = now_ms;
                if let Some(d) = self.dump.take() {
                    // A full reply ring loses the listing (control times it out); dropping
                    // the box here frees it, which only happens if control stopped reading.
                    let _ = self.rings.replies.push(Reply::Flows(d));
                }
            }
        }
        if now_ms.wrapping_sub(self.last_publish) >= PUBLISH_MS {
            self.publish(now_ms);
        }
    }

    fn handle(&mut self, port: usize, mut pkt: Q::Pkt, now_ms: u32, hashed: Option<Hashed>) {
        let mut resize = Resize {
            ingress: self.ctx.ifaces.untagged(port),
            ..Resize::default()
        };
        let verdict = match self.ctx.mode {
            // Ports in pairs, 0 with 1, 2 with 3 (testpmd's io forwarding); an odd last port
            // sends back out of itself.
            ForwardMode::Io | ForwardMode::Lookup => {
                Verdict::Forward(if port ^ 1 < self.ports.len() {
                    port ^ 1
                } else {
                    port
                })
            }
            ForwardMode::Full => {
                let mut v = self.process(port, pkt.data_mut(), now_ms, hashed, &mut resize);
                if let Some(r) = resize.retag {
                    if !retag(&mut pkt, r) {
                        v = Verdict::Drop(DropReason::NoHeadroom);
                    }
                }
                if let (Some((tsval, tsecr)), false) =
                    (resize.insert, matches!(v, Verdict::Drop(_)))
                {
                    self.insert_ts(&mut pkt, tsval, tsecr);
                }
                match (v, resize.split_at) {
                    (Verdict::Forward(out), Some(mss)) => match self.split(out, &pkt, mss) {
                        Ok(()) => return,
                        Err(NoSplit::BadChecksum) => Verdict::Drop(DropReason::BadChecksum),
                        Err(NoSplit::Fits | NoSplit::Unsplittable) => v,
                    },
                    _ => v,
                }
            }
        };
        self.dispatch(verdict, pkt, resize.ingress, now_ms);
    }

    /// Adds a timestamp option to a forwarded segment, in the buffer's headroom; without
    /// room, or with a malformed option list, it goes on as it is (counted).
    #[cold]
    fn insert_ts(&mut self, pkt: &mut Q::Pkt, tsval: u32, tsecr: u32) {
        let inserted = plan_ts_insert(pkt.data(), tsval, tsecr).is_some_and(|plan| {
            pkt.grow_front(plan.grow) && apply_ts_insert(pkt.data_mut(), &plan).is_ok()
        });
        if inserted {
            self.counters.ts_inserted += 1;
        } else {
            self.counters.ts_insert_failed += 1;
        }
    }

    /// Sends `pkt` out of port `out` as pieces of at most `mss` bytes of data and options
    /// (it was larger than its receiver accepts), or says why not.
    #[cold]
    fn split(&mut self, out: usize, pkt: &Q::Pkt, mss: u16) -> Result<(), NoSplit> {
        let plan = plan_split(pkt.data(), mss)?;
        self.counters.segments_split += 1;
        for i in 0..plan.pieces() {
            let Some(mut piece) = self.ports[out].alloc(plan.piece_len(i)) else {
                self.counters.split_failed += 1;
                break;
            };
            write_piece(pkt.data(), &plan, i, piece.data_mut());
            self.counters.split_pieces += 1;
            self.counters.forwarded += 1;
            self.enqueue_tx(out, piece);
        }
        Ok(())
    }

    /// Sends the TX buffer of `port`, retrying a few times; what is left is dropped (the
    /// packets are released by their `Drop`) and counted.
    fn flush(&mut self, port: usize) {
        for _ in 0..TX_RETRIES {
            if self.tx[port].is_empty() {
                return;
            }
            let sent = self.ports[port].tx_burst(&mut self.tx[port]);
            self.counters.tx += sent as u64;
        }
        let left = self.tx[port].len() as u64;
        if left > 0 {
            self.tx[port].drain().for_each(drop);
            self.counters.drops.0[DropReason::TxFull as usize] += left;
        }
    }

    /// Takes up to `budget` of the control plane's packets: to send, or to process as received.
    fn take_from_control(&mut self, now_ms: u32, budget: usize) {
        for _ in 0..budget {
            let Some(m) = self.rings.from_control.pop() else {
                return;
            };
            self.counters.from_control += 1;
            match m {
                FromControl::Send(i, pkt) => self.enqueue_tx(self.ctx.ifaces.port_of(i), pkt),
                FromControl::Receive(i, pkt) => {
                    self.handle(self.ctx.ifaces.port_of(i), pkt, now_ms, None)
                }
            }
        }
    }

    /// Buffers a packet for `out`, flushing the buffer first when it is full.
    #[inline(always)]
    fn enqueue_tx(&mut self, out: usize, pkt: Q::Pkt) {
        if let Err(p) = self.tx[out].push(pkt) {
            self.enqueue_after_flush(out, p);
        }
    }

    #[cold]
    #[inline(never)]
    fn enqueue_after_flush(&mut self, out: usize, pkt: Q::Pkt) {
        self.flush(out);
        if self.tx[out].push(pkt).is_err() {
            self.counters.drops.count(DropReason::TxFull);
        }
    }

    fn apply_commands(&mut self) {
        for _ in 0..COMMAND_BUDGET {
            let Some(cmd) = self.rings.commands.pop() else {
                return;
            };
            match cmd {
                Command::Neighbour { iface, ip, mac } => {
                    self.neighbours.set(iface, ip, mac);
                    self.hops.clear();
                }
                Command::Install(mut conn) => {
                    // The worker's clock stamps it, in the unit of its state.
                    conn.touch(self.now_ms, &self.ctx.tcp_timeouts_ms);
                    // A stale object for the same quad (a closing flow) gives way.
                    if let Some((i, _)) = self.table.lookup(&conn.key()) {
                        self.table.remove_at(i);
                    }
                    match self.table.insert(conn) {
                        Ok(_) => self.counters.flows_installed += 1,
                        Err(_) => self.counters.drops.count(DropReason::FlowTableFull),
                    }
                }
                Command::Remove(key) => {
                    self.table.remove(&key);
                }
                // Swapping the `Arc` is the whole reload: the next packet is judged by the
                // new policy. Control keeps the old context alive until every worker has let
                // go of it, so this drop is a reference count, not a free.
                Command::Reload(ctx) => {
                    if ctx.0.tcp_timeouts_ms != self.ctx.tcp_timeouts_ms {
                        self.table.touch_all(self.now_ms, &ctx.0.tcp_timeouts_ms);
                    }
                    self.ctx = ctx.0;
                    self.hops.clear();
                }
                Command::DumpFlows(d) => match self.dump {
                    None => self.dump = Some(d),
                    // One listing at a time: a second one goes back empty at once.
                    Some(_) => {
                        let _ = self.rings.replies.push(Reply::Flows(d));
                    }
                },
            }
        }
    }

    fn expire(&mut self, now_ms: u32, budget: usize) {
        let timeouts = &self.ctx.tcp_timeouts_ms;
        let census = &mut self.census;
        let n = self.table.expire(
            budget,
            |c| {
                let expired = c.idle_expired(now_ms, timeouts);
                if !expired {
                    census.see(c);
                }
                expired
            },
            |_| {},
        );
        self.counters.flows_expired += n as u64;
        if self.table.sweeps() != self.sweeps {
            self.sweeps = self.table.sweeps();
            self.last_census = std::mem::take(&mut self.census);
        }
    }

    /// Decides what happens to one frame, rewriting it in place when it is forwarded. What
    /// changes its size (a timestamp option to add, a split) is left in `resize`.
    fn process(
        &mut self,
        port: usize,
        frame: &mut [u8],
        now_ms: u32,
        hashed: Option<Hashed>,
        resize: &mut Resize,
    ) -> Verdict {
        let eth = match EthernetFrame::new_checked(&frame[..]) {
            Ok(e) => e,
            Err(e) => return Verdict::Drop(e.into()),
        };
        let dst_mac = eth.dst();
        if dst_mac != self.ctx.macs[port] && !dst_mac.is_multicast() {
            return Verdict::Drop(DropReason::NotForUs);
        }
        let ingress = match self.ctx.ifaces.ingress(port, &eth) {
            Ok(i) => i,
            Err(r) => return Verdict::Drop(r),
        };
        resize.ingress = ingress;
        match eth.ethertype() {
            EtherType::ARP => return Verdict::ToControl(Why::Local),
            EtherType::IPV4 => {}
            _ => return Verdict::Drop(DropReason::UnsupportedEtherType),
        }
        let l3 = eth.header_len();
        let ip = match Ipv4Packet::new_checked(&frame[l3..]) {
            Ok(ip) => ip,
            Err(e) => return Verdict::Drop(e.into()),
        };
        let (src, dst) = (ip.src(), ip.dst());
        if self.ctx.router.is_own(dst) {
            return Verdict::ToControl(Why::Local);
        }
        if dst_mac.is_multicast() || dst.0 >> 28 == 0xe || dst.0 == u32::MAX {
            return Verdict::Drop(DropReason::NotForUs);
        }
        let Some(hop) = self.ctx.router.lookup(dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if hop.out == ingress {
            return Verdict::Drop(DropReason::Hairpin);
        }
        let egress = self.ctx.ifaces.get(hop.out);
        let out = egress.port;
        if ip.ttl() <= 1 {
            return Verdict::ToControl(Why::TtlExceeded);
        }
        let proto = ip.protocol();
        let zones = Zones {
            from: self.ctx.ifaces.get(ingress).zone,
            to: egress.zone,
        };

        let mut params = Default::default();
        let mut opts = OptionMap::default();
        let mut split_at = None;
        if proto == Protocol::TCP {
            if ip.is_fragment() {
                return Verdict::Drop(DropReason::Fragment);
            }
            let tcp = match TcpPacket::new_checked(ip.payload()) {
                Ok(t) => t,
                Err(e) => return Verdict::Drop(e.into()),
            };
            match self.inspect_tcp(zones, src, dst, &tcp, now_ms, hashed) {
                Ok((p, o, s)) => (params, opts, split_at) = (p, o, s),
                Err(v) => return v,
            }
        } else if let Err(v) = self.inspect_datagram(zones, &mut frame[l3..], now_ms) {
            return v;
        }

        let mac = self.neighbours.get(hop.out, hop.ip);
        let l2 = Hop {
            src: self.ctx.macs[out],
            dst: mac.unwrap_or(MacAddr::ZERO),
        };
        if proto == Protocol::TCP {
            match rewrite_frame_mapped(frame, &params, Some(&l2), &opts) {
                Ok(r) => self.counters.options_malformed += u64::from(r.options_malformed),
                Err(RewriteError::Wire(e)) => return Verdict::Drop(e.into()),
                Err(_) => return Verdict::Drop(DropReason::BadIpHeader),
            }
            match params.ts_edit {
                TsEdit::None => {}
                TsEdit::Strip => {
                    self.counters.ts_removed += u64::from(opts.timestamps_at().is_some())
                }
                TsEdit::Insert { tsval, tsecr } => resize.insert = Some((tsval, tsecr)),
            }
            resize.split_at = split_at;
        } else {
            let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
            eth.set_src(l2.src);
            eth.set_dst(l2.dst);
            Ipv4Packet::new_unchecked(&mut frame[l3..]).decrement_ttl();
        }
        resize.retag = tag_for(frame, egress.vlan);
        match mac {
            Some(_) => Verdict::Forward(out),
            None => Verdict::ToControl(Why::Resolve {
                out: hop.out,
                next_hop: hop.ip,
            }),
        }
    }

    /// The TCP half of `process`: flow lookup, policy for new SYNs, stateful inspection.
    /// Returns the rewrite for the packet with the map of its options (walked once, here,
    /// for both the tracker and the rewrite), or the verdict that ends its journey here.
    fn inspect_tcp(
        &mut self,
        zones: Zones,
        src: common::wire::Ipv4Addr,
        dst: common::wire::Ipv4Addr,
        tcp: &TcpPacket<&[u8]>,
        now_ms: u32,
        hashed: Option<Hashed>,
    ) -> Result<(common::conn::SpliceParams, OptionMap, Option<u16>), Verdict> {
        let key = FlowKey::new(src, tcp.src_port(), dst, tcp.dst_port());
        let fl = tcp.flags();
        let is_syn = fl & (flags::SYN | flags::ACK | flags::RST) == flags::SYN;
        let mut found = match hashed {
            Some((k, hash)) if k == key => self.table.lookup_hashed(&key, hash),
            _ => self.table.lookup(&key),
        };
        if let Some((i, dir)) = found {
            // Quad reuse: a new SYN for a closing flow starts over at the policy.
            if is_syn && dir == Direction::ClientToServer && self.table.get(i).state().is_closing()
            {
                self.table.remove_at(i);
                found = None;
            }
        }
        let Some((i, dir)) = found else {
            if is_syn {
                return self.new_syn(zones, key, tcp, now_ms);
            }
            return Err(self.no_flow(zones, key, fl));
        };

        let conn = self.table.get_mut(i);
        let timeouts = &self.ctx.tcp_timeouts_ms;
        if conn.flags() & ConnFlags::PROXIED != 0 {
            conn.touch(now_ms, timeouts);
            return Err(Verdict::ToControl(Why::Proxied));
        }
        let mut p = conn.params(dir);
        let opts = tcp.option_map();
        let seg = segment_of(tcp, &opts, p.ack_sub);
        let was_open = !is_closed(conn.state());
        match track(conn, dir, &seg, &self.ctx.track) {
            TrackVerdict::Accept => {
                conn.touch(now_ms, timeouts);
                if was_open && is_closed(conn.state()) {
                    self.counters.flows_closed += 1;
                }
                if conn.xlate() != 0 {
                    // Only a segment the tracker accepted may move the TSval echoed later.
                    p.ts_edit = conn.ts_edit(dir, now_ms, opts.tsval(tcp.header()));
                }
                Ok((p, opts, conn.split_at(dir)))
            }
            TrackVerdict::Ignore => {
                self.counters.ignored += 1;
                if conn.xlate() != 0 {
                    p.ts_edit = conn.ts_edit(dir, now_ms, None);
                }
                Ok((p, opts, conn.split_at(dir)))
            }
            TrackVerdict::Drop(r) => Err(Verdict::Drop(r)),
        }
    }

    /// The packets waiting in the TX buffers (tests).
    pub fn pending_tx(&self) -> usize {
        self.tx.iter().map(Burst::len).sum()
    }
}

/// What [`Worker::process`] found out about a frame besides its verdict, and what it leaves
/// to do to a forwarded frame that changes its size.
#[derive(Debug, Default)]
struct Resize {
    /// The interface it arrived on.
    ingress: Iface,
    /// The tag to add or remove for its egress interface (done first: the timestamp
    /// insertion and the split read the frame as it leaves).
    retag: Option<Retag>,
    /// Add a timestamp option with this TSval and TSecr (the frame grows in its headroom;
    /// planned and done off the common path, in `insert_ts`).
    insert: Option<(u32, u32)>,
    /// Split it if its data and options exceed this (its receiver's MSS).
    split_at: Option<u16>,
}

/// TIME-WAIT and CLOSE: the connection is over, the object only absorbs stragglers.
fn is_closed(s: TcpState) -> bool {
    matches!(s, TcpState::TimeWait | TcpState::Close)
}

/// What the tracker needs of a segment whose options `opts` maps; `ack_sub` translates the
/// acknowledgement and SACK edges back into the receiver's own space (zero for `pass` flows).
/// A SYN's window scale counts only if its option list is well formed; SACK blocks count up
/// to a malformed option (the segment is forwarded all the same).
fn segment_of(tcp: &TcpPacket<&[u8]>, opts: &OptionMap, ack_sub: u32) -> Segment {
    let fl = tcp.flags();
    let mut sack_max: Option<SeqNumber> = None;
    let mut syn_wscale = None;
    if fl & flags::SYN != 0 {
        syn_wscale = opts.window_scale();
    } else {
        for (_, right) in opts.sack_blocks(tcp.header()) {
            let r = right.wrapping_sub(ack_sub);
            sack_max = Some(sack_max.map_or(r, |m| m.max(r)));
        }
    }
    Segment {
        flags: fl,
        seq: tcp.seq_number(),
        ack: tcp.ack_number().wrapping_sub(ack_sub),
        window: tcp.window_len(),
        payload_len: tcp.payload().len() as u32,
        sack_max,
        syn_wscale,
    }
}

#[cfg(test)]
mod tests;
