//! A deterministic, single-threaded simulation of client host ⇄ the box ⇄ server host
//! (DESIGN.md §7 item 2), shared by the root package's integration tests: include it with
//! `mod sim;`.
//!
//! ```text
//!  client 198.18.0.1/24 ── inside ── [ workers + control ] ── outside ── server 198.19.0.2/24
//!  smoltcp, gw .254        link       MemNic in / out           link      smoltcp, gw .254
//! ```
//!
//! What is real and what is simulated:
//! - the box is the real code: `dataplane::worker::Worker`s on `MemNic` queues (symmetric RSS
//!   picks the worker, as a NIC would), the real rings, and the real control plane
//!   (`ControlPlane`), which answers ARP for 198.18.0.254 / 198.19.0.254 and resolves the
//!   hosts by ARP. The configuration is `config/testbed.yaml` with the flow table cut to
//!   [`SIM_FLOW_CAPACITY`] slots per worker;
//! - the hosts are smoltcp 0.14 interfaces (Ethernet, every checksum computed and verified)
//!   with realistic TCP: window scaling from a large receive buffer (smoltcp announces
//!   `bit_length(rx buffer) − 16`: 1 MiB ⇒ shift 5), timestamps, SACK, MSS 1460. Each host's
//!   timestamps, MTU (so its MSS), receive buffer and window scaling can be changed
//!   ([`HostOptions`], [`Sim::with_hosts`]); SACK cannot be turned off in smoltcp;
//! - each link carries frames both ways through a timed queue (delivery time, then a global
//!   sequence number breaks ties) where [`Faults`] drop, duplicate and delay (reorder) frames,
//!   every direction of both links drawing from one seeded [`SimRng`]. ARP is exempt by
//!   default ([`Sim::fault_arp`]) so that setup is never flaky; TCP recovers from the rest.
//!   An [`Intercept`] scripts targeted faults ("drop the first data segment").
//!
//! Time is virtual: one [`Sim::step`] advances the clock by 1 ms (or, with
//! [`Sim::fast_forward`] and nothing in flight, straight to the next host timer or delivery,
//! at most [`FAST_FORWARD_MAX_MS`]). Within a step: applications write and read their
//! sockets, both hosts poll, their frames enter the links, then every frame due is delivered
//! until the network settles — to the box one frame at a time, each followed by a turn of
//! the worker RSS picked for it, so that the counters it moved give the box's verdict on that
//! frame in [`Sim::trace`] — the control plane and every worker take turns, and frames the
//! box sent enter the links. A link without delay delivers within the step. Every
//! [`SWEEP_MS`] the workers age their whole flow tables, as a real worker polling millions of
//! times a second would.
//!
//! Same seed ⇒ same run: nothing here reads the wall clock or an OS random source. smoltcp's
//! timestamp generator is a plain `fn() -> u32`, so it reads the virtual clock from a
//! thread-local: run one `Sim` at a time per thread (the test harness gives each test its
//! own). The box's legs stamp their TSvals from their own control plane's clock, so
//! simulations on other threads never move them (`tests/sim_seeded.rs` checks it). Everything is bounded: [`Sim::run_until`] panics after `max_steps` with the seed,
//! the state of every endpoint, the box's counters and the links' statistics, and
//! [`Sim::explain_drops`] prints each drop of the box with the segments that led to it.
//!
//! smoltcp 0.14 caveats the tests work around (neither is the box's): a socket that closes
//! with data in flight can lose its FIN for good ([`Sim::fin_stalled`] detects it; closing
//! only once everything is acknowledged, [`Sim::close_after_acked`], avoids it); and with
//! no SACK-based recovery and no RTT sample after a go-back-N retransmission, its RTO backs
//! off to 60 s when a whole transfer fits in one window (keep the send buffer smaller than
//! the transfer under faults).
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use common::conn::Conn;
use common::flow::FlowKey;
use common::wire::MacAddr;
use control::plane::{ControlPlane, RingIo};
use control::settings::Settings;
use control::stats::Connections;
use dataplane::context::ForwardMode;
use dataplane::contract::Rings;
use dataplane::port::{MemNic, MemQueue, Spread};
use dataplane::steer::Steering;
use dataplane::verdict::{DropCounters, DropReason};
use dataplane::worker::{Worker, WorkerCounters};

/// Which of the box's two NICs a hop crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Inside,
    Outside,
}

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress, IpCidr,
    IpProtocol, Ipv4Address, Ipv4Packet, TcpOption, TcpPacket,
};

