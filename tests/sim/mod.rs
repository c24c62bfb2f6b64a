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
//! own). Everything is bounded: [`Sim::run_until`] panics after `max_steps` with the seed,
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

use common::config::Side;
use common::conn::Conn;
use common::flow::FlowKey;
use common::wire::MacAddr;
use control::plane::{ControlPlane, RingIo};
use control::stats::Connections;
use dataplane::context::{Context, ForwardMode};
use dataplane::port::{MemNic, MemQueue};
use dataplane::ring::Rings;
use dataplane::verdict::{DropCounters, DropReason};
use dataplane::worker::{Worker, WorkerCounters};

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

// ---------------------------------------------------------------------------------------------
// Randomness

/// A small seeded PRNG (splitmix64): reproducible, no dependency.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed ^ 0x5eed_5eed_5eed_5eed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (never for `p <= 0`, without drawing).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// Uniform in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A deterministic pseudo-random payload of `len` bytes for one stream of one seed.
pub fn payload(seed: u64, stream: u64, len: usize) -> Vec<u8> {
    let mut rng = SimRng::new(seed.wrapping_mul(0x100_0000_01b3) ^ stream.rotate_left(17));
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// The fast path's key of the connection from the client's port `cport` to the server's
/// `dport`, in the client → server direction.
pub fn flow_key(cport: u16, dport: u16) -> FlowKey {
    let v4 = |a: Ipv4Address| {
        let [a, b, c, d] = a.octets();
        common::wire::Ipv4Addr::new(a, b, c, d)
    };
    FlowKey::new(v4(CLIENT_IP), cport, v4(SERVER_IP), dport)
}

/// The stream number of one direction of the connection from client port `cport`.
pub fn stream_id(cport: u16, dir: Dir) -> u64 {
    (u64::from(cport) << 1) | dir as u64
}

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer = 0,
    ServerToClient = 1,
}

// ---------------------------------------------------------------------------------------------
// Links

/// Faults applied to every frame, independently in each direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub drop: f64,
    /// Probability that a frame is delivered twice (each copy delayed independently).
    pub duplicate: f64,
    /// Probability that a frame is held back 1..=`max_delay_ms` ms, so later frames overtake
    /// it.
    pub reorder: f64,
    pub max_delay_ms: u32,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        max_delay_ms: 0,
    };

    /// Drop 2 %, duplicate 1 %, reorder 5 % by up to 5 ms.
    pub const HOSTILE: Faults = Faults {
        drop: 0.02,
        duplicate: 0.01,
        reorder: 0.05,
        max_delay_ms: 5,
    };
}

/// What an [`Intercept`] decides for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Through the link's random [`Faults`] as usual.
    Pass,
    /// Lost.
    Drop,
    /// Delivered `n` times (n ≥ 1), no random faults.
    Copies(u32),
    /// Delivered once, this many ms late, no random faults.
    Delay(u64),
}

/// A targeted fault: called with the time, the hop and the frame for every frame put on a
/// link (ARP included), before the random faults. For scripted scenarios ("drop the first
/// data segment").
pub type Intercept = Box<dyn FnMut(u64, Hop, &[u8]) -> Fate>;

/// One direction of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hop {
    ClientToBox,
    BoxToClient,
    ServerToBox,
    BoxToServer,
}

impl Hop {
    pub const ALL: [Hop; 4] = [
        Hop::ClientToBox,
        Hop::BoxToClient,
        Hop::ServerToBox,
        Hop::BoxToServer,
    ];
    /// The box port this hop touches.
    pub fn side(self) -> Side {
        match self {
            Hop::ClientToBox | Hop::BoxToClient => Side::Inside,
            Hop::ServerToBox | Hop::BoxToServer => Side::Outside,
        }
    }
}

/// What a link did to the frames sent over one hop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopStats {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub delivered: u64,
}

/// The two links as one timed queue: frames keyed on (delivery time, sequence).
#[derive(Debug, Default)]
struct Wire {
    queue: BTreeMap<(u64, u64), (Hop, Vec<u8>)>,
    seq: u64,
    stats: [HopStats; 4],
}

