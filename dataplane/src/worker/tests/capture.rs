//! The drop capture's worker side: dropped packets go to control, rate-limited per worker,
//! into the first half of the ring only, and not at all when the capture is not configured.

use super::*;
use common::config::DropCapture;

fn capturing(rate: u32, workers: u16) -> Config {
    let mut c = testbed_config();
    c.workers.count = workers;
    c.capture.drops = Some(DropCapture {
        path: "/nonexistent/drops.pcapng".into(),
        file_size: DropCapture::DEFAULT_FILE_SIZE,
        files: 2,
        rate,
        snaplen: 256,
    });
    c
}

/// A SYN whose IPv4 header length is 4 words (`bad_ip_header`), or one for another host's
/// MAC (`not_for_us`); `n` goes in the source port, so every frame is told apart.
fn bad_frame(n: u16) -> Vec<u8> {
    let mut f = tcp_frame(&client_env(), &t(40000 + n, 5201, 1, 0, SYN));
    if n.is_multiple_of(2) {
        f[14] = 0x44;
    } else {
        f[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    }
    f
}

fn reason_of(f: &[u8]) -> DropReason {
    if f[0..6] == [0x02, 9, 9, 9, 9, 9] {
        DropReason::NotForUs
    } else {
        DropReason::BadIpHeader
    }
}

/// Injects `n` bad frames on the inside at the bed's time, polls, and returns the messages
/// control got.
fn burst(b: &mut Bed, n: u16) -> Vec<ToControl<Vec<u8>>> {
    for i in 0..n {
        assert!(b.inside.inject(bad_frame(i)));
    }
    b.poll();
    std::iter::from_fn(|| b.rings.to_control.pop()).collect()
}

fn dropped(b: &Bed) -> u64 {
    b.drops(DropReason::BadIpHeader) + b.drops(DropReason::NotForUs)
}

#[test]
fn a_burst_beyond_the_rate_gives_control_exactly_the_rate() {
    let mut b = Bed::with(1, capturing(5, 1), ForwardMode::Full, 1024);
    let got = burst(&mut b, 12);
    assert_eq!(got.len(), 5);
    assert_eq!(dropped(&b), 12, "every drop is still counted by its reason");
    for m in &got {
        assert_eq!(m.why, Why::Dropped(reason_of(&m.pkt)));
        assert_eq!((m.iface, m.worker), (INSIDE, 0));
    }
    // The frames as they arrived, in order: the capture sees what was dropped.
    let sent: Vec<Vec<u8>> = (0..5).map(bad_frame).collect();
    let seen: Vec<Vec<u8>> = got.into_iter().map(|m| m.pkt).collect();
    assert_eq!(seen, sent);
    assert_eq!(b.total(|c| c.drops_captured), 5);
    assert_eq!(
        b.total(|c| c.to_control),
        0,
        "captures are not control traffic"
    );
    assert!(b.outside.drain_sent().is_empty());

    // No time passed: no tokens.
    assert!(burst(&mut b, 12).is_empty());
    // A second refills the whole rate; 400 ms two fifths of it.
    b.now += 1000;
    assert_eq!(burst(&mut b, 12).len(), 5);
    b.now += 400;
    assert_eq!(burst(&mut b, 12).len(), 2);
    assert_eq!(dropped(&b), 48);
    assert_eq!(b.total(|c| c.drops_captured), 12);
    assert_eq!(b.total(|c| c.capture_ring_full), 0);
}

#[test]
fn without_a_capture_nothing_goes_to_control() {
    let mut b = Bed::new(1);
    assert!(burst(&mut b, 12).is_empty());
    assert_eq!(dropped(&b), 12);
    assert_eq!(b.total(|c| c.drops_captured), 0);
}

#[test]
fn captures_leave_half_the_ring_to_control_traffic() {
    let mut b = Bed::with(1, capturing(100, 1), ForwardMode::Full, 8);
    for i in 0..10 {
        b.inside.inject(bad_frame(i));
    }
    b.inject_arp_requests(4);
    b.poll();
    let got: Vec<Why> = std::iter::from_fn(|| b.rings.to_control.pop())
        .map(|m| m.why)
        .collect();
    let captured = got.iter().filter(|w| matches!(w, Why::Dropped(_))).count();
    assert_eq!(captured, 4);
    assert_eq!(got.iter().filter(|w| **w == Why::Local).count(), 4);
    assert_eq!(b.total(|c| c.capture_ring_full), 6);
    assert_eq!(b.drops(DropReason::ControlRingFull), 0);
    assert_eq!(dropped(&b), 10);
}

#[test]
fn the_rate_is_shared_by_the_workers() {
    let ctx = Context::new(&capturing(5, 2), &[BOX_IN, BOX_OUT], ForwardMode::Full);
    assert_eq!(
        (ctx.drop_capture_share(0), ctx.drop_capture_share(1)),
        (3, 2)
    );
    let ctx = Context::new(&testbed_config(), &[BOX_IN, BOX_OUT], ForwardMode::Full);
    assert_eq!(ctx.drop_capture_share(0), 0);
}