/// The box's port MACs.
pub const BOX_INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const BOX_OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x01];
pub const SERVER_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x02];
/// The testbed addresses (DESIGN.md §9).
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(198, 19, 0, 2);
pub const BOX_INSIDE_IP: Ipv4Address = Ipv4Address::new(198, 18, 0, 254);
pub const BOX_OUTSIDE_IP: Ipv4Address = Ipv4Address::new(198, 19, 0, 254);

/// Where the virtual clock starts (ms): well away from zero, as a real box's uptime is.
pub const START_MS: u64 = 1_000;
/// The longest jump of [`Sim::fast_forward`].
pub const FAST_FORWARD_MAX_MS: u64 = 200;
/// Default socket buffers: 1 MiB receive (window shift 5 in smoltcp) and transmit.
pub const DEFAULT_RX_BUFFER: usize = 1 << 20;
pub const DEFAULT_TX_BUFFER: usize = 1 << 20;
/// Depth of each MemNic RX queue.
const NIC_DEPTH: usize = 4096;
/// Rounds of delivery within one step before the network is declared not to settle.
const MAX_ROUNDS: usize = 10_000;
/// Flow-table slots per worker in the simulation (the testbed config's 65536 would take a
/// thousand polls to age once; see [`SWEEP_MS`]).
pub const SIM_FLOW_CAPACITY: u32 = 4096;
/// Virtual time between full ageing sweeps of every worker's flow table. A real worker polls
/// millions of times a second and ages its whole table many times a second; the simulation
/// polls a few times per step and skips idle time, so it sweeps explicitly at least this
/// often: idle timeouts then fire at most this late.
pub const SWEEP_MS: u64 = 500;
/// Flow-table slots a worker ages per poll (`dataplane::worker::EXPIRE_BUDGET`).
const EXPIRE_BUDGET: usize = 64;
/// Trace entries kept (the oldest are discarded beyond this).
const TRACE_LIMIT: usize = 1 << 20;

mod host;
pub mod login;
mod observe;
mod the_box;
mod wire;

pub use host::*;
pub use observe::*;
pub use the_box::*;
pub use wire::*;

// ---------------------------------------------------------------------------------------------
// The simulation

pub struct Sim {
    pub seed: u64,
    /// Virtual time, ms.
    pub now: u64,
    pub steps: u64,
    pub rng: SimRng,
    /// Faults per link: [inside, outside].
    pub faults: [Faults; 2],
    /// Apply faults to ARP frames too (off by default).
    pub fault_arp: bool,
    /// Base one-way latency of each link, ms.
    pub latency_ms: u64,
    /// Targeted faults, decided before the random ones (see [`Fate`]).
    pub intercept: Option<Intercept>,
    /// Jump the clock over idle time (see the module docs).
    pub fast_forward: bool,
    /// New endpoints close only once everything they wrote is acknowledged.
    pub close_after_acked: bool,
    pub client: Host,
    pub server: Host,
    pub the_box: TheBox,
    pub endpoints: Vec<Endpoint>,
    pub trace: Vec<TraceEntry>,
    /// Receive and transmit buffer of new sockets.
    pub rx_buffer: usize,
    pub tx_buffer: usize,
    wire: Wire,
    next_port: u16,
    last_sweep: u64,
}

impl Sim {
    /// The box with `workers` workers (MemNics of as many queues, RSS picks the worker) on
    /// `config/testbed.yaml`, the two hosts and the links, all faults set to `faults`.
    /// The flow table is [`SIM_FLOW_CAPACITY`] slots per worker.
    pub fn new(seed: u64, workers: usize, faults: Faults) -> Sim {
        let mut config = testbed_config();
        config.flow_table.capacity = SIM_FLOW_CAPACITY * workers as u32;
        config.workers.count = workers as u16;
        Sim::with_config(seed, workers, faults, config)
    }

    /// [`Sim::new`] on NICs that spread packets over the workers by `spread`.
    pub fn spreading(seed: u64, workers: usize, faults: Faults, spread: Spread) -> Sim {
        let mut sim = Sim::new(seed, workers, faults);
        let config = sim.the_box.plane.proxy.settings().config.clone();
        sim.the_box = TheBox::spreading(workers, config, spread);
        sim
    }