impl Wire {
    fn push(&mut self, due: u64, hop: Hop, frame: Vec<u8>) {
        self.seq += 1;
        self.queue.insert((due, self.seq), (hop, frame));
    }

    fn pop_due(&mut self, now: u64) -> Option<(Hop, Vec<u8>)> {
        let (&(due, _), _) = self.queue.first_key_value()?;
        if due > now {
            return None;
        }
        let (_, (hop, frame)) = self.queue.pop_first()?;
        self.stats[hop as usize].delivered += 1;
        Some((hop, frame))
    }

    fn next_due(&self) -> Option<u64> {
        self.queue.first_key_value().map(|(&(due, _), _)| due)
    }
}

fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 14 && frame[12..14] == [0x08, 0x06]
}

// ---------------------------------------------------------------------------------------------
// Hosts

thread_local! {
    /// The virtual clock, for smoltcp's timestamp generators (plain `fn() -> u32`).
    static CLOCK_MS: Cell<u64> = const { Cell::new(0) };
    /// Per-host TSval offsets (client, server), from the seed.
    static TS_OFFSET: Cell<[u32; 2]> = const { Cell::new([0, 0]) };
}

fn tsval_client() -> u32 {
    (CLOCK_MS.get() as u32).wrapping_add(TS_OFFSET.get()[0])
}

fn tsval_server() -> u32 {
    (CLOCK_MS.get() as u32).wrapping_add(TS_OFFSET.get()[1])
}

/// A host's NIC: frames in from the link, frames out to it.
#[derive(Debug)]
pub struct SimDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: VecDeque<Vec<u8>>,
    /// The IP MTU (1500: MSS 1460). smoltcp reads it when the `Interface` is made, so it is
    /// fixed before that ([`SimDevice::with_mtu`]).
    ip_mtu: usize,
}

impl Default for SimDevice {
    fn default() -> SimDevice {
        SimDevice::with_mtu(DEFAULT_IP_MTU)
    }
}

impl SimDevice {
    /// A NIC whose IP MTU is `ip_mtu`: the host's SYNs announce MSS `ip_mtu − 40`.
    pub fn with_mtu(ip_mtu: usize) -> SimDevice {
        SimDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            ip_mtu,
        }
    }

    pub fn ip_mtu(&self) -> usize {
        self.ip_mtu
    }
}

pub struct SimRxToken(Vec<u8>);
pub struct SimTxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for SimRxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for SimTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for SimDevice {
    type RxToken<'a> = SimRxToken;
    type TxToken<'a> = SimTxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // The IP MTU (1500 unless set: MSS 1460) plus the Ethernet header.
        caps.max_transmission_unit = self.ip_mtu + 14;
        // Compute and verify every checksum: the box's incremental updates must be right.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }

    fn receive(&mut self, _t: Instant) -> Option<(SimRxToken, SimTxToken<'_>)> {
        let f = self.rx.pop_front()?;
        Some((SimRxToken(f), SimTxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<SimTxToken<'_>> {
        Some(SimTxToken(&mut self.tx))
    }
}

/// The IP MTU of a host unless [`HostOptions::mtu`] says otherwise.
pub const DEFAULT_IP_MTU: usize = 1500;

/// How one host's TCP differs from the defaults (timestamps, MTU 1500, the simulation's
/// receive buffer, window scaling): given to [`Sim::with_hosts`], as a real peer's sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostOptions {
    /// Offer and accept TCP timestamps (off: the host's sockets have no TSval generator, so
    /// smoltcp neither offers nor answers the option).
    pub timestamps: bool,
    /// The IP MTU of the host's interface: its SYN (SYN-ACK) announces MSS `mtu − 40`.
    pub mtu: usize,
    /// The receive buffer of the host's new sockets, instead of [`Sim::rx_buffer`]: smoltcp
    /// announces window shift `bit_length(buffer) − 16` (0 below 64 KiB).
    pub rx_buffer: Option<usize>,
    /// Window scaling. Off, the window-scale option is removed from every SYN the host sends
    /// and receives (the host's checksums recomputed, as its own stack would write them):
    /// it neither offers nor sees scaling, so on its link both ends use shift 0, as with a
    /// peer whose scaling is turned off. The tap sees the client's SYN without the option
    /// and the box's SYN to the server with it (the server ignores it).
    pub window_scaling: bool,
}

impl HostOptions {
    pub const DEFAULT: HostOptions = HostOptions {
        timestamps: true,
        mtu: DEFAULT_IP_MTU,
        rx_buffer: None,
        window_scaling: true,
    };
}

impl Default for HostOptions {
    fn default() -> HostOptions {
        HostOptions::DEFAULT
    }
}

/// Turns the window-scale option of a TCP SYN (SYN-ACK) in an Ethernet/IPv4 frame into NOPs
/// and recomputes the TCP checksum; anything else is left as it is.
fn strip_window_scale(frame: &mut [u8]) {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) else {
        return;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) else {
        return;
    };
    if !tcp.syn() {
        return;
    }
    let opts = tcp.options_mut();
    let mut pos = 0;
    let mut changed = false;
    while pos < opts.len() {
        match opts[pos] {
            0 => break,
            1 => pos += 1,
            _ => {
                let Some(&len) = opts.get(pos + 1) else { break };
                let len = usize::from(len);
                if len < 2 || pos + len > opts.len() {
                    break;
                }
                if opts[pos] == 3 {
                    opts[pos..pos + len].fill(1);
                    changed = true;
                }
                pos += len;
            }
        }
    }
    if changed {
        tcp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    }
}

