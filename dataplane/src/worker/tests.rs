//! The worker loop on in-memory ports: paths, policy, inspection, drops, rings, sharding.

use super::*;
use crate::contract::Rings;
use crate::port::{MemNic, MemQueue, Spread};
use crate::testing::{
    arp_request, icmp_echo_frame, mem_workers, tcp_frame, udp_frame, Envelope, Tcp,
};
use crate::testing::{BOX_IN, BOX_OUT, CLIENT, CLIENT_MAC, SERVER, SERVER_MAC};
use crate::testing::{INSIDE, OUTSIDE};
use common::config::{Config, Iface};
use common::wire::ethernet::EthernetFrame;
use common::wire::ipv4::Ipv4Packet;
use common::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use common::wire::Ipv4Addr;

pub(crate) fn testbed_config() -> Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/testbed.yaml");
    common::config::load(std::path::Path::new(path)).unwrap()
}

struct Bed {
    inside: Arc<MemNic>,
    outside: Arc<MemNic>,
    rings: Rings<Vec<u8>>,
    workers: Vec<Worker<MemQueue>>,
    now: u32,
}

impl Bed {
    fn new(workers: usize) -> Bed {
        Bed::with(workers, testbed_config(), ForwardMode::Full, 1024)
    }

    fn with(workers: usize, cfg: Config, mode: ForwardMode, ring: usize) -> Bed {
        Bed::spread(workers, cfg, mode, ring, Spread::Rss, Steering::One)
    }

    /// Workers on NICs that spread packets by `spread`, steered by `steering`.
    fn spread(
        workers: usize,
        cfg: Config,
        mode: ForwardMode,
        ring: usize,
        spread: Spread,
        steering: Steering,
    ) -> Bed {
        let inside = MemNic::spreading(workers, 4096, spread);
        let outside = MemNic::spreading(workers, 4096, spread);
        let mut ctx = Context::new(&cfg, &[BOX_IN, BOX_OUT], mode);
        ctx.steering = steering;
        let ctx = Arc::new(ctx);
        let rings = Rings::new(workers, ring, 64);
        let ws = mem_workers(&inside, &outside, &ctx, &rings);
        let mut b = Bed {
            inside,
            outside,
            rings,
            workers: ws,
            now: 1000,
        };
        b.rings.broadcast(&Command::Neighbour {
            iface: INSIDE,
            ip: CLIENT,
            mac: Some(CLIENT_MAC),
        });
        b.rings.broadcast(&Command::Neighbour {
            iface: OUTSIDE,
            ip: SERVER,
            mac: Some(SERVER_MAC),
        });
        b.poll();
        b
    }

    fn poll(&mut self) {
        for _ in 0..4 {
            for w in &mut self.workers {
                w.poll(self.now);
            }
        }
    }

    /// Client → server frame on the inside wire.
    fn c2s(&mut self, t: Tcp<'_>) {
        let f = tcp_frame(&client_env(), &t);
        assert!(self.inside.inject(f));
        self.poll();
    }

    fn s2c(&mut self, t: Tcp<'_>) {
        let f = tcp_frame(&server_env(), &t);
        assert!(self.outside.inject(f));
        self.poll();
    }

    /// Lets `ms` pass, sweeps, and returns the flows left.
    fn flows_after(&mut self, ms: u32) -> usize {
        self.now += ms;
        self.sweep();
        self.flows()
    }

    /// Polls long enough for housekeeping to visit every slot once.
    fn sweep(&mut self) {
        let slots = self.workers[0].table().slot_count();
        for _ in 0..slots / EXPIRE_BUDGET + 1 {
            for w in &mut self.workers {
                w.poll(self.now);
            }
        }
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.workers.iter().map(|w| w.counters.drops.get(r)).sum()
    }

    fn total(&self, f: impl Fn(&WorkerCounters) -> u64) -> u64 {
        self.workers.iter().map(|w| f(&w.counters)).sum()
    }

    fn flows(&self) -> usize {
        self.workers.iter().map(|w| w.table().len()).sum()
    }

