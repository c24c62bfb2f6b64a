//! The appliance in the simulation, and what the wiretap makes of frames.

use super::*;

/// The appliance: real workers and control plane on in-memory NICs.
pub struct TheBox {
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
        TheBox::spreading(workers, config, Spread::Rss)
    }

    /// The box on NICs that spread packets over the workers' queues by `spread`, steering
    /// them as the DPDK runner would for such ports.
    pub fn spreading(workers: usize, config: common::config::Config, spread: Spread) -> TheBox {
        let macs = [MacAddr(BOX_INSIDE_MAC), MacAddr(BOX_OUTSIDE_MAC)];
        let steering = match spread {
            _ if workers == 1 => Steering::One,
            Spread::Rss => Steering::Rss { reta_size: 128 },
            Spread::BySender => Steering::Software,
        };
        let settings = Arc::new(Settings::new(config, &macs, ForwardMode::Full).steered(steering));
        let inside = MemNic::spreading(workers, NIC_DEPTH, spread);
        let outside = MemNic::spreading(workers, NIC_DEPTH, spread);
        let rings = Rings::new(workers, 4096, 1024);
        let ws = dataplane::testing::mem_workers(&inside, &outside, &settings.workers, &rings);
        let plane = ControlPlane::new(settings);
        TheBox {
            inside,
            outside,
            rings,
            workers: ws,
            plane,
        }
    }

    pub(super) fn nic(&self, side: Side) -> &Arc<MemNic> {
        match side {
            Side::Inside => &self.inside,
            Side::Outside => &self.outside,
        }
    }

    /// One control turn, then one turn of every worker. Returns packets the control plane took.
    pub(super) fn turn(&mut self, now: u32) -> usize {
        let rings = &self.rings;
        let mut io = RingIo::new(rings, |f: &[u8]| Some(f.to_vec()));
        let n = self.plane.poll(rings, now, &mut io);
        for w in &mut self.workers {
            w.poll(now);
        }
        n
    }

    /// Polls every worker often enough to age its whole flow table once.
    pub(super) fn sweep(&mut self, now: u32) {
        for w in &mut self.workers {
            let slots = w.table().memory_bytes() / w.table().bytes_per_slot().max(1);
            for _ in 0..slots / EXPIRE_BUDGET + 1 {
                w.poll(now);
            }
        }
    }

    pub(super) fn idle(&self) -> bool {
        self.rings.to_control.is_empty()
            && self.rings.from_control.iter().all(|r| r.is_empty())
            && self.rings.commands.iter().all(|r| r.is_empty())
    }
}

/// The sum of all workers' counters (every counter: the sum is made from their one list).
pub fn sum_counters<'a>(cs: impl IntoIterator<Item = &'a WorkerCounters>) -> WorkerCounters {
    cs.into_iter().sum()
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
