//! Stateful UDP and ICMP: replies match the flow their first packet made, whatever the
//! policy says about their direction; flows expire; ICMP errors pass as related.

use super::*;
use crate::testing::{icmp_echo_reply_frame, icmp_error_frame};
use common::config::{PortRange, Protocol as RuleProtocol, Zone as RuleZone};
use common::wire::icmp::{code, Message};

/// The testbed's rules with `config/two-port.yaml`'s shape: DNS and NTP, and pings, from the
/// inside only; nothing from the outside.
fn lan_config() -> Config {
    let mut cfg = testbed_config();
    cfg.policy
        .retain(|r| r.protocol != RuleProtocol::Icmp && r.name.as_deref() != Some("iperf3"));
    let mut dns = cfg.policy[0].clone();
    dns.name = Some("dns".into());
    dns.zone = RuleZone::Inside;
    dns.protocol = RuleProtocol::Udp;
    dns.ports = vec![PortRange { lo: 53, hi: 53 }, PortRange { lo: 123, hi: 123 }];
    dns.action = Action::Pass;
    let mut ping = dns.clone();
    ping.name = Some("ping".into());
    ping.protocol = RuleProtocol::Icmp;
    ping.ports.clear();
    cfg.policy.insert(0, ping);
    cfg.policy.insert(0, dns);
    cfg.flow_table.timeouts.udp = std::time::Duration::from_secs(30);
    cfg.flow_table.timeouts.icmp = std::time::Duration::from_secs(10);
    cfg
}

fn inject(b: &mut Bed, inside: bool, frame: Vec<u8>) {
    let nic = if inside { &b.inside } else { &b.outside };
    assert!(nic.inject(frame));
    b.poll();
}

fn query(sport: u16, dport: u16) -> Vec<u8> {
    udp_frame(&client_env(), sport, dport, b"query")
}

fn answer(sport: u16, dport: u16) -> Vec<u8> {
    udp_frame(&server_env(), sport, dport, b"answer")
}

#[test]
fn a_dns_answer_comes_back_through_a_policy_that_denies_the_outside() {
    let mut b = Bed::with(1, lan_config(), ForwardMode::Full, 64);
    inject(&mut b, true, query(40000, 53));
    assert_eq!(b.outside.drain_sent().len(), 1, "the query goes out");
    inject(&mut b, false, answer(53, 40000));
    assert_eq!(b.inside.drain_sent().len(), 1, "its answer comes in");
    // The same server from another port, or to another client port: no flow, denied.
    inject(&mut b, false, answer(54, 40000));
    inject(&mut b, false, answer(53, 40001));
    assert!(b.inside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::PolicyDeny), 2);
    // A query the policy denies makes no flow: its answer is denied too.
    inject(&mut b, true, query(40002, 5353));
    inject(&mut b, false, answer(5353, 40002));
    assert!(b.outside.drain_sent().is_empty() && b.inside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::PolicyDeny), 4);
    assert_eq!(b.total(|c| c.udp_flows_created), 1);
    let snap = b.workers[0].snapshot(b.now);
    assert_eq!((snap.udp_flows_active, snap.flows_active), (1, 0));
}

#[test]
fn a_udp_flow_expires_after_its_timeout_and_each_packet_restarts_it() {
    let mut b = Bed::with(1, lan_config(), ForwardMode::Full, 64);
    inject(&mut b, true, query(40000, 123));
    b.now += 25_000;
    inject(&mut b, false, answer(123, 40000));
    b.now += 25_000;
    inject(&mut b, false, answer(123, 40000));
    assert_eq!(
        b.inside.drain_sent().len(),
        2,
        "within 30 s of the last packet"
    );
    b.now += 31_000;
    b.sweep();
    assert_eq!(b.total(|c| c.datagram_flows_expired), 1);
    assert_eq!(b.workers[0].snapshot(b.now).udp_flows_active, 0);
    inject(&mut b, false, answer(123, 40000));
    assert!(
        b.inside.drain_sent().is_empty(),
        "a late answer matches nothing"
    );
    assert_eq!(b.drops(DropReason::PolicyDeny), 1);
}

