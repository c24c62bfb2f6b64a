//! The simulated client and server hosts: smoltcp interfaces on in-memory devices.

use super::*;

thread_local! {
    /// The virtual clock, for smoltcp's timestamp generators (plain `fn() -> u32`).
    pub(super) static CLOCK_MS: Cell<u64> = const { Cell::new(0) };
    /// Per-host TSval offsets (client, server), from the seed.
    pub(super) static TS_OFFSET: Cell<[u32; 2]> = const { Cell::new([0, 0]) };
}

pub(super) fn tsval_client() -> u32 {
    (CLOCK_MS.get() as u32).wrapping_add(TS_OFFSET.get()[0])
}

pub(super) fn tsval_server() -> u32 {
    (CLOCK_MS.get() as u32).wrapping_add(TS_OFFSET.get()[1])
}

/// A host's NIC: frames in from the link, frames out to it.
#[derive(Debug)]
pub struct SimDevice {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: VecDeque<Vec<u8>>,
    /// The IP MTU (1500: MSS 1460). smoltcp reads it when the `Interface` is made, so it is
    /// fixed before that ([`SimDevice::with_mtu`]).
    pub(super) ip_mtu: usize,
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

// A deliberate copy of the box's own leg device (`control::proxy::leg`): the hosts are test
// peers and share no code with the box they test.
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
pub(super) fn strip_window_scale(frame: &mut [u8]) {
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
    pub(super) fn new(
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

    pub(super) fn poll(&mut self, now: u64) {
        self.iface.poll(
            Instant::from_millis(now as i64),
            &mut self.dev,
            &mut self.sockets,
        );
    }

    pub(super) fn new_socket(&mut self, rx: usize, tx: usize) -> SocketHandle {
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
    pub(super) fn receive(&mut self, mut frame: Vec<u8>) {
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