/// Which host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostId {
    Client = 0,
    Server = 1,
}

/// A smoltcp host on one link.
pub struct Host {
    pub id: HostId,
    pub mac: EthernetAddress,
    pub ip: Ipv4Address,
    pub iface: Interface,
    pub dev: SimDevice,
    pub sockets: SocketSet<'static>,
    /// How its TCP differs from the defaults (fixed when the host is made).
    pub options: HostOptions,
}

impl Host {
    fn new(
        id: HostId,
        mac: [u8; 6],
        ip: Ipv4Address,
        gw: Ipv4Address,
        seed: u64,
        options: HostOptions,
    ) -> Host {
        // Before the interface: smoltcp reads the device's MTU when it is made.
        let mut dev = SimDevice::with_mtu(options.mtu);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_millis(START_MS as i64));
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(ip), 24))
                .expect("one address fits");
        });
        iface
            .routes_mut()
            .add_default_ipv4_route(gw)
            .expect("the default route fits");
        Host {
            id,
            mac: EthernetAddress(mac),
            ip,
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            options,
        }
    }

    fn poll(&mut self, now: u64) {
        self.iface.poll(
            Instant::from_millis(now as i64),
            &mut self.dev,
            &mut self.sockets,
        );
    }

    fn new_socket(&mut self, rx: usize, tx: usize) -> SocketHandle {
        let rx = self.options.rx_buffer.unwrap_or(rx);
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; tx]),
        );
        let tsval: fn() -> u32 = match self.id {
            HostId::Client => tsval_client,
            HostId::Server => tsval_server,
        };
        s.set_tsval_generator(self.options.timestamps.then_some(tsval));
        self.sockets.add(s)
    }

    /// A frame from the link into the host's NIC.
    fn receive(&mut self, mut frame: Vec<u8>) {
        if !self.options.window_scaling {
            strip_window_scale(&mut frame);
        }
        self.dev.rx.push_back(frame);
    }

    pub fn socket(&self, h: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(h)
    }

    pub fn socket_mut(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

/// An application on one TCP socket: writes `out` (all of it, as buffer space allows),
/// reads everything into `received`, and closes its sending half when it is done if asked.
#[derive(Debug)]
pub struct Endpoint {
    pub host: HostId,
    pub handle: SocketHandle,
    pub out: Vec<u8>,
    pub written: usize,
    pub received: Vec<u8>,
    pub close_when_sent: bool,
    /// With `close_when_sent`: wait until the peer acknowledged every byte before closing,
    /// so the FIN travels alone (see [`Sim::close_after_acked`]).
    pub close_after_acked: bool,
    pub closed: bool,
    /// A listener that answers: once connected, it sends `payload(seed, stream_id(peer,
    /// ServerToClient), len)` to whichever client it accepted.
    pub reply_len: Option<usize>,
    /// The remote port once connected.
    pub peer_port: Option<u16>,
}

/// Index of an [`Endpoint`] in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpId(pub usize);

/// A connection set up by [`Sim::transfer`]: the client's payload to the server and the
/// server's answer, each closed after sending.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub client: EpId,
    pub server: EpId,
    pub cport: u16,
    pub dport: u16,
    pub c2s: usize,
    pub s2c: usize,
}

