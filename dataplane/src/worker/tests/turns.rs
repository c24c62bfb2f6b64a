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

fn flow(sport: u16) -> Conn {
    let mut c = Conn::new_pass(&FlowKey::new(CLIENT, sport, SERVER, 9000), 0);
    c.set_state(TcpState::Established);
    c
}

#[test]
fn a_saturated_worker_serves_control_once_in_housekeeping_every_turns() {
    let mut b = Bed::new(1);
    burst(&b);
    assert!(turn(&mut b), "no backlog yet: a complete turn");
    b.rings.commands[0]
        .push(Command::Install(flow(40000)))
        .unwrap();
    let arp = arp_request(BOX_OUT, Ipv4Addr::new(198, 19, 0, 254), SERVER);
    for _ in 0..100 {
        b.rings.send(0, OUTSIDE, arp.clone()).unwrap();
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
            .push(Command::Install(flow(40000 + sport)))
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
