//! Several workers: a packet that reaches a worker which does not own its flow is handed to
//! the owner, which processes it as if it had received it.

use super::*;
use crate::steer::software_owner;
use crate::testing::icmp_error_frame;
use common::wire::icmp::{code, IcmpPacket, Message};

fn bed(steering: Steering) -> Bed {
    Bed::spread(
        2,
        testbed_config(),
        ForwardMode::Full,
        64,
        Spread::BySender,
        steering,
    )
}

/// An ICMP error arrives at the worker that does not own the spliced flow it quotes: the
/// owner gets it, restores its quote (Δ1 = 10: the client's seq 1000 was sent as 1010) and
/// sends it on to the client.
#[test]
fn an_icmp_error_about_a_spliced_flow_reaches_its_owner() {
    let mut b = bed(Steering::Software);
    let key = FlowKey::new(CLIENT, 40000, SERVER, 9000);
    let owner = software_owner(&key, 2);
    let mut c = b.spliced_conn(40000, 9000);
    c.delta1 = 10;
    b.rings.commands[owner].push(Command::Install(c)).unwrap();
    b.poll();
    let sent = tcp_frame(&client_env(), &t(40000, 9000, 1010, 0, ACK | PSH));
    let mut router = server_env();
    router.src = Ipv4Addr::new(198, 19, 0, 7);
    let err = icmp_error_frame(&router, Message::DST_UNREACHABLE, code::FRAG_NEEDED, &sent);
    assert!(b.outside.inject_to(1 - owner, err));
    b.poll();
    let out = b.inside.drain_sent();
    assert_eq!(out.len(), 1, "the error reaches the client");
    let eth = EthernetFrame::new_checked(&out[0][..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    let q = Ipv4Packet::new_checked_quoted(icmp.quoted()).unwrap();
    let l4 = q.payload();
    assert_eq!(u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]), 1000);
    let [w0, w1] = [0, 1].map(|i| b.workers[i].counters);
    let (o, other) = if owner == 0 { (w0, w1) } else { (w1, w0) };
    assert_eq!((other.handed_off, o.handoff_received), (1, 1));
    assert_eq!((o.icmp_quotes_rewritten, o.icmp_related), (1, 1));
}

/// A client port whose segments and their answers arrive at different workers.
fn split_port(b: &Bed) -> u16 {
    (40_000..41_000)
        .find(|&p| {
            let out = tcp_frame(&client_env(), &t(p, 5201, 1, 0, SYN));
            let back = tcp_frame(&server_env(), &t(5201, p, 1, 0, SYN | ACK));
            b.inside.rss_queue(&out) != b.outside.rss_queue(&back)
        })
        .expect("a port whose directions the NICs split")
}

/// A `pass` connection whose directions arrive at different workers: every segment is
/// tracked by the owner, and the flow exists there only.
#[test]
fn both_directions_are_tracked_by_the_owner() {
    let mut b = bed(Steering::Software);
    let p = split_port(&b);
    let (c, s) = handshake(&mut b, p, 5201);
    b.c2s(Tcp {
        payload: b"hello",
        flags: ACK | PSH,
        ..t(p, 5201, c, s, 0)
    });
    b.s2c(t(5201, p, s, c + 5, ACK));
    assert_eq!(b.outside.drain_sent().len(), 3, "SYN, ACK, data");
    assert_eq!(b.inside.drain_sent().len(), 2, "SYN-ACK, ACK");
    let owner = software_owner(&FlowKey::new(CLIENT, p, SERVER, 5201), 2);
    assert_eq!(b.workers[owner].table().len(), 1);
    assert_eq!(b.workers[1 - owner].table().len(), 0);
    assert_eq!(b.state(p, 5201), Some(TcpState::Established));
    assert!(
        b.total(|c| c.handed_off) >= 2,
        "one direction came to the other worker"
    );
    assert_eq!(b.total(|c| c.drops.total()), 0);
    // Without steering the same spread splits the flow: its answer finds no flow.
    let mut unsteered = bed(Steering::One);
    unsteered.c2s(t(p, 5201, 1000, 0, SYN));
    unsteered.s2c(t(5201, p, 9000, 1001, SYN | ACK));
    assert_eq!(
        unsteered.drops(DropReason::NoFlow),
        1,
        "the spread splits this flow"
    );
}

/// A full handoff ring is the owner's counted drop, never a block.
#[test]
fn a_full_handoff_ring_is_a_counted_drop() {
    let mut b = bed(Steering::Software);
    let depth = crate::contract::HANDOFF_DEPTH as u64;
    // SYNs worker 1 owns, all on worker 0's queue; only worker 0 polls, so nobody drains
    // worker 1's handoff ring.
    let mut sent = 0u64;
    for sport in 10_000..u16::MAX {
        if sent == depth + 100 {
            break;
        }
        if software_owner(&FlowKey::new(CLIENT, sport, SERVER, 5201), 2) == 1 {
            let f = tcp_frame(&client_env(), &t(sport, 5201, 1000, 0, SYN));
            assert!(b.inside.inject_to(0, f));
            sent += 1;
            if sent.is_multiple_of(BURST as u64) {
                b.workers[0].poll(b.now);
            }
        }
    }
    for _ in 0..4 {
        b.workers[0].poll(b.now);
    }
    let w0 = b.workers[0].counters;
    assert_eq!(w0.handed_off, depth);
    assert_eq!(w0.drops.get(DropReason::HandoffFull), 100);
    assert_eq!(b.rings.handoff[1].len() as u64, depth);
}