// ---------------------------------------------------------------------------------------------
// The box

/// The appliance: real workers and control plane on in-memory NICs.
pub struct TheBox {
    pub ctx: Arc<Context>,
    pub inside: Arc<MemNic>,
    pub outside: Arc<MemNic>,
    pub rings: Rings<Vec<u8>>,
    pub workers: Vec<Worker<MemQueue>>,
    pub plane: ControlPlane<Vec<u8>>,
}

/// The testbed configuration (`config/testbed.yaml`).
pub fn testbed_config() -> common::config::Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/testbed.yaml");
    common::config::load(std::path::Path::new(path)).expect("config/testbed.yaml loads")
}

impl TheBox {
    pub fn new(workers: usize, config: common::config::Config) -> TheBox {
        let macs = [MacAddr(BOX_INSIDE_MAC), MacAddr(BOX_OUTSIDE_MAC)];
        let ctx = Arc::new(Context::new(config, macs, ForwardMode::Full));
        let inside = MemNic::new(workers, NIC_DEPTH);
        let outside = MemNic::new(workers, NIC_DEPTH);
        let rings = Rings::new(workers, 4096, 1024);
        let ws = (0..workers)
            .map(|i| {
                Worker::new(
                    i as u16,
                    [inside.queue(i), outside.queue(i)],
                    Arc::clone(&ctx),
                    rings.worker(i),
                )
            })
            .collect();
        let plane = ControlPlane::new(Arc::clone(&ctx));
        TheBox {
            ctx,
            inside,
            outside,
            rings,
            workers: ws,
            plane,
        }
    }

    fn nic(&self, side: Side) -> &Arc<MemNic> {
        match side {
            Side::Inside => &self.inside,
            Side::Outside => &self.outside,
        }
    }

    /// One control turn, then one turn of every worker. Returns packets the control plane took.
    fn turn(&mut self, now: u32) -> usize {
        let rings = &self.rings;
        let mut io = RingIo::new(rings, |f: &[u8]| Some(f.to_vec()));
        let n = self.plane.poll(rings, now, &mut io);
        for w in &mut self.workers {
            w.poll(now);
        }
        n
    }

    /// Polls every worker often enough to age its whole flow table once.
    fn sweep(&mut self, now: u32) {
        for w in &mut self.workers {
            let slots = w.table().memory_bytes() / w.table().bytes_per_slot().max(1);
            for _ in 0..slots / EXPIRE_BUDGET + 1 {
                w.poll(now);
            }
        }
    }

    fn idle(&self) -> bool {
        self.rings.to_control.is_empty()
            && self.rings.from_control.iter().all(|r| r.is_empty())
            && self.rings.commands.iter().all(|r| r.is_empty())
    }
}

/// The sum of all workers' counters.
pub fn sum_counters<'a>(cs: impl IntoIterator<Item = &'a WorkerCounters>) -> WorkerCounters {
    let mut t = WorkerCounters::default();
    for c in cs {
        t.rx += c.rx;
        t.tx += c.tx;
        t.forwarded += c.forwarded;
        t.to_control += c.to_control;
        t.from_control += c.from_control;
        t.flows_created += c.flows_created;
        t.flows_expired += c.flows_expired;
        t.flows_closed += c.flows_closed;
        t.flows_installed += c.flows_installed;
        t.options_malformed += c.options_malformed;
        t.ignored += c.ignored;
        t.drops.add(&c.drops);
    }
    t
}

/// (name, count) of the drop reasons that counted anything.
pub fn nonzero(d: &DropCounters) -> Vec<(&'static str, u64)> {
    d.iter().filter(|&(_, n)| n > 0).collect()
}

// ---------------------------------------------------------------------------------------------
// The trace: every frame that reached the box and what the box did with it

/// What the box did with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    /// Forwarded without a state update (an old duplicate, a SYN on a flow).
    Ignored,
    ToControl,
    Dropped(DropReason),
    /// Nothing counted (should not happen).
    Unknown,
}