#[test]
fn an_idle_flow_not_yet_swept_matches_nothing() {
    let mut b = Bed::with(1, lan_config(), ForwardMode::Full, 64);
    inject(&mut b, true, query(40000, 53));
    b.now += 30_001;
    // One poll: the sweep has not reached the flow, its timeout has.
    assert!(b.outside.inject(answer(53, 40000)));
    b.workers[0].poll(b.now);
    assert!(b.inside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::PolicyDeny), 1);
}

#[test]
fn pings_are_tracked_by_identifier() {
    let mut b = Bed::with(1, lan_config(), ForwardMode::Full, 64);
    inject(&mut b, true, icmp_echo_frame(&client_env(), 7, 1, b"ping"));
    inject(
        &mut b,
        false,
        icmp_echo_reply_frame(&server_env(), 7, 1, b"ping"),
    );
    assert_eq!(b.outside.drain_sent().len(), 1);
    assert_eq!(b.inside.drain_sent().len(), 1, "the reply to identifier 7");
    // Another identifier, a request from the outside, a reply nobody asked for: denied.
    inject(
        &mut b,
        false,
        icmp_echo_reply_frame(&server_env(), 8, 1, b"ping"),
    );
    inject(&mut b, false, icmp_echo_frame(&server_env(), 7, 2, b"ping"));
    assert!(b.inside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::PolicyDeny), 2);
    assert_eq!(b.total(|c| c.icmp_flows_created), 1);
    // An echo reply from the inside opens nothing for a request from the outside.
    inject(
        &mut b,
        true,
        icmp_echo_reply_frame(&client_env(), 9, 1, b"pong"),
    );
    inject(&mut b, false, icmp_echo_frame(&server_env(), 9, 1, b"ping"));
    assert_eq!(b.total(|c| c.icmp_flows_created), 1);
    assert_eq!(b.drops(DropReason::PolicyDeny), 3);
    b.now += 10_001;
    b.sweep();
    assert_eq!(b.workers[0].snapshot(b.now).icmp_flows_active, 0);
}

#[test]
fn icmp_errors_about_tracked_flows_pass_as_related() {
    let mut b = Bed::with(1, lan_config(), ForwardMode::Full, 64);
    let q = query(40000, 53);
    inject(&mut b, true, q.clone());
    let ping = icmp_echo_frame(&client_env(), 7, 1, b"ping");
    inject(&mut b, true, ping.clone());
    b.outside.drain_sent();
    let unreachable = |offending: &[u8]| {
        let m = Message::DST_UNREACHABLE;
        icmp_error_frame(&server_env(), m, code::PORT_UNREACHABLE, offending)
    };
    inject(&mut b, false, unreachable(&q));
    inject(&mut b, false, unreachable(&ping));
    assert_eq!(
        b.inside.drain_sent().len(),
        2,
        "about the query and the ping"
    );
    assert_eq!(b.total(|c| c.icmp_related), 2);
    // About a datagram of no flow: the policy judges it, and denies the outside.
    inject(&mut b, false, unreachable(&query(40001, 53)));
    let other_ping = icmp_echo_frame(&client_env(), 8, 1, b"ping");
    inject(&mut b, false, unreachable(&other_ping));
    assert!(b.inside.drain_sent().is_empty());
    assert_eq!(b.total(|c| c.icmp_related), 2);
    assert_eq!(b.drops(DropReason::PolicyDeny), 2);
}

#[test]
fn a_full_datagram_table_is_a_counted_drop() {
    let mut cfg = lan_config();
    cfg.flow_table.capacity = common::config::FlowTable::MIN_CAPACITY;
    let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
    let room = b.workers[0].ctx.datagrams_per_worker as u16;
    let tries = room * 2;
    for i in 0..tries {
        assert!(b.inside.inject(query(10_000 + i, 53)));
        if i % 64 == 63 {
            b.poll();
            b.outside.drain_sent();
        }
    }
    let made = b.total(|c| c.udp_flows_created);
    assert!(made >= u64::from(room) && made < u64::from(tries), "{made}");
    assert_eq!(
        b.drops(DropReason::FlowTableFull),
        u64::from(tries) - made,
        "every query beyond the table's room"
    );
    assert_eq!(b.flows(), 0, "TCP's table untouched");
}
