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
    assert_eq!((m.iface, b.flows()), (INSIDE, 0), "nothing kept");
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
    assert_eq!(m.iface, INSIDE);
    assert_eq!(b.flows(), 1, "a placeholder");
    // both directions of the quad now go to control, whatever their flags
    b.c2s(t(40000, 8080, 1001, 5, ACK));
    b.s2c(t(8080, 40000, 5, 1001, ACK));
    assert_eq!(b.rings.to_control.pop().unwrap().why, Why::Proxied);
    assert_eq!(b.rings.to_control.pop().unwrap().why, Why::Proxied);
    assert!(b.outside.drain_sent().is_empty());
    // the spliced object replaces the placeholder
    let key = FlowKey::new(CLIENT, 40000, SERVER, 8080);
    let mut c = b.spliced_conn(40000, 8080);
    c.delta1 = 100;
    b.install(c);
    let (i, _) = b.workers[0].table().lookup(&key).unwrap();
    assert_eq!(b.workers[0].table().get(i).delta1, 100);
    assert_eq!(b.flows(), 1);
}

#[test]
fn icmp_and_dns_pass_other_udp_is_denied() {
    let mut b = Bed::new(1);
    b.inside
        .inject(icmp_echo_frame(&client_env(), 1, 1, b"ping"));
    b.inside.inject(udp_frame(&client_env(), 5000, 53, b"q"));
    b.inside.inject(udp_frame(&client_env(), 5000, 5353, b"q"));
    b.poll();
    assert_eq!(b.outside.drain_sent().len(), 2);
    assert_eq!(b.drops(DropReason::PolicyDeny), 1);
}

/// `to_zone` matches the zone a packet's route leaves into: a rule for traffic toward the
/// inside denies a SYN from the server, not one from the client to the same port.
#[test]
fn a_rule_matches_the_egress_zone() {
    let mut cfg = testbed_config();
    let mut inward = cfg.policy[1].clone();
    inward.name = Some("no-iperf-inward".into());
    inward.to_zone = common::config::Zone::Inside;
    inward.action = Action::Deny;
    cfg.policy.insert(0, inward);
    let mut b = Bed::with(1, cfg, ForwardMode::Full, 64);
    b.s2c(t(5201, 40000, 9000, 0, SYN));
    assert_eq!(
        b.drops(DropReason::PolicyDeny),
        1,
        "toward the inside: denied"
    );
    assert!(b.inside.drain_sent().is_empty());
    b.c2s(t(40001, 5201, 1000, 0, SYN));
    assert_eq!(
        b.outside.drain_sent().len(),
        1,
        "toward the outside: passed"
    );
    assert_eq!(b.state(40001, 5201), Some(TcpState::SynSent));
}
