//! What the insert refuses (a malformed list, what is not a whole TCP segment, a plan made
//! for another frame, a datagram at the IPv4 size limit) and what it cuts or pads to fit.

use super::*;

/// Option lists that break the rules [`OptionMap::parse`] enforces: no insert.
fn malformed_lists() -> Vec<Vec<u8>> {
    let ts = |len: u8| {
        let mut v = vec![kind::NOP, kind::NOP, kind::TIMESTAMPS, len];
        v.resize(12, 0x11);
        v
    };
    vec![
        ts(9),
        ts(11),
        vec![
            kind::NOP,
            kind::NOP,
            kind::SACK,
            11,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            0,
            0,
            0,
        ],
        vec![kind::NOP, kind::NOP, kind::SACK, 2],
        vec![kind::NOP, kind::NOP, kind::SACK, 42, 0, 0, 0, 0],
        vec![kind::MSS, 3, 5, kind::END],
        vec![kind::WINDOW_SCALE, 4, 7, 0],
        vec![kind::SACK_PERMITTED, 3, 0, 0],
        vec![30, 1, 0, 0],
        vec![30, 0, 0, 0],
        vec![30, 20, 0, 0],
        vec![kind::NOP, kind::NOP, kind::NOP, 30],
        vec![kind::NOP, kind::NOP, kind::NOP, kind::TIMESTAMPS],
        // Well-formed first, then a bad length.
        {
            let mut v = linux_options(&[], &SACK4[..1]);
            v.extend_from_slice(&[0x22, 0x00, 0x00, 0x00]);
            v
        },
    ]
}

#[test]
fn malformed_lists_get_no_insert() {
    for opts in malformed_lists() {
        assert_eq!(opts.len() % 4, 0);
        assert!(OptionMap::parse(&opts).malformed(), "{opts:?}");
        let s = example_spec(opts.clone());
        let f = build(&s);
        assert_eq!(plan_ts_insert(&f, 1, 2), None, "{opts:?}");
        // And the Strip leaves the list as it was.
        let mut g = f.clone();
        let r = rewrite_frame(&mut g, &strip_params(), None).unwrap();
        assert!(r.options_malformed);
        assert_eq!(g, f);
    }
}

#[test]
fn plan_refuses_what_is_not_a_whole_tcp_segment() {
    let s = example_spec(vec![]);
    let f = build(&s);
    let l3 = l4_offset(&s) - 20;
    let refit_ip = |f: &mut Vec<u8>| {
        f[l3 + 10..l3 + 12].fill(0);
        let c = checksum(&f[l3..l3 + 20]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    };
    let mut arp = f.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(plan_ts_insert(&arp, 1, 2), None, "ARP");
    let mut udp = f.clone();
    udp[l3 + 9] = 17;
    refit_ip(&mut udp);
    assert_eq!(plan_ts_insert(&udp, 1, 2), None, "UDP");
    // A first fragment (more fragments to come) cannot grow: the next fragment's offset
    // would no longer follow it. A later fragment holds no TCP header at all.
    for flg_off in [0x2000u16, 0x0005, 0x2005] {
        let mut frag = f.clone();
        frag[l3 + 6..l3 + 8].copy_from_slice(&flg_off.to_be_bytes());
        refit_ip(&mut frag);
        assert_eq!(plan_ts_insert(&frag, 1, 2), None, "fragment {flg_off:#06x}");
    }
    assert_eq!(plan_ts_insert(&f[..f.len() - 4], 1, 2), None, "truncated");
}

#[test]
fn apply_refuses_a_plan_made_for_another_frame() {
    let a = build(&example_spec(vec![]));
    let plan = plan_ts_insert(&a, 1, 2).unwrap();
    let b = build(&example_spec(linux_options(&[], &SACK4[..1])));
    let mut buf = vec![0u8; plan.grow];
    buf.extend_from_slice(&b);
    let before = buf.clone();
    assert!(apply_ts_insert(&mut buf, &plan).is_err());
    assert_eq!(buf, before, "nothing written");
    // Without the room in front there is no frame where apply looks for one.
    let mut short = a[..plan.grow].to_vec();
    assert!(apply_ts_insert(&mut short, &plan).is_err());
}

#[test]
fn sack_is_dropped_when_other_options_leave_no_room() {
    // Another option (an MPTCP-like kind) of 12 to 28 bytes and one SACK block: from 17
    // bytes on, NOP NOP TS and that option leave no room for NOP NOP SACK and a block, so
    // the SACK goes and the rest stays.
    for data_len in 10..=26 {
        let others = [Opt::Unknown(30, (0..data_len as u8).collect())];
        let s = example_spec(linux_options(&others, &SACK4[..1]));
        assert!(s.options.len() <= 40);
        let kept = insert_and_check(&build(&s), 9, 10);
        assert_eq!(kept, usize::from(data_len <= 14), "{data_len} data bytes");
    }
}

#[test]
fn a_full_option_list_is_padded_not_refused() {
    // MSS (4) and four SACK blocks (NOP NOP SACK, 36) fill the 40 bytes; with NOP NOP TS
    // first only two blocks fit, and the new list (36 bytes) is shorter than the old one.
    // The segment is well-formed, so the insert must still happen (NOP-padded, grow 0).
    let s = example_spec(linux_options(&[Opt::Mss(1460)], &SACK4));
    assert_eq!(s.options.len(), 40);
    let f = build(&s);
    let plan = plan_ts_insert(&f, 3, 4);
    assert!(
        plan.is_some(),
        "a well-formed list whose other options fit is refused"
    );
    assert_eq!(insert_and_check(&f, 3, 4), 2);
    // Likewise a header padded with NOPs only.
    let s = example_spec(vec![kind::NOP; 40]);
    assert_eq!(insert_and_check(&build(&s), 3, 4), 0);
}

#[test]
fn a_datagram_at_the_ipv4_size_limit_is_not_grown_past_it() {
    // Total length 65531: twelve more bytes do not fit the 16-bit field.
    let mut s = example_spec(vec![]);
    s.payload = vec![0x42; 65_531 - 40];
    let f = build(&s);
    if let Some(plan) = plan_ts_insert(&f, 1, 2) {
        let mut buf = vec![0u8; plan.grow];
        buf.extend_from_slice(&f);
        assert!(
            apply_ts_insert(&mut buf, &plan).is_err(),
            "the IPv4 total length would wrap"
        );
    }
}