    /// An established spliced object for the client's `sport` to the server's `dport` (Δ = 0,
    /// tracking as a new flow's), for a test to adjust before [`Bed::install`].
    fn spliced_conn(&self, sport: u16, dport: u16) -> Conn {
        let key = FlowKey::new(CLIENT, sport, SERVER, dport);
        let mut c = Conn::new_pass(&key, 0);
        c.set_state(TcpState::Established);
        c.set_flag(ConnFlags::SPLICED, true);
        c
    }

    /// Hands `c` to worker 0 as control does, and lets the worker take it.
    fn install(&mut self, c: Conn) {
        self.rings.commands[0].push(Command::Install(c)).unwrap();
        self.poll();
    }

    /// ARP requests from the client for `n` addresses the box does not own, on the inside
    /// wire (each goes to control).
    fn inject_arp_requests(&self, n: u8) {
        for i in 0..n {
            let ip = Ipv4Addr::new(198, 18, 0, 200 + i);
            assert!(self.inside.inject(arp_request(CLIENT_MAC, CLIENT, ip)));
        }
    }

    fn state(&self, sport: u16, dport: u16) -> Option<TcpState> {
        let key = FlowKey::new(CLIENT, sport, SERVER, dport);
        self.workers.iter().find_map(|w| {
            w.table()
                .lookup(&key)
                .map(|(i, _)| w.table().get(i).state())
        })
    }
}

fn client_env() -> Envelope {
    Envelope {
        src_mac: CLIENT_MAC,
        dst_mac: BOX_IN,
        src: CLIENT,
        dst: SERVER,
        ttl: 64,
    }
}

fn server_env() -> Envelope {
    Envelope {
        src_mac: SERVER_MAC,
        dst_mac: BOX_OUT,
        src: SERVER,
        dst: CLIENT,
        ttl: 64,
    }
}

fn t(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Tcp<'static> {
    Tcp {
        sport,
        dport,
        seq,
        ack,
        flags,
        window: 64000,
        ..Tcp::default()
    }
}

/// A full handshake for a `pass` port through the box; returns (client next, server next).
fn handshake(b: &mut Bed, sport: u16, dport: u16) -> (u32, u32) {
    b.c2s(t(sport, dport, 1000, 0, SYN));
    b.s2c(t(dport, sport, 9000, 1001, SYN | ACK));
    b.c2s(t(sport, dport, 1001, 9001, ACK));
    (1001, 9001)
}

mod pass {
    use super::*;

    #[test]
    fn syn_creates_a_flow_and_is_routed() {
        let mut b = Bed::new(1);
        b.c2s(t(40000, 5201, 1000, 0, SYN));
        let out = b.outside.drain_sent();
        assert_eq!(out.len(), 1);
        let eth = EthernetFrame::new_checked(&out[0][..]).unwrap();
        assert_eq!(eth.src(), BOX_OUT);
        assert_eq!(eth.dst(), SERVER_MAC);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
        assert_eq!(tcp.seq_number().0, 1000, "pass flows are not rewritten");
        assert_eq!(b.total(|c| c.flows_created), 1);
        assert_eq!(b.state(40000, 5201), Some(TcpState::SynSent));
    }

    #[test]
    fn handshake_data_and_orderly_close() {
        let mut b = Bed::new(1);
        let (c, s) = handshake(&mut b, 40000, 5201);
        assert_eq!(b.state(40000, 5201), Some(TcpState::Established));
        let data = [0x55u8; 1000];
        b.c2s(Tcp {
            payload: &data,
            flags: ACK | PSH,
            ..t(40000, 5201, c, s, 0)
        });
        b.s2c(t(5201, 40000, s, c + 1000, ACK));
        b.c2s(t(40000, 5201, c + 1000, s, FIN | ACK));
        assert_eq!(b.state(40000, 5201), Some(TcpState::FinWait));
        b.s2c(t(5201, 40000, s, c + 1001, FIN | ACK));
        assert_eq!(b.state(40000, 5201), Some(TcpState::LastAck));
        b.c2s(t(40000, 5201, c + 1001, s + 1, ACK));
        assert_eq!(b.state(40000, 5201), Some(TcpState::TimeWait));
        assert_eq!(b.total(|c| c.flows_closed), 1);
        assert_eq!(b.outside.drain_sent().len(), 5);
        assert_eq!(b.inside.drain_sent().len(), 3);
        assert_eq!(b.workers[0].counters.drops.total(), 0);
        // TIME-WAIT lasts 120 s in the testbed config; then the flow is closed and gone.
        assert_eq!(b.flows_after(121_000), 0);
        assert_eq!(b.total(|c| c.flows_expired), 1);
    }