    pub fn with_config(
        seed: u64,
        workers: usize,
        faults: Faults,
        config: common::config::Config,
    ) -> Sim {
        Sim::with_hosts(
            seed,
            workers,
            faults,
            config,
            HostOptions::DEFAULT,
            HostOptions::DEFAULT,
        )
    }

    /// [`Sim::with_config`] with the client's and the server's TCP changed from the defaults
    /// by `client` and `server` (the same seed draws the same numbers as without).
    pub fn with_hosts(
        seed: u64,
        workers: usize,
        faults: Faults,
        config: common::config::Config,
        client: HostOptions,
        server: HostOptions,
    ) -> Sim {
        let mut rng = SimRng::new(seed);
        CLOCK_MS.set(START_MS);
        TS_OFFSET.set([rng.next_u64() as u32, rng.next_u64() as u32]);
        let client = Host::new(
            HostId::Client,
            CLIENT_MAC,
            CLIENT_IP,
            BOX_INSIDE_IP,
            rng.next_u64(),
            client,
        );
        let server = Host::new(
            HostId::Server,
            SERVER_MAC,
            SERVER_IP,
            BOX_OUTSIDE_IP,
            rng.next_u64(),
            server,
        );
        Sim {
            seed,
            now: START_MS,
            steps: 0,
            faults: [faults; 2],
            fault_arp: false,
            latency_ms: 0,
            intercept: None,
            fast_forward: true,
            close_after_acked: false,
            client,
            server,
            the_box: TheBox::new(workers, config),
            endpoints: Vec::new(),
            trace: Vec::new(),
            rx_buffer: DEFAULT_RX_BUFFER,
            tx_buffer: DEFAULT_TX_BUFFER,
            wire: Wire::default(),
            last_sweep: START_MS,
            next_port: 40_000 + (rng.below(10_000) as u16),
            rng,
        }
    }

    pub fn host(&self, id: HostId) -> &Host {
        match id {
            HostId::Client => &self.client,
            HostId::Server => &self.server,
        }
    }

    pub fn host_mut(&mut self, id: HostId) -> &mut Host {
        match id {
            HostId::Client => &mut self.client,
            HostId::Server => &mut self.server,
        }
    }

    // --- applications -------------------------------------------------------------------

    fn add_endpoint(&mut self, host: HostId, handle: SocketHandle) -> EpId {
        self.endpoints.push(Endpoint {
            host,
            handle,
            out: Vec::new(),
            written: 0,
            received: Vec::new(),
            close_when_sent: false,
            close_after_acked: self.close_after_acked,
            closed: false,
            reply_len: None,
            peer_port: None,
        });
        EpId(self.endpoints.len() - 1)
    }

    /// A server socket listening on `port` (one connection per listener).
    pub fn listen(&mut self, port: u16) -> EpId {
        let (rx, tx) = (self.rx_buffer, self.tx_buffer);
        let h = self.server.new_socket(rx, tx);
        self.server
            .socket_mut(h)
            .listen(port)
            .unwrap_or_else(|e| panic!("seed {}: listen on {port}: {e:?}", self.seed));
        self.add_endpoint(HostId::Server, h)
    }

