//! One leg of a proxied connection: a smoltcp interface of its own holding exactly one TCP
//! socket, over an in-memory IP device, with a [`LegTap`] on the device.
//!
//! Why one interface per leg: smoltcp scans the whole socket set on every poll, so one set for
//! every connection would make each packet cost O(connections). The control plane demultiplexes
//! by quad itself (a hash map) and hands the packet to its leg, whose set has one socket: the
//! cost per packet does not grow with the number of connections. An interface with a few
//! sockets' worth of state per leg is the price, paid only while a connection is proxied.
//!
//! Transparency: the client leg's interface owns the *server's* address (with prefix 0, so
//! every destination is on-link) and listens on the server's port; the server leg's owns the
//! *client's* address and connects from the client's port. The box's own addresses never
//! appear.

use std::collections::VecDeque;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
};

use common::wire::Ipv4Addr;

use super::tap::LegTap;

/// Socket buffer per direction: 128 KiB (smoltcp then announces a window shift of 2). Enough
/// for the short proxied phase; a fully proxied (`never`) connection is slower for it.
pub const BUFFER: usize = 128 * 1024;

/// The window shift a leg announces: smoltcp's, from its receive buffer's size.
pub const WINDOW_SHIFT: u8 = (usize::BITS - BUFFER.leading_zeros()).saturating_sub(16) as u8;

/// A leg whose peer acknowledges nothing for this long while the box has data (or a SYN) for
/// it is reset (smoltcp's socket timeout; an idle connection is not affected): a peer that
/// vanished mid-connection would otherwise keep the leg, and the connection, forever.
pub const LEG_TIMEOUT_SECS: u64 = 60;

/// An IP device whose wire is two queues.
#[derive(Debug, Default)]
pub struct LegDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: VecDeque<Vec<u8>>,
    pub mtu: usize,
}

