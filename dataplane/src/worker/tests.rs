//! The worker loop on in-memory ports: paths, policy, inspection, drops, rings, sharding.

use super::*;
use crate::port::{MemNic, MemQueue};
use crate::ring::Rings;
use crate::testing::{arp_request, icmp_echo_frame, tcp_frame, udp_frame, Envelope, Tcp};
use common::config::{Config, Side};
use common::wire::ethernet::EthernetFrame;
use common::wire::ipv4::Ipv4Packet;
use common::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use common::wire::Ipv4Addr;

const BOX_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const BOX_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x01]);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x02]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

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
        let inside = MemNic::new(workers, 4096);
        let outside = MemNic::new(workers, 4096);
        let ctx = Arc::new(Context::new(cfg, [BOX_IN, BOX_OUT], mode));
        let rings = Rings::new(workers, ring, 64);
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
        let mut b = Bed {
            inside,
            outside,
            rings,
            workers: ws,
            now: 1000,
        };
        b.rings.broadcast(&Command::Neighbour {
            port: Side::Inside,
            ip: CLIENT,
            mac: Some(CLIENT_MAC),
        });
        b.rings.broadcast(&Command::Neighbour {
            port: Side::Outside,
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

    fn state(&self, sport: u16, dport: u16) -> Option<TcpState> {
        let key = FlowKey::new(CLIENT, sport, SERVER, dport);
        self.workers
            .iter()
            .find_map(|w| w.table().lookup(&key).map(|(i, _)| w.table().get(i).state))
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
        b.now += 121_000;
        b.sweep();
        assert_eq!(b.flows(), 0);
        assert_eq!(b.total(|c| c.flows_expired), 1);
    }

    #[test]
    fn idle_established_flows_expire() {
        let mut cfg = testbed_config();
        cfg.flow_table.timeouts.established = std::time::Duration::from_secs(5);
        let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
        handshake(&mut b, 40000, 5201);
        b.now += 4_000;
        b.sweep();
        assert_eq!(b.flows(), 1);
        b.now += 2_000;
        b.sweep();
        assert_eq!(b.flows(), 0);
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

mod policy {
    use super::*;

    #[test]
    fn denied_syn_gets_nothing_through() {
        let mut b = Bed::new(1);
        b.c2s(t(40000, 22, 1000, 0, SYN));
        assert_eq!(b.drops(DropReason::PolicyDeny), 1);
        assert!(b.outside.drain_sent().is_empty());
        assert_eq!(b.flows(), 0);
    }

    #[test]
    fn segment_without_a_flow_is_dropped() {
        let mut b = Bed::new(1);
        b.c2s(t(40000, 5201, 1000, 5, ACK));
        assert_eq!(b.drops(DropReason::NoFlow), 1);
    }

    /// The ACK answering a SYN cookie has no flow (control kept nothing): toward a `proxy`
    /// rule it goes to control, which checks the cookie; anything else without a flow, or
    /// any of it with `syn_cookies: never`, is dropped here.
    #[test]
    fn an_ack_without_a_flow_toward_a_proxy_rule_goes_to_control() {
        let mut b = Bed::new(1);
        b.c2s(t(40000, 8080, 1001, 5, ACK));
        let m = b.rings.to_control.pop().expect("to control");
        assert!(matches!(m.why, Why::ProxyAck { .. }), "{:?}", m.why);
        assert_eq!((m.port, b.flows()), (Side::Inside, 0), "nothing kept");
        for (flags, dport) in [
            (ACK | RST, 8080),
            (RST, 8080),
            (ACK, 5201),
            (ACK | SYN, 8080),
        ] {
            b.c2s(t(40001, dport, 1001, 5, flags));
            assert!(
                b.rings.to_control.pop().is_none(),
                "flags {flags:#x} to {dport}"
            );
        }
        let mut cfg = testbed_config();
        cfg.proxy.syn_cookies = common::config::SynCookies::Never;
        let mut b = Bed::with(1, cfg, ForwardMode::Full, 1024);
        b.c2s(t(40000, 8080, 1001, 5, ACK));
        assert!(b.rings.to_control.pop().is_none());
        assert_eq!(b.drops(DropReason::NoFlow), 1);
    }

    /// While control answers with cookies, a SYN to a `proxy` rule leaves nothing behind.
    #[test]
    fn no_placeholder_while_control_sends_cookies() {
        let mut b = Bed::new(1);
        b.rings
            .syn_cookies
            .store(true, std::sync::atomic::Ordering::Relaxed);
        b.c2s(t(40000, 8080, 1000, 0, SYN));
        let m = b.rings.to_control.pop().unwrap();
        assert!(
            matches!(
                m.why,
                Why::ProxySyn {
                    placeholder: false,
                    ..
                }
            ),
            "{:?}",
            m.why
        );
        assert_eq!(b.flows(), 0);
        b.rings
            .syn_cookies
            .store(false, std::sync::atomic::Ordering::Relaxed);
        b.c2s(t(40001, 8080, 1000, 0, SYN));
        let m = b.rings.to_control.pop().unwrap();
        assert!(matches!(
            m.why,
            Why::ProxySyn {
                placeholder: true,
                ..
            }
        ));
        assert_eq!(b.flows(), 1);
    }

    #[test]
    fn proxied_connections_follow_their_syn_to_control() {
        let mut b = Bed::new(1);
        b.c2s(t(40000, 8080, 1000, 0, SYN));
        let m = b.rings.to_control.pop().unwrap();
        assert!(matches!(m.why, Why::ProxySyn { .. }));
        assert_eq!(m.port, Side::Inside);
        assert_eq!(b.flows(), 1, "a placeholder");
        // both directions of the quad now go to control, whatever their flags
        b.c2s(t(40000, 8080, 1001, 5, ACK));
        b.s2c(t(8080, 40000, 5, 1001, ACK));
        assert_eq!(b.rings.to_control.pop().unwrap().why, Why::Proxied);
        assert_eq!(b.rings.to_control.pop().unwrap().why, Why::Proxied);
        assert!(b.outside.drain_sent().is_empty());
        // the spliced object replaces the placeholder
        let key = FlowKey::new(CLIENT, 40000, SERVER, 8080);
        let mut c = Conn::new_pass(&key, 0, b.now);
        c.state = TcpState::Established;
        c.flags = ConnFlags::SPLICED;
        c.delta1 = 100;
        b.rings.commands[0].push(Command::Install(c)).unwrap();
        b.poll();
        let (i, _) = b.workers[0].table().lookup(&key).unwrap();
        assert_eq!(b.workers[0].table().get(i).delta1, 100);
        assert_eq!(b.flows(), 1);
    }

    #[test]
    fn icmp_passes_udp_is_denied() {
        let mut b = Bed::new(1);
        b.inside
            .inject(icmp_echo_frame(&client_env(), 1, 1, b"ping"));
        b.inside.inject(udp_frame(&client_env(), 5000, 53, b"q"));
        b.poll();
        assert_eq!(b.outside.drain_sent().len(), 1);
        assert_eq!(b.drops(DropReason::PolicyDeny), 1);
    }
}

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
            port: Side::Outside,
            ip: SERVER,
            mac: None,
        });
        b.c2s(t(40000, 5201, 1000, 0, SYN));
        let m = b.rings.to_control.pop().unwrap();
        assert_eq!(
            m.why,
            Why::Resolve {
                out: Side::Outside,
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
    }

    #[test]
    fn full_control_ring_is_a_counted_drop() {
        let mut b = Bed::with(1, testbed_config(), ForwardMode::Full, 2);
        for i in 0..5 {
            b.inside.inject(arp_request(
                CLIENT_MAC,
                CLIENT,
                Ipv4Addr::new(198, 18, 0, 200 + i),
            ));
        }
        b.poll();
        assert_eq!(b.rings.to_control.len(), 2);
        assert_eq!(b.drops(DropReason::ControlRingFull), 3);
    }
}

mod capture;

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
            testbed_config(),
            [BOX_IN, BOX_OUT],
            ForwardMode::Full,
        ));
        let rings = Rings::new(1, 64, 64);
        let mut w = Worker::new(0, [inside.queue(0), outside.queue(0)], ctx, rings.worker(0));
        rings.broadcast(&Command::Neighbour {
            port: Side::Outside,
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
    b.rings.send(0, Side::Outside, frame.clone()).unwrap();
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
        let key = FlowKey::new(CLIENT, 40000, SERVER, 9000);
        let mut c = Conn::new_pass(&key, 0, b.now);
        c.state = TcpState::Established;
        c.flags = ConnFlags::SPLICED;
        c.delta1 = 10;
        b.rings.commands[0].push(Command::Install(c)).unwrap();
        b.poll();
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

/// Issue 7: published counters, the flow census, flow listings, and reloads.
mod live {
    use super::*;
    use crate::live::{FlowDump, FlowFilter, Reply, PUBLISH_MS};
    use crate::ring::NewContext;
    use common::config::Action;

    #[test]
    fn counters_are_published_every_period_not_per_packet() {
        let mut b = Bed::new(1);
        let slot = b.workers[0].stats_slot();
        handshake(&mut b, 40000, 5201);
        let before = slot.publications();
        // The same millisecond: many polls, no new publication.
        for _ in 0..100 {
            b.poll();
        }
        assert!(slot.publications() <= before + 1);
        b.now += PUBLISH_MS;
        b.poll();
        let s = slot.read().expect("published");
        assert_eq!(s.counters, b.workers[0].counters);
        assert_eq!(s.flows_active, 1);
        assert_eq!(s.published_ms, u64::from(b.now));
        // A full sweep counts the flow by state and phase.
        b.sweep();
        b.now += PUBLISH_MS;
        b.poll();
        let s = slot.read().unwrap();
        assert_eq!(s.census.by_state[TcpState::Established as usize], 1);
        assert_eq!(
            (s.census.pass, s.census.spliced, s.census.proxied),
            (1, 0, 0)
        );
        assert_eq!(s.census.total(), 1);
    }

    fn dump(b: &mut Bed, filter: &str, limit: usize) -> Box<FlowDump> {
        let d = FlowDump::new(1, FlowFilter::parse(filter).unwrap(), limit);
        b.rings.commands[0].push(Command::DumpFlows(d)).unwrap();
        for _ in 0..1000 {
            b.poll();
            if let Some(Reply::Flows(d)) = b.rings.replies.pop() {
                return d;
            }
        }
        panic!("no listing came back");
    }

    #[test]
    fn flow_listings_are_bounded_and_filtered() {
        let mut b = Bed::new(1);
        for i in 0..40u16 {
            b.c2s(t(40000 + i, 5201 + i % 2, 1000, 0, SYN));
        }
        assert_eq!(b.flows(), 40);
        let d = dump(&mut b, "", 10);
        assert_eq!((d.flows.len(), d.matched, d.total), (10, 40, 40));
        assert_eq!(d.flows.capacity(), 10, "the worker never grew the buffer");
        let d = dump(&mut b, "5202", 100);
        assert_eq!((d.flows.len(), d.matched), (20, 20));
        assert!(d.flows.iter().all(|c| c.server_port == 5202));
        assert!(d.flows.iter().all(|c| c.state == TcpState::SynSent));
        let d = dump(&mut b, "198.20.0.0/16", 100);
        assert_eq!((d.flows.len(), d.matched), (0, 0));
    }

    #[test]
    fn a_reload_judges_new_connections_and_keeps_the_old_ones() {
        let mut b = Bed::new(1);
        let slot = b.workers[0].stats_slot();
        // A pass flow, and a spliced flow on 9000.
        let (c, s) = handshake(&mut b, 40000, 5201);
        let key = FlowKey::new(CLIENT, 40001, SERVER, 9000);
        let mut conn = Conn::new_pass(&key, 0, b.now);
        conn.state = TcpState::Established;
        conn.flags = ConnFlags::SPLICED;
        conn.delta1 = 1000;
        // Window tracking as if the client is at 5000 and the server at 7000.
        use common::seq::SeqNumber;
        conn.track[0] = common::conn::Track {
            end: SeqNumber(5000),
            maxend: SeqNumber(5000 + 64000),
            maxwin: 64000,
        };
        conn.track[1] = common::conn::Track {
            end: SeqNumber(7000),
            maxend: SeqNumber(7000 + 64000),
            maxwin: 64000,
        };
        b.rings.commands[0].push(Command::Install(conn)).unwrap();
        b.poll();
        b.outside.drain_sent();

        // The new policy: iperf3 ports denied, 22 passed.
        let mut cfg = testbed_config();
        for r in &mut cfg.policy {
            if r.name.as_deref() == Some("iperf3") {
                r.action = Action::Deny;
            }
        }
        let mut ssh = cfg.policy[1].clone();
        ssh.name = Some("ssh".into());
        ssh.ports = vec![common::config::PortRange { lo: 22, hi: 22 }];
        ssh.action = Action::Pass;
        cfg.policy.insert(0, ssh);
        let old = Context::new(testbed_config(), [BOX_IN, BOX_OUT], ForwardMode::Full);
        let (new, kept) = old.reloaded(cfg);
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(new.generation, 1);
        b.rings.commands[0]
            .push(Command::Reload(NewContext(Arc::new(new))))
            .unwrap();
        b.poll();
        assert_eq!(b.workers[0].policy_generation(), 1);
        b.now += PUBLISH_MS;
        b.poll();
        assert_eq!(slot.read().unwrap().policy_generation, 1);

        // New connections: 22 passes, 5202 is denied.
        b.c2s(t(40002, 22, 1000, 0, SYN));
        assert_eq!(b.state(40002, 22), Some(TcpState::SynSent));
        b.c2s(t(40003, 5202, 1000, 0, SYN));
        assert_eq!(b.drops(DropReason::PolicyDeny), 1);
        assert_eq!(b.state(40003, 5202), None);
        assert_eq!(b.outside.drain_sent().len(), 1, "only the SYN to 22");

        // The flows from before the reload go on: the pass flow, and the spliced one rewritten.
        b.c2s(Tcp {
            payload: b"still here",
            flags: ACK | PSH,
            ..t(40000, 5201, c, s, 0)
        });
        b.c2s(Tcp {
            payload: b"spliced",
            flags: ACK | PSH,
            ..t(40001, 9000, 5000, 7000, 0)
        });
        let out = b.outside.drain_sent();
        assert_eq!(
            out.len(),
            2,
            "both old flows forwarded; drops {:?}",
            b.workers[0].counters.drops
        );
        let eth = EthernetFrame::new_checked(&out[1][..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.seq_number().0, 6000, "rewritten by delta1");
        assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
    }
}

/// TCP options are walked once per packet, for the tracker and the rewrite together.
mod options {
    use super::*;
    use common::conn::Track;
    use common::wire::tcp::{kind, SynOptions, TcpOption};
    use proptest::prelude::*;

    /// `segment_of` as it was, walking the options itself (`SynOptions::parse` for a SYN, the
    /// option iterator up to the first malformed option for the SACK edges otherwise).
    fn reference_segment_of(tcp: &TcpPacket<&[u8]>, ack_sub: u32) -> Segment {
        let fl = tcp.flags();
        let mut sack_max: Option<SeqNumber> = None;
        let mut syn_wscale = None;
        if tcp.header_len() > common::wire::tcp::HEADER_LEN {
            if fl & flags::SYN != 0 {
                if let Ok(o) = SynOptions::parse(tcp.options()) {
                    syn_wscale = o.window_scale;
                }
            } else {
                for (_, o) in tcp.option_iter().map_while(Result::ok) {
                    if let TcpOption::Sack(s) = o {
                        for &(_, right) in s.as_slice() {
                            let r = right.wrapping_sub(ack_sub);
                            sack_max = Some(sack_max.map_or(r, |m| m.max(r)));
                        }
                    }
                }
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

    /// Option lists padded to whole words: valid timestamps, SACK (edges on both sides of
    /// the 2^31 wrap), window scale and MSS, mixed with malformed and unknown options.
    fn option_words() -> impl Strategy<Value = Vec<u8>> {
        let chunk = prop_oneof![
            3 => Just(vec![kind::NOP]),
            1 => Just(vec![kind::END]),
            2 => any::<u8>().prop_map(|w| vec![kind::WINDOW_SCALE, 3, w]),
            1 => Just(vec![kind::MSS, 4, 5, 0xb4]),
            3 => any::<[u8; 8]>().prop_map(|d| [&[kind::TIMESTAMPS, 10][..], &d].concat()),
            4 => (1usize..=4, any::<[u8; 32]>())
                .prop_map(|(n, d)| [&[kind::SACK, (2 + 8 * n) as u8][..], &d[..8 * n]].concat()),
            2 => (any::<u8>(), 0u8..12).prop_map(|(k, l)| {
                let mut v = vec![k, l];
                v.resize(usize::from(l.max(2)), 0x5a);
                v
            }),
        ];
        proptest::collection::vec(chunk, 0..7).prop_map(|c| {
            let mut v = c.concat();
            v.truncate(40);
            while v.len() % 4 != 0 {
                v.push(kind::END);
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// The tracker's input from the one-walk map equals the one the worker computed by
        /// walking the options itself.
        #[test]
        fn segment_of_equals_the_own_walk_reference(
            opts in option_words(),
            syn: bool,
            ack_flag: bool,
            seq: u32,
            ack: u32,
            ack_sub in prop_oneof![Just(0u32), any::<u32>()],
        ) {
            let fl = if syn { SYN } else { 0 } | if ack_flag { ACK } else { 0 };
            let f = tcp_frame(&client_env(), &Tcp { options: &opts, ..t(40000, 5201, seq, ack, fl) });
            let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
            let map = tcp.option_map();
            prop_assert_eq!(segment_of(&tcp, &map, ack_sub), reference_segment_of(&tcp, ack_sub));
        }
    }

    fn ts_sack(tsval: u32, tsecr: u32, sack: (u32, u32)) -> Vec<u8> {
        let mut o = vec![1, 1, kind::TIMESTAMPS, 10];
        o.extend_from_slice(&tsval.to_be_bytes());
        o.extend_from_slice(&tsecr.to_be_bytes());
        o.extend_from_slice(&[1, 1, kind::SACK, 10]);
        o.extend_from_slice(&sack.0.to_be_bytes());
        o.extend_from_slice(&sack.1.to_be_bytes());
        o
    }

    /// A spliced flow: Δ1 = 10, Δ2 = 3000, timestamp offsets 50 (client's) and 20 (server's);
    /// the server has sent up to 5000 in its own space (8000 as the client sees it).
    fn spliced_bed() -> Bed {
        let mut b = Bed::new(1);
        let key = FlowKey::new(CLIENT, 40000, SERVER, 9000);
        let mut c = Conn::new_pass(&key, 0, b.now);
        c.state = TcpState::Established;
        c.flags = ConnFlags::SPLICED | ConnFlags::TIMESTAMPS;
        c.delta1 = 10;
        c.delta2 = 3000;
        c.ts_offset = [50, 20];
        c.track = [
            Track {
                end: SeqNumber(1000),
                maxend: SeqNumber(70_000),
                maxwin: 65_535,
            },
            Track {
                end: SeqNumber(5000),
                maxend: SeqNumber(70_000),
                maxwin: 65_535,
            },
        ];
        b.rings.commands[0].push(Command::Install(c)).unwrap();
        b.poll();
        b
    }

    fn sent_tcp(f: &[u8]) -> TcpPacket<&[u8]> {
        TcpPacket::new_checked(&f[34..]).unwrap()
    }

    #[test]
    fn spliced_sack_and_timestamps_are_tracked_and_rewritten_from_one_walk() {
        let mut b = spliced_bed();
        let opts = ts_sack(100, 220, (7950, 8000));
        b.c2s(Tcp {
            options: &opts,
            ..t(40000, 9000, 1000, 7900, ACK)
        });
        let out = b.outside.drain_sent();
        assert_eq!(out.len(), 1, "drops: {:?}", b.workers[0].counters.drops);
        let tcp = sent_tcp(&out[0]);
        assert_eq!((tcp.seq_number().0, tcp.ack_number().0), (1010, 4900));
        let mut seen = (false, false);
        for (_, o) in tcp.option_iter().map(Result::unwrap) {
            match o {
                TcpOption::Timestamps { tsval, tsecr } => {
                    assert_eq!((tsval, tsecr), (150, 200));
                    seen.0 = true;
                }
                TcpOption::Sack(s) => {
                    assert_eq!(s.as_slice(), &[(SeqNumber(4950), SeqNumber(5000))]);
                    seen.1 = true;
                }
                _ => {}
            }
        }
        assert_eq!(seen, (true, true));
        assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
        assert_eq!(b.total(|c| c.options_malformed), 0);

        // A SACK edge past what the server sent (8100 - Δ2 = 5100 > 5000) is caught by the
        // tracker from the same map, in the server's space.
        b.c2s(Tcp {
            options: &ts_sack(101, 220, (7950, 8100)),
            ..t(40000, 9000, 1000, 7900, ACK)
        });
        assert!(b.outside.drain_sent().is_empty());
        assert_eq!(b.drops(DropReason::AckBeyondData), 1);
    }

    #[test]
    fn malformed_options_on_a_spliced_flow_are_forwarded_untouched_and_counted() {
        let mut b = spliced_bed();
        let mut opts = ts_sack(100, 220, (7950, 8000));
        opts.extend_from_slice(&[0x22, 0, 0, 0]); // an option of length 0
        b.c2s(Tcp {
            options: &opts,
            ..t(40000, 9000, 1000, 7900, ACK)
        });
        let out = b.outside.drain_sent();
        assert_eq!(out.len(), 1);
        let tcp = sent_tcp(&out[0]);
        assert_eq!(tcp.options(), &opts[..]);
        assert_eq!((tcp.seq_number().0, tcp.ack_number().0), (1010, 4900));
        assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
        assert_eq!(b.total(|c| c.options_malformed), 1);

        // No options at all: nothing to count.
        b.c2s(t(40000, 9000, 1000, 7900, ACK));
        assert_eq!(b.outside.drain_sent().len(), 1);
        assert_eq!(b.total(|c| c.options_malformed), 1);
    }

    #[test]
    fn a_pass_syn_takes_its_window_scale_from_the_map() {
        let mut b = Bed::new(1);
        b.c2s(Tcp {
            options: &[kind::NOP, kind::WINDOW_SCALE, 3, 7],
            ..t(40000, 5201, 1000, 0, SYN)
        });
        // A malformed list announces no scale (the window-scale option before the bad one
        // does not count).
        b.c2s(Tcp {
            options: &[kind::WINDOW_SCALE, 3, 7, 0x22, 1, 0, 0, 0],
            ..t(40001, 5201, 1000, 0, SYN)
        });
        let conn = |sport| {
            let key = FlowKey::new(CLIENT, sport, SERVER, 5201);
            let w = &b.workers[0];
            *w.table().get(w.table().lookup(&key).unwrap().0)
        };
        let (good, bad) = (conn(40000), conn(40001));
        assert_eq!(good.wscale_in[0], 7);
        assert_ne!(good.flags & ConnFlags::WSCALE_OFFERED, 0);
        assert_eq!(bad.wscale_in[0], 0);
        assert_eq!(bad.flags & ConnFlags::WSCALE_OFFERED, 0);
        assert_eq!(b.outside.drain_sent().len(), 2);
    }
}

/// The lcore loop's `Worker::turn`: a saturated worker does its housekeeping once in
/// `HOUSEKEEPING_EVERY` turns, an unsaturated one on every turn.
mod turns {
    use super::*;
    use std::cell::Cell;

    /// One burst of ACKs for no flow on the inside port: dropped at once, and enough to keep
    /// the worker's bursts full.
    fn burst(b: &Bed) {
        for i in 0..BURST {
            let f = tcp_frame(&client_env(), &t(50000 + i as u16, 5201, 1, 1, ACK));
            assert!(b.inside.inject(f));
        }
    }

    /// Turns worker 0 once at `b.now`; returns whether it read the clock.
    fn turn(b: &mut Bed) -> bool {
        let read = Cell::new(false);
        let now = b.now;
        b.workers[0].turn(|| {
            read.set(true);
            now
        });
        read.get()
    }

    fn flow(sport: u16, now: u32) -> Conn {
        let mut c = Conn::new_pass(&FlowKey::new(CLIENT, sport, SERVER, 9000), 0, now);
        c.state = TcpState::Established;
        c
    }

    #[test]
    fn a_saturated_worker_serves_control_once_in_housekeeping_every_turns() {
        let mut b = Bed::new(1);
        burst(&b);
        assert!(turn(&mut b), "no backlog yet: a complete turn");
        b.rings.commands[0]
            .push(Command::Install(flow(40000, b.now)))
            .unwrap();
        let arp = arp_request(BOX_OUT, Ipv4Addr::new(198, 19, 0, 254), SERVER);
        for _ in 0..100 {
            b.rings.send(0, Side::Outside, arp.clone()).unwrap();
        }
        let mut reads = 0;
        for i in 1..=HOUSEKEEPING_EVERY {
            burst(&b);
            reads += u32::from(turn(&mut b));
            assert_eq!(b.flows(), 0, "turn {i} is a light one");
        }
        assert_eq!(reads, 0, "light turns do not read the clock");
        assert!(b.outside.drain_sent().is_empty());
        burst(&b);
        assert!(turn(&mut b));
        assert_eq!(b.flows(), 1, "the command waited one housekeeping period");
        // The skipped turns are made up for: every packet from control went in one turn.
        assert_eq!(b.outside.drain_sent().len(), 100);
        assert_eq!(b.total(|c| c.from_control), 100);
        let sent = u64::from(HOUSEKEEPING_EVERY + 2) * BURST as u64;
        assert_eq!(b.drops(DropReason::NoFlow), sent, "no packet is skipped");

        // Without a backlog every other turn at least is complete: a command waits one turn.
        assert!(!turn(&mut b), "the last turn was full: one more light turn");
        b.rings.commands[0]
            .push(Command::Remove(FlowKey::new(CLIENT, 40000, SERVER, 9000)))
            .unwrap();
        assert!(turn(&mut b));
        assert_eq!(b.flows(), 0);
        for _ in 0..10 {
            assert!(turn(&mut b), "an idle worker keeps house on every turn");
        }
    }

    #[test]
    fn ageing_keeps_up_with_a_saturated_worker() {
        let mut cfg = testbed_config();
        cfg.flow_table.timeouts.established = std::time::Duration::from_secs(5);
        let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
        for sport in 0..200 {
            b.rings.commands[0]
                .push(Command::Install(flow(40000 + sport, b.now)))
                .unwrap();
            if sport % 50 == 49 {
                b.poll();
            }
        }
        assert_eq!(b.flows(), 200);
        b.now += 6_000;
        let slots = b.workers[0].table().slot_count();
        let period = HOUSEKEEPING_EVERY as usize + 1;
        // A sweep needs slots / (EXPIRE_BUDGET * CATCH_UP) housekeeping turns, one a period.
        let bound = (slots / (EXPIRE_BUDGET * CATCH_UP) + 2) * period;
        let mut turns = 0;
        while b.flows() > 0 && turns < bound {
            burst(&b);
            turn(&mut b);
            turns += 1;
        }
        assert_eq!(b.flows(), 0, "{slots} slots not aged in {bound} busy turns");
        assert_eq!(b.total(|c| c.flows_expired), 200);
        assert!(
            turns > HOUSEKEEPING_EVERY as usize,
            "ageing ran on light turns"
        );
    }
}