    /// A fresh client port (sequential from a seed-chosen start).
    pub fn client_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= 60_999 { 40_000 } else { p + 1 };
        p
    }

    /// The client connects from `cport` to the server's `dport`.
    pub fn connect(&mut self, cport: u16, dport: u16) -> EpId {
        self.connect_to(cport, SERVER_IP, dport)
    }

    /// The client connects from `cport` to `addr:dport` (the server, or the box itself).
    pub fn connect_to(&mut self, cport: u16, addr: Ipv4Address, dport: u16) -> EpId {
        let (rx, tx) = (self.rx_buffer, self.tx_buffer);
        let h = self.client.new_socket(rx, tx);
        let Host { iface, sockets, .. } = &mut self.client;
        sockets
            .get_mut::<tcp::Socket>(h)
            .connect(iface.context(), (IpAddress::Ipv4(addr), dport), cport)
            .unwrap_or_else(|e| panic!("seed {}: connect {cport}->{dport}: {e:?}", self.seed));
        let ep = self.add_endpoint(HostId::Client, h);
        self.endpoints[ep.0].peer_port = Some(dport);
        ep
    }

    /// Queues `data` to be written on `ep`.
    pub fn send(&mut self, ep: EpId, data: &[u8]) {
        self.endpoints[ep.0].out.extend_from_slice(data);
    }

    /// Closes `ep`'s sending half once everything queued is written.
    pub fn close_when_sent(&mut self, ep: EpId) {
        self.endpoints[ep.0].close_when_sent = true;
    }

    pub fn endpoint(&self, ep: EpId) -> &Endpoint {
        &self.endpoints[ep.0]
    }

    pub fn received(&self, ep: EpId) -> &[u8] {
        &self.endpoints[ep.0].received
    }

    pub fn state(&self, ep: EpId) -> tcp::State {
        let e = &self.endpoints[ep.0];
        self.host(e.host).socket(e.handle).state()
    }

    /// Both halves done: TIME-WAIT or CLOSED (which includes a reset: check the bytes too).
    pub fn is_finished(&self, ep: EpId) -> bool {
        matches!(self.state(ep), tcp::State::TimeWait | tcp::State::Closed)
    }

    /// A full-duplex transfer on a new connection to `dport`: a listener that answers with
    /// `s2c` bytes, and a client from a fresh port that sends `c2s` bytes; each side closes
    /// after sending. Payloads are [`payload`]s of the seed and [`stream_id`].
    pub fn transfer(&mut self, dport: u16, c2s: usize, s2c: usize) -> Transfer {
        let server = self.listen(dport);
        self.endpoints[server.0].reply_len = Some(s2c);
        self.endpoints[server.0].close_when_sent = true;
        let cport = self.client_port();
        let client = self.connect(cport, dport);
        let data = payload(self.seed, stream_id(cport, Dir::ClientToServer), c2s);
        self.send(client, &data);
        self.close_when_sent(client);
        Transfer {
            client,
            server,
            cport,
            dport,
            c2s,
            s2c,
        }
    }

    /// The listener that accepted the transfer's client (listeners on one port are taken in
    /// the order the SYNs arrive, so it is found by the client's port).
    pub fn server_of(&self, t: &Transfer) -> Option<EpId> {
        self.endpoints
            .iter()
            .position(|e| {
                e.host == HostId::Server && e.reply_len.is_some() && e.peer_port == Some(t.cport)
            })
            .map(EpId)
    }

    /// Both sides have everything and have finished closing.
    pub fn transfer_done(&self, t: &Transfer) -> bool {
        let Some(s) = self.server_of(t) else {
            return false;
        };
        self.received(t.client).len() >= t.s2c
            && self.received(s).len() >= t.c2s
            && self.is_finished(t.client)
            && self.is_finished(s)
    }

    /// Asserts both directions of a transfer arrived byte-exact.
    pub fn check_transfer(&self, t: &Transfer) {
        let s = self.server_of(t).unwrap_or_else(|| {
            panic!(
                "seed {}: no server socket accepted client port {}",
                self.seed, t.cport
            )
        });
        let c2s = payload(self.seed, stream_id(t.cport, Dir::ClientToServer), t.c2s);
        let s2c = payload(self.seed, stream_id(t.cport, Dir::ServerToClient), t.s2c);
        assert_stream(
            self.seed,
            &format!("client:{} -> server:{}", t.cport, t.dport),
            &c2s,
            self.received(s),
        );
        assert_stream(
            self.seed,
            &format!("server:{} -> client:{}", t.dport, t.cport),
            &s2c,
            self.received(t.client),
        );
    }

    /// Writes and reads every endpoint's socket. Returns true if anything is still waiting
    /// for buffer space (so the clock should not jump).
    fn pump(&mut self) -> bool {
        let seed = self.seed;
        let mut busy = false;
        let mut buf = vec![0u8; 64 * 1024];
        for e in &mut self.endpoints {
            let host = match e.host {
                HostId::Client => &mut self.client,
                HostId::Server => &mut self.server,
            };
            let s = host.sockets.get_mut::<tcp::Socket>(e.handle);
            if e.peer_port.is_none() {
                if let Some(r) = s.remote_endpoint() {
                    e.peer_port = Some(r.port);
                }
            }
            if let (Some(len), Some(peer)) = (e.reply_len, e.peer_port) {
                if e.out.is_empty() && len > 0 && e.written == 0 {
                    e.out = payload(seed, stream_id(peer, Dir::ServerToClient), len);
                }
            }
            while e.written < e.out.len() && s.can_send() {
                match s.send_slice(&e.out[e.written..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => e.written += n,
                }
            }
            let ready = e.reply_len.is_none() || e.peer_port.is_some();
            let flushed = !e.close_after_acked || s.send_queue() == 0;
            if e.close_when_sent && !e.closed && ready && e.written == e.out.len() && flushed {
                // Before the handshake completes there is nothing to close yet.
                if s.may_send() {
                    s.close();
                    e.closed = true;
                }
            }
            while s.can_recv() {
                match s.recv_slice(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => e.received.extend_from_slice(&buf[..n]),
                }
            }
            if e.written < e.out.len() && s.can_send() {
                busy = true;
            }
        }
        busy
    }

    // --- the network ----------------------------------------------------------------------

    fn link_faults(&self, hop: Hop) -> Faults {
        match hop.side() {
            Side::Inside => self.faults[0],
            Side::Outside => self.faults[1],
        }
    }

    /// Puts a frame on a link, through the intercept and the link's faults.
    fn transmit(&mut self, hop: Hop, frame: Vec<u8>) {
        let i = hop as usize;
        self.wire.stats[i].sent += 1;
        let base = self.now + self.latency_ms;
        let fate = match self.intercept.as_mut() {
            Some(f) => f(self.now, hop, &frame),
            None => Fate::Pass,
        };
        match fate {
            Fate::Pass => {}
            Fate::Drop => {
                self.wire.stats[i].dropped += 1;
                return;
            }
            Fate::Copies(n) => {
                self.wire.stats[i].duplicated += u64::from(n.saturating_sub(1));
                for _ in 1..n {
                    self.wire.push(base, hop, frame.clone());
                }
                if n > 0 {
                    self.wire.push(base, hop, frame);
                }
                return;
            }
            Fate::Delay(ms) => {
                self.wire.stats[i].delayed += 1;
                self.wire.push(base + ms, hop, frame);
                return;
            }
        }
        if is_arp(&frame) && !self.fault_arp {
            self.wire.push(base, hop, frame);
            return;
        }
        let f = self.link_faults(hop);
        if self.rng.chance(f.drop) {
            self.wire.stats[i].dropped += 1;
            return;
        }
        let copies = if self.rng.chance(f.duplicate) {
            self.wire.stats[i].duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut due = base;
            if f.max_delay_ms > 0 && self.rng.chance(f.reorder) {
                due += 1 + self.rng.below(u64::from(f.max_delay_ms));
                self.wire.stats[i].delayed += 1;
            }
            self.wire.push(due, hop, frame.clone());
        }
    }

    /// Moves everything the box transmitted onto the links. Returns how many frames.
    fn collect_box_tx(&mut self) -> usize {
        let mut n = 0;
        while let Some(f) = self.the_box.inside.take_sent() {
            self.transmit(Hop::BoxToClient, f);
            n += 1;
        }
        while let Some(f) = self.the_box.outside.take_sent() {
            self.transmit(Hop::BoxToServer, f);
            n += 1;
        }
        n
    }

    /// One frame arrives at a box port: the worker RSS picks processes it at once, and the
    /// counters it moved tell what happened to it.
    fn box_rx(&mut self, hop: Hop, frame: Vec<u8>) {
        let side = hop.side();
        let nic = Arc::clone(self.the_box.nic(side));
        let q = nic.rss_queue(&frame);
        let seg = seg_info(&frame);
        let now = self.now as u32;
        let before = self.the_box.workers[q].counters;
        let outcome = if nic.inject(frame) {
            self.the_box.workers[q].poll(now);
            let after = self.the_box.workers[q].counters;
            classify(&before, &after)
        } else {
            Outcome::Unknown
        };
        if self.trace.len() < TRACE_LIMIT {
            self.trace.push(TraceEntry {
                t_ms: self.now,
                hop,
                worker: q,
                seg,
                outcome,
            });
        }
        self.collect_box_tx();
    }

    /// Delivers every frame due, lets the box work, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut moved = 0;
            while let Some((hop, frame)) = self.wire.pop_due(self.now) {
                moved += 1;
                match hop {
                    Hop::ClientToBox | Hop::ServerToBox => self.box_rx(hop, frame),
                    Hop::BoxToClient => self.client.receive(frame),
                    Hop::BoxToServer => self.server.receive(frame),
                }
            }
            moved += self.the_box.turn(self.now as u32);
            moved += self.collect_box_tx();
            if moved == 0 && self.the_box.idle() {
                return;
            }
        }
        panic!(
            "seed {}: the network did not settle within {MAX_ROUNDS} rounds at t={}ms",
            self.seed, self.now
        );
    }

    /// One step of virtual time (see the module docs).
    pub fn step(&mut self) {
        self.steps += 1;
        CLOCK_MS.set(self.now);
        let busy = self.pump();
        self.client.poll(self.now);
        self.server.poll(self.now);
        // Read what the poll delivered at once, so an application sees its data this step.
        let busy = self.pump() || busy;
        while let Some(mut f) = self.client.dev.tx.pop_front() {
            if !self.client.options.window_scaling {
                strip_window_scale(&mut f);
            }
            self.transmit(Hop::ClientToBox, f);
        }
        while let Some(mut f) = self.server.dev.tx.pop_front() {
            if !self.server.options.window_scaling {
                strip_window_scale(&mut f);
            }
            self.transmit(Hop::ServerToBox, f);
        }
        self.settle();
        if self.now - self.last_sweep >= SWEEP_MS {
            self.the_box.sweep(self.now as u32);
            self.last_sweep = self.now;
            self.collect_box_tx();
        }
        self.now += self.advance(busy);
    }

    /// How far the clock moves after a step: 1 ms, or with fast-forward and nothing in
    /// flight, up to the next host timer or link delivery.
    fn advance(&mut self, busy: bool) -> u64 {
        if !self.fast_forward
            || busy
            || !self.client.dev.rx.is_empty()
            || !self.server.dev.rx.is_empty()
        {
            return 1;
        }
        let now = Instant::from_millis(self.now as i64);
        let mut next = self.now + FAST_FORWARD_MAX_MS;
        for h in [&mut self.client, &mut self.server] {
            if let Some(t) = h.iface.poll_at(now, &h.sockets) {
                next = next.min(t.total_millis().max(0) as u64);
            }
        }
        if let Some(d) = self.wire.next_due() {
            next = next.min(d);
        }
        // The box's own timers (a drain's deadline, its legs' retransmissions): acted on at
        // its next 10 ms tick from then.
        if let Some(t) = self.the_box.plane.next_due_ms() {
            next = next.min(u64::from(t));
        }
        next.saturating_sub(self.now).max(1)
    }

    /// Steps until `cond` holds; panics after `max_steps` with the seed, `what`, and the
    /// state of every endpoint. Returns the steps taken.
    pub fn run_until(&mut self, what: &str, max_steps: u64, cond: impl FnMut(&Sim) -> bool) -> u64 {
        match self.try_run_until(max_steps, cond) {
            Ok(n) => n,
            Err(()) => {
                let stalled: Vec<usize> = (0..self.endpoints.len())
                    .filter(|&i| self.fin_stalled(EpId(i)))
                    .collect();
                let note = if stalled.is_empty() {
                    String::new()
                } else {
                    format!(
                        "endpoints {stalled:?} are stuck with their FIN unacknowledged and no \
                         retransmission timer (smoltcp 0.14; see Sim::fin_stalled)\n"
                    )
                };
                panic!(
                    "seed {}: `{what}` not reached after {max_steps} steps (t={}ms)\n{note}{}",
                    self.seed,
                    self.now,
                    self.report()
                )
            }
        }
    }

    /// Steps until `cond` holds; `Err` after `max_steps`.
    pub fn try_run_until(
        &mut self,
        max_steps: u64,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Result<u64, ()> {
        for i in 0..max_steps {
            if cond(self) {
                return Ok(i);
            }
            self.step();
        }
        if cond(self) {
            Ok(max_steps)
        } else {
            Err(())
        }
    }

    /// Runs `ms` milliseconds of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        let mut n = 0u64;
        while self.now < end {
            self.step();
            n += 1;
            assert!(n <= ms + 1, "seed {}: run_for overran", self.seed);
        }
    }
}

/// The `http-basic` step of a splice test: the client's request with its credentials, which
/// the server must get without them, then the server's response head. Returns what each
/// stream has carried so far (client→server, server→client).
pub fn http_first_request(
    sim: &mut Sim,
    seed: u64,
    client: EpId,
    server: EpId,
) -> (Vec<u8>, Vec<u8>) {
    use script::{REQUEST, RESPONSE_HEAD, STRIPPED};
    sim.send(client, REQUEST);
    sim.run_until("the server has the request", MAX_STEPS, |s| {
        s.received(server).len() >= STRIPPED.len()
    });
    assert_stream(
        seed,
        "the request as the server got it (without Authorization)",
        STRIPPED,
        sim.received(server),
    );
    sim.send(server, RESPONSE_HEAD);
    (STRIPPED.to_vec(), RESPONSE_HEAD.to_vec())
}
