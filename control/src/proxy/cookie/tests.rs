use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Packet, TcpPacket, TcpRepr};

use common::flow::FlowKey;
use common::wire::tcp::SynOptions;
use common::wire::Ipv4Addr;

use super::*;
use crate::proxy::leg::{self, Leg};

fn key(sport: u16) -> FlowKey {
    FlowKey::new(
        Ipv4Addr::new(198, 18, 0, 2),
        sport,
        Ipv4Addr::new(198, 19, 0, 2),
        2323,
    )
}

fn opts(mss: Option<u16>, ws: Option<u8>, sack: bool) -> SynOptions {
    SynOptions {
        mss,
        window_scale: ws,
        sack_permitted: sack,
        timestamps: None,
    }
}

/// A splitmix64 step: test inputs that cover the bits without a dependency.
fn mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn a_cookie_returns_the_options_of_its_syn() {
    let jar = CookieJar::default();
    let now = 5 * PERIOD_MS + 17;
    let cases = [
        (
            opts(Some(1460), Some(7), true),
            opts(Some(1460), Some(7), true),
        ),
        (
            opts(Some(1400), Some(0), false),
            opts(Some(1300), Some(0), false),
        ),
        (
            opts(Some(9000), Some(14), true),
            opts(Some(1460), Some(14), true),
        ),
        (opts(None, None, false), opts(Some(536), None, false)),
        (
            opts(Some(0), Some(20), true),
            opts(Some(536), Some(14), true),
        ),
        (opts(Some(1200), None, true), opts(Some(536), None, true)),
    ];
    for (i, (syn, want)) in cases.iter().enumerate() {
        let k = key(40_000 + i as u16);
        let isn = 0x1234_5678u32.wrapping_mul(i as u32 + 1);
        let c = jar.make(&k, isn, syn, now);
        assert_eq!(jar.check(&k, isn, c, now).as_ref(), Some(want), "case {i}");
        // Still good in the next period, not in the one after.
        assert_eq!(jar.check(&k, isn, c, now + PERIOD_MS).as_ref(), Some(want));
        assert_eq!(jar.check(&k, isn, c, now + 2 * PERIOD_MS), None, "case {i}");
        assert_eq!(jar.check(&k, isn, c, now + 3 * PERIOD_MS), None, "case {i}");
    }
}

#[test]
fn a_cookie_is_bound_to_its_quad_isn_and_jar() {
    let jar = CookieJar::default();
    let other = CookieJar::default();
    let now = 1_000;
    let syn = opts(Some(1460), Some(7), true);
    let (k, isn) = (key(40_000), 77);
    let c = jar.make(&k, isn, &syn, now);
    assert!(jar.check(&k, isn, c, now).is_some());
    assert!(jar.check(&key(40_001), isn, c, now).is_none());
    assert!(jar.check(&k.reversed(), isn, c, now).is_none());
    assert!(jar.check(&k, isn + 1, c, now).is_none());
    assert!(
        other.check(&k, isn, c, now).is_none(),
        "another box's secret"
    );
    for bit in 0..32 {
        assert!(
            jar.check(&k, isn, c ^ 1 << bit, now).is_none(),
            "cookie with bit {bit} flipped"
        );
    }
}

#[test]
fn guessed_cookies_are_rejected() {
    let jar = CookieJar::default();
    let mut x = 7u64;
    let accepted = (0..100_000u32)
        .filter(|&i| {
            let r = mix(&mut x);
            let k = key(1024 + (i % 60_000) as u16);
            jar.check(&k, r as u32, (r >> 32) as u32, 3 * PERIOD_MS)
                .is_some()
        })
        .count();
    // One in 2^23 for each of the two periods' worth of data: 0.006 expected.
    assert!(
        accepted <= 2,
        "{accepted} of 100000 random cookies accepted"
    );
}

