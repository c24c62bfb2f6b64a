use super::*;
use crate::contract::NewContext;
use crate::datagram::{DatagramState, Kind};
use crate::live::{FlowDump, FlowFilter, Reply, PUBLISH_MS};
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
    assert!(d.flows.iter().all(|c| c.state() == TcpState::SynSent));
    let d = dump(&mut b, "198.20.0.0/16", 100);
    assert_eq!((d.flows.len(), d.matched), (0, 0));
}

/// Listings show UDP flows and echo exchanges after the TCP flows, within the same limit.
#[test]
fn flow_listings_show_datagram_flows_too() {
    let mut b = Bed::new(1);
    b.c2s(t(40000, 5201, 1000, 0, SYN));
    for i in 0..5u16 {
        b.inside.inject(crate::testing::udp_frame(
            &client_env(),
            50000 + i,
            53,
            b"q",
        ));
    }
    b.inside
        .inject(icmp_echo_frame(&client_env(), 7, 1, b"ping"));
    b.poll();
    b.outside
        .inject(crate::testing::udp_frame(&server_env(), 53, 50000, b"a"));
    b.poll();
    let d = dump(&mut b, "", 100);
    assert_eq!((d.flows.len(), d.datagrams.len(), d.total), (1, 6, 7));
    let udp: Vec<_> = d
        .datagrams
        .iter()
        .filter(|(k, _)| *k == Kind::Udp)
        .collect();
    assert_eq!(udp.len(), 5);
    let replied = udp
        .iter()
        .filter(|(_, f)| f.state == DatagramState::Replied);
    assert_eq!(replied.count(), 1, "the one answered");
    assert!(d
        .datagrams
        .iter()
        .any(|(k, f)| *k == Kind::IcmpEcho && f.key.sport == 7));
    let d = dump(&mut b, ":53", 100);
    assert_eq!((d.flows.len(), d.datagrams.len(), d.matched), (0, 5, 5));
    let d = dump(&mut b, "", 3);
    assert_eq!(
        (d.flows.len() + d.datagrams.len(), d.matched),
        (3, 7),
        "the limit holds"
    );
}

#[test]
fn a_reload_judges_new_connections_and_keeps_the_old_ones() {
    let mut b = Bed::new(1);
    let slot = b.workers[0].stats_slot();
    // A pass flow, and a spliced flow on 9000.
    let (c, s) = handshake(&mut b, 40000, 5201);
    let mut conn = b.spliced_conn(40001, 9000);
    conn.delta1 = 1000;
    // Window tracking as if the client is at 5000 and the server at 7000.
    use common::seq::SeqNumber;
    conn.set_tracks([
        common::conn::Track {
            end: SeqNumber(5000),
            maxend: SeqNumber(5000 + 64000),
            maxwin: 64000,
        },
        common::conn::Track {
            end: SeqNumber(7000),
            maxend: SeqNumber(7000 + 64000),
            maxwin: 64000,
        },
    ]);
    b.install(conn);
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
    let mut new = Context::new(&cfg, &[BOX_IN, BOX_OUT], ForwardMode::Full);
    new.generation = 1;
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