    #[test]
    fn idle_established_flows_expire() {
        let mut cfg = testbed_config();
        cfg.flow_table.timeouts.established = std::time::Duration::from_secs(5);
        let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
        handshake(&mut b, 40000, 5201);
        assert_eq!(b.flows_after(4_000), 1);
        assert_eq!(b.flows_after(2_000), 0);
        assert_eq!(b.total(|c| c.flows_expired), 1);
    }

    #[test]
    fn out_of_window_data_is_dropped_and_counted() {
        let mut b = Bed::new(1);
        let (c, s) = handshake(&mut b, 40000, 5201);
        b.outside.drain_sent();
        b.c2s(Tcp {
            payload: b"x",
            ..t(40000, 5201, c + 1_000_000, s, ACK)
        });
        assert_eq!(b.drops(DropReason::OutOfWindow), 1);
        assert!(b.outside.drain_sent().is_empty());
    }

    #[test]
    fn quad_reuse_after_close_goes_to_policy_again() {
        let mut b = Bed::new(1);
        let (c, s) = handshake(&mut b, 40000, 5201);
        b.c2s(t(40000, 5201, c, s, common::wire::tcp::flags::RST));
        assert_eq!(b.state(40000, 5201), Some(TcpState::Close));
        b.c2s(t(40000, 5201, 777_777, 0, SYN));
        assert_eq!(b.state(40000, 5201), Some(TcpState::SynSent));
        assert_eq!(b.total(|c| c.flows_created), 2);
    }
}

mod policy;

mod control_paths {
    use super::*;

    #[test]
    fn arp_and_packets_for_the_box_go_to_control() {
        let mut b = Bed::new(1);
        b.inside.inject(arp_request(
            CLIENT_MAC,
            CLIENT,
            Ipv4Addr::new(198, 18, 0, 254),
        ));
        let mut e = client_env();
        e.dst = Ipv4Addr::new(198, 18, 0, 254);
        b.inside.inject(icmp_echo_frame(&e, 1, 1, b"ping"));
        b.poll();
        for _ in 0..2 {
            let m = b.rings.to_control.pop().unwrap();
            assert_eq!(m.why, Why::Local);
        }
        assert!(b.outside.drain_sent().is_empty());
    }

    #[test]
    fn unknown_neighbour_is_resolved_by_control() {
        let mut b = Bed::new(1);
        b.rings.broadcast(&Command::Neighbour {
            iface: OUTSIDE,
            ip: SERVER,
            mac: None,
        });
        b.c2s(t(40000, 5201, 1000, 0, SYN));
        let m = b.rings.to_control.pop().unwrap();
        assert_eq!(
            m.why,
            Why::Resolve {
                out: OUTSIDE,
                next_hop: SERVER
            }
        );
        let eth = EthernetFrame::new_checked(&m.pkt[..]).unwrap();
        assert_eq!(eth.src(), BOX_OUT);
        assert_eq!(eth.dst(), MacAddr::ZERO);
    }

    #[test]
    fn ttl_expiry_goes_to_control() {
        let mut b = Bed::new(1);
        let mut e = client_env();
        e.ttl = 1;
        b.inside.inject(icmp_echo_frame(&e, 1, 1, b"ping"));
        b.poll();
        assert_eq!(b.rings.to_control.pop().unwrap().why, Why::TtlExceeded);
        // Control only answers it: for the box the packet is a drop, counted once.
        assert_eq!(b.drops(DropReason::TtlExceeded), 1);
        assert_eq!(b.total(|c| c.to_control), 0);
        assert_eq!(b.total(|c| c.forwarded), 0);
    }