/// A TCP segment's header, as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegInfo {
    pub src: Ipv4Address,
    pub sport: u16,
    pub dst: Ipv4Address,
    pub dport: u16,
    pub flags: String,
    pub seq: u32,
    pub ack: u32,
    pub len: usize,
    pub window: u16,
    pub wscale: Option<u8>,
    pub sack: Vec<(u32, u32)>,
    pub ts: Option<(u32, u32)>,
    /// The MSS option (handshake segments).
    pub mss: Option<u16>,
    /// Option bytes beyond the fixed 20-byte header.
    pub opts_len: usize,
    /// The IPv4 TTL: the hosts and the box's legs send 64, the fast path forwards with 63.
    pub ttl: u8,
}

/// Parses the TCP header of an Ethernet/IPv4 frame (None for anything else).
pub fn seg_info(frame: &[u8]) -> Option<SegInfo> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let mut flags = String::new();
    for (on, c) in [
        (tcp.syn(), 'S'),
        (tcp.fin(), 'F'),
        (tcp.rst(), 'R'),
        (tcp.psh(), 'P'),
        (tcp.ack(), '.'),
    ] {
        if on {
            flags.push(c);
        }
    }
    let (mut wscale, mut sack, mut ts, mut mss) = (None, Vec::new(), None, None);
    let mut opts = tcp.options();
    while !opts.is_empty() {
        let Ok((rest, o)) = TcpOption::parse(opts) else {
            break;
        };
        match o {
            TcpOption::EndOfList => break,
            TcpOption::WindowScale(s) => wscale = Some(s),
            TcpOption::SackRange(r) => sack.extend(r.iter().flatten().copied()),
            TcpOption::TimeStamp { tsval, tsecr } => ts = Some((tsval, tsecr)),
            TcpOption::MaxSegmentSize(m) => mss = Some(m),
            _ => {}
        }
        opts = rest;
    }
    Some(SegInfo {
        src: ip.src_addr(),
        sport: tcp.src_port(),
        dst: ip.dst_addr(),
        dport: tcp.dst_port(),
        flags,
        seq: tcp.seq_number().0 as u32,
        ack: tcp.ack_number().0 as u32,
        len: tcp.payload().len(),
        window: tcp.window_len(),
        wscale,
        sack,
        ts,
        mss,
        opts_len: usize::from(tcp.header_len()) - 20,
        ttl: ip.hop_limit(),
    })
}

impl fmt::Display for SegInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} > {}:{} [{}] seq={} ack={} len={} win={}",
            self.src,
            self.sport,
            self.dst,
            self.dport,
            self.flags,
            self.seq,
            self.ack,
            self.len,
            self.window
        )?;
        if let Some(s) = self.wscale {
            write!(f, " wscale={s}")?;
        }
        if !self.sack.is_empty() {
            write!(f, " sack={:?}", self.sack)?;
        }
        if let Some((v, e)) = self.ts {
            write!(f, " ts={v}/{e}")?;
        }
        Ok(())
    }
}