#[test]
fn cookies_look_random() {
    // The same SYN options on many quads: every bit of the ISN varies (the data bits are
    // masked), so a blind attacker cannot narrow the box's ISN down.
    let jar = CookieJar::default();
    let syn = opts(Some(1460), Some(7), true);
    let mut ones = [0u32; 32];
    let n = 4096;
    for i in 0..n {
        let c = jar.make(&key(1024 + i as u16), 1, &syn, 0);
        for (b, count) in ones.iter_mut().enumerate() {
            *count += c >> b & 1;
        }
    }
    for (b, &count) in ones.iter().enumerate() {
        assert!(
            (n / 4..3 * n / 4).contains(&count),
            "bit {b} set in {count} of {n} cookies"
        );
    }
}

fn tcp_of(ip: &[u8]) -> (TcpRepr<'_>, Ipv4Address, Ipv4Address) {
    let p = Ipv4Packet::new_checked(ip).expect("IPv4");
    let (src, dst) = (p.src_addr(), p.dst_addr());
    let t = TcpPacket::new_checked(&ip[p.header_len() as usize..]).expect("TCP");
    let caps = smoltcp::phy::ChecksumCapabilities::default();
    let r = TcpRepr::parse(&t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps)
        .expect("a valid TCP segment (checksum included)");
    (r, src, dst)
}

/// The box's cookie SYN-ACK says what the client leg, built later from the cookie, would have
/// said for the same SYN: the same ISN (the seed trick), MSS, window and options. Otherwise
/// the splice's Δ and window shifts would not match what the client saw.
#[test]
fn the_cookie_syn_ack_is_the_one_the_client_leg_sends() {
    let now = Instant::from_millis(1_000);
    let mut x = 99u64;
    let shapes = [
        opts(Some(1460), Some(7), true),
        opts(Some(1460), None, false),
        opts(Some(536), Some(0), true),
        opts(Some(1440), Some(14), false),
    ];
    for i in 0..64 {
        let k = key(30_000 + i);
        let r = mix(&mut x);
        let client_isn = r as u32;
        // The extremes and random ones.
        let isn = match i {
            0 => 0,
            1 => u32::MAX,
            2 => 1 << 31,
            _ => (r >> 32) as u32,
        };
        let mut syn = shapes[usize::from(i) % shapes.len()];
        if i % 2 == 0 {
            syn.timestamps = Some((0x0101_0101 * u32::from(i), 0));
        }
        // What the box announces to a client of a server it does not know.
        let announce = crate::proxy::announce::to_client(&syn, None, 1380);
        let ours = syn_ack(
            &k,
            client_isn,
            &syn,
            &SynAck {
                isn,
                mss: announce.mss.unwrap(),
                window_shift: leg::WINDOW_SHIFT,
                tsval: Some(leg::tsval_at(1_000)),
            },
        );
        let rebuilt = rebuilt_syn(&k, client_isn, 64_240, &syn, syn.timestamps.map(|t| t.0));
        let mut l = Leg::client_leg(
            k.dst,
            k.dport,
            1500,
            syn.timestamps.is_some(),
            false,
            leg::seed_for_isn(isn),
            now,
        );
        l.announce = announce;
        l.input(rebuilt.clone());
        let sent: Vec<Vec<u8>> = l.poll(now).collect();
        assert_eq!(sent.len(), 1, "case {i}: the leg answers the SYN once");
        let (theirs, tsrc, tdst) = tcp_of(&sent[0]);
        let (mine, msrc, mdst) = tcp_of(&ours);
        assert_eq!((msrc, mdst), (tsrc, tdst), "case {i}: addresses");
        assert_eq!(mine, theirs, "case {i}: {syn:?} isn {isn:#x}");
        assert!(
            Leg::client_leg_answered(
                k.dst,
                k.dport,
                1500,
                syn.timestamps.is_some(),
                isn,
                rebuilt,
                announce,
                now
            )
            .is_some(),
            "case {i}: the answered leg"
        );
    }
}