    #[test]
    fn full_control_ring_is_a_counted_drop() {
        let mut b = Bed::with(1, testbed_config(), ForwardMode::Full, 2);
        b.inject_arp_requests(5);
        b.poll();
        assert_eq!(b.rings.to_control.len(), 2);
        assert_eq!(b.drops(DropReason::ControlRingFull), 3);
    }
}

mod capture;

/// Stateful UDP and ICMP.
mod datagram;

/// Several workers: packets handed to the worker that owns their flow.
mod handoff;

mod drops {
    use super::*;

    #[test]
    fn malformed_frames_are_counted_by_reason() {
        let mut b = Bed::new(1);
        b.inside.inject(vec![0u8; 10]);
        let mut f = tcp_frame(&client_env(), &t(40000, 5201, 1, 0, SYN));
        f[14] = 0x44; // IHL 4
        b.inside.inject(f);
        let mut f = tcp_frame(&client_env(), &t(40000, 5201, 1, 0, SYN));
        f[14 + 20 + 12] = 0x40; // TCP data offset 4
        b.inside.inject(f);
        let mut f = tcp_frame(&client_env(), &t(40000, 5201, 1, 0, SYN));
        f[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
        b.inside.inject(f);
        let mut f = tcp_frame(&client_env(), &t(40000, 5201, 1, 0, SYN));
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        b.inside.inject(f);
        b.poll();
        assert_eq!(b.drops(DropReason::Truncated), 1);
        assert_eq!(b.drops(DropReason::BadIpHeader), 1);
        assert_eq!(b.drops(DropReason::BadTcpHeader), 1);
        assert_eq!(b.drops(DropReason::NotForUs), 1);
        assert_eq!(b.drops(DropReason::UnsupportedEtherType), 1);
        assert!(b.outside.drain_sent().is_empty());
    }

    #[test]
    fn full_tx_queue_is_a_counted_drop() {
        // An outside NIC whose wire holds 8 frames: a burst of 32 SYNs must lose 24, counted.
        let inside = MemNic::new(1, 4096);
        let outside = MemNic::new(1, 8);
        let ctx = Arc::new(Context::new(
            &testbed_config(),
            &[BOX_IN, BOX_OUT],
            ForwardMode::Full,
        ));
        let rings = Rings::new(1, 64, 64);
        let mut w = mem_workers(&inside, &outside, &ctx, &rings).pop().unwrap();
        rings.broadcast(&Command::Neighbour {
            iface: OUTSIDE,
            ip: SERVER,
            mac: Some(SERVER_MAC),
        });
        for i in 0..32u16 {
            inside.inject(tcp_frame(&client_env(), &t(40000 + i, 5201, 1, 0, SYN)));
        }
        w.poll(0);
        assert_eq!(outside.drain_sent().len(), 8);
        assert_eq!(w.counters.drops.get(DropReason::TxFull), 24);
        assert_eq!(w.pending_tx(), 0);
    }
}

mod sharding {
    use super::*;