/// One frame delivered to the box.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    pub t_ms: u64,
    pub hop: Hop,
    pub worker: usize,
    /// None for non-TCP frames (ARP, ICMP).
    pub seg: Option<SegInfo>,
    pub outcome: Outcome,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.hop {
            Hop::ClientToBox => "c>s",
            Hop::ServerToBox => "s>c",
            _ => "?",
        };
        write!(f, "t={}ms w{} {dir} ", self.t_ms, self.worker)?;
        match &self.seg {
            Some(s) => write!(f, "{s}")?,
            None => write!(f, "(not TCP)")?,
        }
        match self.outcome {
            Outcome::Dropped(r) => write!(f, " -> DROP {}", r.name()),
            o => write!(f, " -> {o:?}"),
        }
    }
}

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

    // --- what the box counted ---------------------------------------------------------------

    pub fn workers(&self) -> &[Worker<MemQueue>] {
        &self.the_box.workers
    }

    /// All workers' counters added up.
    pub fn counters(&self) -> WorkerCounters {
        sum_counters(self.the_box.workers.iter().map(|w| &w.counters))
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.counters().drops.get(r)
    }

    /// The drop reasons that counted anything, all workers.
    pub fn nonzero_drops(&self) -> Vec<(&'static str, u64)> {
        nonzero(&self.counters().drops)
    }

    /// The participating stack's connections by outcome (proxied, spliced, full_proxy, ...).
    pub fn proxy_connections(&self) -> Connections {
        self.the_box.plane.proxy.connections
    }

    /// The object a worker holds for `key` (either direction): (worker, a copy of it).
    pub fn installed(&self, key: &FlowKey) -> Option<(usize, Conn)> {
        self.the_box.workers.iter().enumerate().find_map(|(i, w)| {
            let (idx, _) = w.table().lookup(key)?;
            Some((i, *w.table().get(idx)))
        })
    }

    pub fn hop_stats(&self, hop: Hop) -> HopStats {
        self.wire.stats[hop as usize]
    }

    /// Flows in all workers' tables.
    pub fn flows(&self) -> usize {
        self.the_box.workers.iter().map(|w| w.table().len()).sum()
    }

    /// The trace entries the box dropped.
    pub fn dropped(&self) -> Vec<&TraceEntry> {
        self.trace
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Dropped(_)))
            .collect()
    }

    /// The trace of one connection (by client port), in order.
    pub fn trace_of(&self, cport: u16) -> Vec<&TraceEntry> {
        self.trace
            .iter()
            .filter(|e| {
                e.seg
                    .as_ref()
                    .is_some_and(|s| s.sport == cport || s.dport == cport)
            })
            .collect()
    }

    /// For a dropped trace entry: it and the `context` entries of its connection before it.
    pub fn explain_drop(&self, index_in_trace: usize, context: usize) -> String {
        let e = &self.trace[index_in_trace];
        let Some(seg) = &e.seg else {
            return format!("{e}");
        };
        let cport = if seg.src == CLIENT_IP {
            seg.sport
        } else {
            seg.dport
        };
        let conn: Vec<_> = self.trace[..=index_in_trace]
            .iter()
            .filter(|x| {
                x.seg
                    .as_ref()
                    .is_some_and(|s| s.sport == cport || s.dport == cport)
            })
            .collect();
        let from = conn.len().saturating_sub(context + 1);
        let mut s = String::new();
        for x in &conn[..3.min(conn.len())] {
            s += &format!("  {x}\n");
        }
        if from > 3 {
            s += "  ...\n";
        }
        for x in &conn[from.max(3.min(conn.len()))..] {
            s += &format!("  {x}\n");
        }
        s
    }

    /// Every drop the box made, each with the handshake and the `context` segments of its
    /// connection before it.
    pub fn explain_drops(&self, context: usize, max: usize) -> String {
        let mut s = String::new();
        let idx: Vec<usize> = (0..self.trace.len())
            .filter(|&i| matches!(self.trace[i].outcome, Outcome::Dropped(_)))
            .collect();
        for &i in idx.iter().take(max) {
            s += &format!("drop #{i}:\n{}", self.explain_drop(i, context));
        }
        if idx.len() > max {
            s += &format!("... and {} more drops\n", idx.len() - max);
        }
        s
    }

    /// smoltcp 0.14 can leave a socket with its FIN unacknowledged and no retransmission
    /// timer (a fast retransmit that fires when only the FIN is outstanding clears the timer
    /// and sends nothing): it then never sends again. True if `ep` looks like that: a state
    /// with our FIN outstanding, nothing in flight on the links, and its host has no timer.
    pub fn fin_stalled(&mut self, ep: EpId) -> bool {
        let e = &self.endpoints[ep.0];
        let (host, handle) = (e.host, e.handle);
        let now = Instant::from_millis(self.now as i64);
        let idle = self.wire.queue.is_empty();
        let h = self.host_mut(host);
        let state = h.socket(handle).state();
        idle && matches!(
            state,
            tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
        ) && h.iface.poll_at(now, &h.sockets).is_none()
    }

    /// A summary for failure messages: time, endpoints, counters, links.
    pub fn report(&self) -> String {
        let mut s = format!("seed {} t={}ms steps={}\n", self.seed, self.now, self.steps);
        for (i, e) in self.endpoints.iter().enumerate() {
            let sock = self.host(e.host).socket(e.handle);
            s += &format!(
                "  ep{i} {:?} peer={:?} state={} written={}/{} unacked={} received={} \
                 closed={}\n",
                e.host,
                e.peer_port,
                sock.state(),
                e.written,
                e.out.len(),
                sock.send_queue(),
                e.received.len(),
                e.closed
            );
        }
        let c = self.counters();
        s += &format!(
            "  box: rx={} tx={} fwd={} ignored={} to_control={} from_control={} created={} \
             closed={} drops={:?}\n",
            c.rx,
            c.tx,
            c.forwarded,
            c.ignored,
            c.to_control,
            c.from_control,
            c.flows_created,
            c.flows_closed,
            nonzero(&c.drops)
        );
        s += &format!("  control: {:?}\n", self.the_box.plane.local.counters);
        let proxy = &self.the_box.plane.proxy;
        if proxy.connections.proxied > 0 {
            s += &format!("  proxy: {:?} {:?}\n", proxy.connections, proxy.counters);
        }
        for h in Hop::ALL {
            s += &format!("  {h:?}: {:?}\n", self.hop_stats(h));
        }
        s
    }
}