pub struct LegRx(Vec<u8>);
pub struct LegTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for LegRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for LegTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for LegDevice {
    type RxToken<'a> = LegRx;
    type TxToken<'a> = LegTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(LegRx, LegTx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((LegRx(p), LegTx(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<LegTx<'_>> {
        Some(LegTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

/// The TSval a leg sends at `now_ms` of its control plane's clock: the clock's milliseconds
/// (RFC 7323 §5.4: one tick per millisecond is within the recommended range).
pub fn tsval_at(now_ms: u64) -> u32 {
    now_ms as u32
}

std::thread_local! {
    /// The TSval of the leg being polled on this thread, set by [`Leg::poll`] for exactly the
    /// duration of the stack's run. smoltcp takes a plain `fn() -> u32` as its TSval
    /// generator, so the time cannot be captured in it; this hands it the `now` its leg was
    /// polled with, which comes down from the leg's own control plane. Nothing outlives the
    /// poll, so control planes that share a thread or a process (the simulations) never see
    /// each other's clocks.
    static POLL_TSVAL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The legs' TSval generator (smoltcp calls it only from within `Interface::poll`).
fn poll_tsval() -> u32 {
    POLL_TSVAL.with(|t| t.get())
}

fn v4(a: Ipv4Addr) -> Ipv4Address {
    Ipv4Address::from_bits(a.0)
}

pub struct Leg {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub handle: SocketHandle,
    pub dev: LegDevice,
    pub tap: LegTap,
    /// What the leg's SYN or SYN-ACK announces instead of smoltcp's own choice (see
    /// [`SynAnnounce`]).
    pub announce: SynAnnounce,
    /// The most receive window (bytes) the leg's segments announce, when set: each peer is
    /// offered no more than the other peer's window, so right after the splice it does not
    /// send a flight the other cannot take.
    pub window_limit: Option<u32>,
}

/// The options a leg's handshake segment announces, where the box decides rather than
/// smoltcp: smoltcp takes its MSS from the interface's MTU, fixed when the interface is made,
/// and offers SACK on every SYN it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAnnounce {
    /// The MSS option's value; `None` leaves smoltcp's.
    pub mss: Option<u16>,
    /// Whether SACK-permitted stays in (it becomes two NOPs otherwise).
    pub sack: bool,
}

impl Default for SynAnnounce {
    fn default() -> Self {
        SynAnnounce {
            mss: None,
            sack: true,
        }
    }
}

impl SynAnnounce {
    /// Rewrites the options of `ip_packet` if it is a SYN (checksum recomputed: the segment
    /// is the box's own).
    pub fn apply(&self, ip_packet: &mut [u8]) {
        use common::wire::ipv4::Ipv4Packet;
        use common::wire::tcp::{flags, kind, TcpPacket};
        if self.mss.is_none() && self.sack {
            return;
        }
        let Ok(ip) = Ipv4Packet::new_checked(&*ip_packet) else {
            return;
        };
        let (src, dst, ihl) = (ip.src(), ip.dst(), ip.header_len());
        let Ok(mut t) = TcpPacket::new_checked(&mut ip_packet[ihl..]) else {
            return;
        };
        if t.flags() & flags::SYN == 0 {
            return;
        }
        let hdr = t.header_mut();
        let mut pos = common::wire::tcp::HEADER_LEN;
        while pos + 1 < hdr.len() {
            let (k, len) = (hdr[pos], usize::from(hdr[pos + 1]));
            match k {
                kind::END => break,
                kind::NOP => {
                    pos += 1;
                    continue;
                }
                _ if len < 2 || pos + len > hdr.len() => break,
                kind::MSS if len == 4 => {
                    if let Some(m) = self.mss {
                        hdr[pos + 2..pos + 4].copy_from_slice(&m.to_be_bytes());
                    }
                }
                kind::SACK_PERMITTED if !self.sack => {
                    hdr[pos..pos + len].fill(kind::NOP);
                }
                _ => {}
            }
            pos += len;
        }
        t.fill_checksum(src.0, dst.0);
    }
}

impl Leg {
    fn new(own: Ipv4Addr, mtu: usize, seed: u64, timestamps: bool, now: Instant) -> Leg {
        let mut dev = LegDevice {
            mtu,
            ..LegDevice::default()
        };
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut dev, now);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(v4(own)), 0));
        });
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; BUFFER]),
            tcp::SocketBuffer::new(vec![0; BUFFER]),
        );
        sock.set_nagle_enabled(false);
        sock.set_ack_delay(None);
        sock.set_timeout(Some(Duration::from_secs(LEG_TIMEOUT_SECS)));
        if timestamps {
            sock.set_tsval_generator(Some(poll_tsval));
        }
        let mut sockets = SocketSet::new(Vec::with_capacity(1));
        let handle = sockets.add(sock);
        Leg {
            iface,
            sockets,
            handle,
            dev,
            tap: LegTap::default(),
            announce: SynAnnounce::default(),
            window_limit: None,
        }
    }

    /// The client leg: answers as `server`:`port`. With `pause`, its SYN-ACK waits until
    /// [`Leg::unpause`] (the server's options are learnt first).
    pub fn client_leg(
        server: Ipv4Addr,
        port: u16,
        mtu: usize,
        timestamps: bool,
        pause: bool,
        seed: u64,
        now: Instant,
    ) -> Leg {
        let mut leg = Leg::new(server, mtu, seed, timestamps, now);
        let s = leg.socket();
        let _ = s.listen(IpListenEndpoint {
            addr: Some(IpAddress::Ipv4(v4(server))),
            port,
        });
        s.pause_synack(pause);
        leg
    }

    /// A client leg that has answered `syn` (the client's SYN, rebuilt from a SYN cookie)
    /// with a SYN-ACK whose sequence number is `isn`, the cookie: it waits for the client's
    /// ACK. Its own SYN-ACK is not sent (the box sent the cookie's). `None` if the stack did
    /// not pick `isn` (see [`seed_for_isn`]).
    #[allow(clippy::too_many_arguments)]
    pub fn client_leg_answered(
        server: Ipv4Addr,
        port: u16,
        mtu: usize,
        timestamps: bool,
        isn: u32,
        syn: Vec<u8>,
        announce: SynAnnounce,
        now: Instant,
    ) -> Option<Leg> {
        let mut leg = Leg::client_leg(server, port, mtu, timestamps, false, seed_for_isn(isn), now);
        leg.announce = announce;
        leg.input(syn);
        let sent: Vec<Vec<u8>> = leg.poll(now).collect();
        let answered = sent.iter().any(|p| {
            use common::wire::ipv4::Ipv4Packet;
            use common::wire::tcp::TcpPacket;
            Ipv4Packet::new_checked(&p[..]).ok().and_then(|ip| {
                TcpPacket::new_checked(ip.payload())
                    .ok()
                    .map(|t| t.seq_number().0)
            }) == Some(isn)
        });
        (answered && leg.state() == tcp::State::SynReceived).then_some(leg)
    }

    /// The server leg: connects to `server` as `client`.
    #[allow(clippy::too_many_arguments)]
    pub fn server_leg(
        client: Ipv4Addr,
        client_port: u16,
        server: Ipv4Addr,
        server_port: u16,
        mtu: usize,
        timestamps: bool,
        seed: u64,
        now: Instant,
    ) -> Leg {
        let mut leg = Leg::new(client, mtu, seed, timestamps, now);
        let remote = IpEndpoint::new(IpAddress::Ipv4(v4(server)), server_port);
        let local = IpEndpoint::new(IpAddress::Ipv4(v4(client)), client_port);
        let cx = leg.iface.context();
        let s = leg.sockets.get_mut::<tcp::Socket>(leg.handle);
        let _ = s.connect(cx, remote, local);
        leg
    }

    pub fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.handle)
    }

    pub fn state(&self) -> tcp::State {
        self.sockets.get::<tcp::Socket>(self.handle).state()
    }

    /// Sends the held SYN-ACK, announcing `announce`.
    pub fn unpause(&mut self, announce: SynAnnounce) {
        self.announce = announce;
        self.socket().pause_synack(false);
    }

    /// Feeds one IP packet from the peer.
    pub fn input(&mut self, ip_packet: Vec<u8>) {
        log::trace!("leg in: {}", summary(&ip_packet));
        self.tap.incoming(&ip_packet);
        self.dev.rx.push_back(ip_packet);
    }

    /// Runs the stack; returns the IP packets it sends to the peer.
    pub fn poll(&mut self, now: Instant) -> impl Iterator<Item = Vec<u8>> + '_ {
        let tsval = tsval_at(now.total_millis() as u64);
        let outer = POLL_TSVAL.with(|t| t.replace(tsval));
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        POLL_TSVAL.with(|t| t.set(outer));
        let (tap, announce) = (&mut self.tap, self.announce);
        let limit = self.window_limit.map(|l| (l, tap.shifts().1));
        self.dev.tx.drain(..).map(move |mut p| {
            announce.apply(&mut p);
            if let Some((bytes, shift)) = limit {
                clamp_window(&mut p, bytes, shift);
            }
            log::trace!("leg out: {}", summary(&p));
            tap.outgoing(&p);
            p
        })
    }

    /// When the stack next wants to run (retransmission and other timers).
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll_at(now, &self.sockets)
    }
}