    /// Four workers on four-queue ports: every connection is created in exactly one shard,
    /// its replies reach that same shard (the SYN-ACK and ACK are accepted, never `no_flow`),
    /// and the flows are spread over all workers.
    #[test]
    fn both_directions_of_every_flow_reach_the_same_worker() {
        let mut b = Bed::new(4);
        let n = 400u16;
        for i in 0..n {
            b.inside
                .inject(tcp_frame(&client_env(), &t(20000 + i, 5201, 1000, 0, SYN)));
        }
        b.poll();
        for i in 0..n {
            b.outside.inject(tcp_frame(
                &server_env(),
                &t(5201, 20000 + i, 9000, 1001, SYN | ACK),
            ));
        }
        b.poll();
        for i in 0..n {
            b.inside.inject(tcp_frame(
                &client_env(),
                &t(20000 + i, 5201, 1001, 9001, ACK),
            ));
        }
        b.poll();
        assert_eq!(b.flows(), n as usize);
        for i in 0..n {
            assert_eq!(
                b.state(20000 + i, 5201),
                Some(TcpState::Established),
                "flow {i}"
            );
        }
        let total_drops: u64 = b.workers.iter().map(|w| w.counters.drops.total()).sum();
        assert_eq!(total_drops, 0);
        for w in &b.workers {
            let share = w.table().len();
            assert!(
                share > (n as usize) / 8,
                "worker {} got only {share} flows",
                w.id
            );
        }
    }
}

#[test]
fn control_packets_are_sent_by_the_worker() {
    let mut b = Bed::new(1);
    let frame = arp_request(BOX_OUT, Ipv4Addr::new(198, 19, 0, 254), SERVER);
    b.rings.send(0, OUTSIDE, frame.clone()).unwrap();
    b.poll();
    assert_eq!(b.outside.drain_sent(), vec![frame]);
    assert_eq!(b.total(|c| c.from_control), 1);
}

#[test]
fn io_mode_forwards_untouched() {
    let mut b = Bed::with(1, testbed_config(), ForwardMode::Io, 64);
    let f = tcp_frame(&client_env(), &t(40000, 22, 1000, 0, SYN));
    b.inside.inject(f.clone());
    b.poll();
    assert_eq!(b.outside.drain_sent(), vec![f]);
}

mod icmp {
    use super::*;
    use common::wire::icmp::{IcmpErrorRepr, IcmpPacket};
    use common::wire::ipv4::Protocol;

    /// A spliced flow (Δ1 = 10) and a router behind the server answering "fragmentation
    /// needed" about a client segment as the box sent it (seq 1010): the client must get
    /// the error quoting its own seq 1000, even with ICMP denied by policy.
    #[test]
    fn errors_about_spliced_flows_are_related_and_restored() {
        let mut cfg = testbed_config();
        cfg.policy
            .retain(|r| r.protocol != common::config::Protocol::Icmp);
        let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
        let mut c = b.spliced_conn(40000, 9000);
        c.delta1 = 10;
        b.install(c);
        let sent = tcp_frame(&client_env(), &t(40000, 9000, 1010, 0, ACK | PSH));
        let err = IcmpErrorRepr::frag_needed(1400, &sent[14..]);
        let mut body = vec![0u8; err.buffer_len()];
        err.emit(&mut body);
        let mut e = server_env();
        e.src = Ipv4Addr::new(198, 19, 0, 7);
        let mut f = tcp_frame(&e, &Tcp::default());
        // replace the TCP payload of the envelope by the ICMP message
        let repr = common::wire::ipv4::Ipv4Repr {
            src: e.src,
            dst: CLIENT,
            protocol: Protocol::ICMP,
            payload_len: body.len(),
            ttl: 64,
            ident: 1,
        };
        f.truncate(14);
        let mut ip = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ip);
        ip[20..].copy_from_slice(&body);
        f.extend_from_slice(&ip);
        b.outside.inject(f);
        b.poll();
        let out = b.inside.drain_sent();
        assert_eq!(
            out.len(),
            1,
            "related ICMP passes a policy that denies ICMP"
        );
        let eth = EthernetFrame::new_checked(&out[0][..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        let q = Ipv4Packet::new_checked_quoted(icmp.quoted()).unwrap();
        let l4 = q.payload();
        assert_eq!(u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]), 1000);
        assert_eq!(b.total(|c| c.icmp_quotes_rewritten), 1);
    }
}

/// Published counters, the flow census, flow listings, and reloads.
mod live;

/// Options one peer negotiated and the other did not: timestamps removed and inserted,
/// oversized segments split.
mod xlate;

/// TCP options are walked once per packet, for the tracker and the rewrite together.
mod options;

/// Four ports, one of them a VLAN trunk: routing between any two, tags pushed, popped and
/// kept, the zones of the policy, `unknown_vlan`, io forwarding in pairs.
mod ports;

/// The vector path and the slow path, side by side over random bursts.
mod differential;

/// The lcore loop's `Worker::turn`: a saturated worker does its housekeeping once in
/// `HOUSEKEEPING_EVERY` turns, an unsaturated one on every turn.
mod turns;