/// What the worker's counters say happened to the one frame it just processed.
fn classify(b: &WorkerCounters, a: &WorkerCounters) -> Outcome {
    for r in DropReason::ALL {
        if a.drops.get(r) > b.drops.get(r) {
            return Outcome::Dropped(r);
        }
    }
    if a.ignored > b.ignored {
        Outcome::Ignored
    } else if a.to_control > b.to_control {
        Outcome::ToControl
    } else if a.forwarded > b.forwarded {
        Outcome::Forwarded
    } else {
        Outcome::Unknown
    }
}

/// Asserts a received stream equals the expected one, naming the first difference.
pub fn assert_stream(seed: u64, what: &str, expected: &[u8], got: &[u8]) {
    if expected == got {
        return;
    }
    let first = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    panic!(
        "seed {seed}: {what}: expected {} bytes, got {}; first difference at offset {first}",
        expected.len(),
        got.len()
    );
}

/// What the simulated client and server say around a login, shared by the simulations that
/// log in with `line` or `http-basic` and exchange first bytes.
pub mod script {
    /// The server's first bytes (`none`, `line`).
    pub const BANNER: &[u8] = b"220 server ready\r\n";
    /// The client's first bytes (`none`): sent at once, so they meet the drain.
    pub const HELLO: &[u8] = b"hello from the client\r\n";
    /// The client's bytes after its password (`line`): relayed to the server by the box
    /// before the splice.
    pub const LEFTOVER: &[u8] = b"first command after the password\r\n";
    pub const PASSWORD_LINE: &[u8] = b"wonderland\r\n";
    /// What the box consumes from the client on `line`, and what it says itself.
    pub const LINE_CREDENTIALS: &[u8] = b"alice\r\nwonderland\r\n";
    pub const LINE_OUTPUT: &[u8] = b"Username: Password: Authenticated as alice.\r\n";
    pub const WELCOME: &[u8] = b"Authenticated as alice.\r\n";
    pub const REQUEST: &[u8] =
        b"GET /x HTTP/1.1\r\nHost: s\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n";
    /// The request as the server must get it (the credentials taken out).
    pub const STRIPPED: &[u8] = b"GET /x HTTP/1.1\r\nHost: s\r\n\r\n";
    pub const RESPONSE_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
}

/// The most steps a simulation phase may take: far more than any run needs.
pub const MAX_STEPS: u64 = 200_000;

/// Steps until `ep` has received at least `want.len()` bytes, and checks they start with it.
pub fn expect_from_box(sim: &mut Sim, ep: EpId, want: &[u8], what: &str) {
    let n = want.len();
    sim.run_until(what, MAX_STEPS, |s| s.received(ep).len() >= n);
    let got = &sim.received(ep)[..n];
    assert!(
        got == want,
        "seed {}: {what}: expected {:?}, got {:?}\n{}",
        sim.seed,
        String::from_utf8_lossy(want),
        String::from_utf8_lossy(got),
        sim.report()
    );
}