/// Lowers the window of a segment (not a SYN, whose window is unscaled) that announces more
/// than `bytes` at the leg's shift `shift`; a non-zero window stays non-zero.
fn clamp_window(ip_packet: &mut [u8], bytes: u32, shift: u8) {
    use common::wire::ipv4::Ipv4Packet;
    use common::wire::tcp::{flags, TcpPacket};
    let Ok(ip) = Ipv4Packet::new_checked(&*ip_packet) else {
        return;
    };
    let (src, dst, ihl) = (ip.src(), ip.dst(), ip.header_len());
    let Ok(mut t) = TcpPacket::new_checked(&mut ip_packet[ihl..]) else {
        return;
    };
    let win = t.window_len();
    let cap = (bytes >> shift.min(14)).clamp(1, u32::from(u16::MAX)) as u16;
    if t.flags() & flags::SYN != 0 || win <= cap {
        return;
    }
    t.set_window_len(cap);
    t.fill_checksum(src.0, dst.0);
}

/// The interface seed that makes a leg's socket pick `isn` as its initial sequence number.
///
/// smoltcp 0.14 draws the ISN from its interface's generator (sPCG32 seeded with
/// `Config::random_seed`), after one draw for the IPv4 identification in `Interface::new`.
/// The generator's step is invertible (an odd multiplier modulo 2^64), so the seed is found by
/// stepping back from a state whose output is `isn`. The box needs this for SYN cookies: the
/// client knows the cookie as the box's ISN. `Leg::client_leg_answered` checks the result,
/// and a test fails if a smoltcp update changes the generator.
pub fn seed_for_isn(isn: u32) -> u64 {
    const M: u64 = 0xbb2e_fcec_3c39_611d;
    const A: u64 = 0x7590_ef39;
    // M's inverse modulo 2^64 by Newton's iteration (each step doubles the correct bits).
    let mut inv = M;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(M.wrapping_mul(inv)));
    }
    let back = |s: u64| s.wrapping_sub(A).wrapping_mul(inv);
    let output = |s: u64| (s >> (29 - (s >> 61))) as u32;
    // A state with its top three bits clear yields bits 29..61: put `isn` there. The bits
    // below are free; pick them so the draw before (the IPv4 identification, drawn again
    // while it is 0) is not 0.
    for low in 0..16u64 {
        let isn_state = u64::from(isn) << 29 | low;
        let id_state = back(isn_state);
        let id = output(id_state);
        if (id ^ id >> 16) as u16 != 0 {
            return back(id_state);
        }
    }
    0
}

/// One line about a segment, for trace logs.
fn summary(ip: &[u8]) -> String {
    use common::wire::ipv4::Ipv4Packet;
    use common::wire::tcp::TcpPacket;
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return "not IPv4".into();
    };
    let Ok(t) = TcpPacket::new_checked(p.payload()) else {
        return "not TCP".into();
    };
    format!(
        "{}:{} > {}:{} flags {:#04x} seq {} ack {} win {} len {}",
        p.src(),
        t.src_port(),
        p.dst(),
        t.dst_port(),
        t.flags(),
        t.seq_number(),
        t.ack_number(),
        t.window_len(),
        t.payload().len()
    )
}
