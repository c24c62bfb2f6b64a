//! Timestamps on one leg only: the option turned into NOPs (`TsEdit::Strip`).

use super::*;

/// What a Strip must give, computed the long way: the same rewrite without the Strip, then
/// every timestamps option of a well-formed list overwritten with ten NOPs and the TCP
/// checksum summed again from scratch. Only for frames whose checksum was right on input.
fn expected_strip(orig: &[u8], s: &Spec, p: &SpliceParams, hop: Option<&Hop>) -> Vec<u8> {
    let mut want = orig.to_vec();
    let plain = SpliceParams {
        ts_edit: TsEdit::None,
        sack_strip: false,
        ..*p
    };
    rewrite_frame(&mut want, &plain, hop).unwrap();
    let r = seg_range(s);
    let map = OptionMap::parse(&s.options);
    if !map.malformed() {
        let mut nopped = false;
        for o in map.iter() {
            if let MappedOption::Timestamps { at } = o {
                want[r.start + at..r.start + at + 10].fill(kind::NOP);
                nopped = true;
            }
        }
        if nopped {
            let c = tcp_checksum(&want[r.clone()], s.src, s.dst);
            want[r.start + 16..r.start + 18].copy_from_slice(&c.to_be_bytes());
        }
    }
    want
}

/// Strips with `p` (a Strip) and checks the result against [`expected_strip`], that the header
/// length did not change and that the checksum is the full recomputation.
fn strip_and_check(s: &Spec, p: &SpliceParams, hop: Option<&Hop>) -> Vec<u8> {
    let orig = build(s);
    let mut f = orig.clone();
    let r = rewrite_frame(&mut f, p, hop).unwrap();
    assert_eq!(f, expected_strip(&orig, s, p, hop));
    assert_eq!(
        r.options_malformed,
        OptionMap::parse(&s.options).malformed()
    );
    let l4 = l4_offset(s);
    assert_eq!(f[l4 + 12], orig[l4 + 12], "data offset unchanged");
    let (got, want) = seg_checksum(&f, s);
    assert_eq!(got, want);
    f
}

#[test]
fn strip_turns_aligned_timestamps_into_nops() {
    let s = example_spec(emit_options(&[
        Opt::Nop,
        Opt::Nop,
        Opt::Ts(0x1234_5678, 0x9abc_def0),
    ]));
    let orig = build(&s);
    let f = strip_and_check(&s, &strip_params(), None);
    let l4 = l4_offset(&s);
    assert_eq!(&f[l4 + 20..l4 + 32], &[kind::NOP; 12]);
    // Nothing else moved: only the option bytes and the checksum differ.
    assert_eq!(&f[..l4 + 16], &orig[..l4 + 16]);
    assert_eq!(&f[l4 + 18..l4 + 20], &orig[l4 + 18..l4 + 20]);
    assert_eq!(&f[l4 + 32..], &orig[l4 + 32..]);
    let tcp = TcpPacket::new_checked(&f[seg_range(&s)]).unwrap();
    assert_eq!(tcp.header_len(), 32);
    assert!(tcp.verify_checksum(s.src, s.dst));
    assert!(tcp.option_map().timestamps_at().is_none());
    assert_eq!(tcp.payload(), &s.payload[..]);
}

#[test]
fn strip_at_an_odd_offset_after_a_single_nop() {
    let s = example_spec(emit_options(&[
        Opt::Nop,
        Opt::Ts(0xdead_beef, 0x0102_0304),
        Opt::Nop,
    ]));
    assert_eq!(OptionMap::parse(&s.options).timestamps_at(), Some(21));
    let orig = build(&s);
    let f = strip_and_check(&s, &strip_params(), None);
    let l4 = l4_offset(&s);
    assert_eq!(&f[l4 + 20..l4 + 32], &[kind::NOP; 12]);
    assert_eq!(&f[l4 + 32..], &orig[l4 + 32..]);
    assert!(TcpPacket::new_checked(&f[seg_range(&s)])
        .unwrap()
        .verify_checksum(s.src, s.dst));
}

#[test]
fn strip_with_sack_blocks_rewrites_the_blocks_and_keeps_them_in_place() {
    let blocks = vec![(6000, 7000), (8000, 9000), (10_000, 11_000)];
    let s = example_spec(emit_options(&[
        Opt::Nop,
        Opt::Nop,
        Opt::Ts(100, 200),
        Opt::Nop,
        Opt::Nop,
        Opt::Sack(blocks.clone()),
    ]));
    assert_eq!(s.options.len(), 40);
    let p = SpliceParams {
        wscale_in: 0,
        wscale_out: 0,
        ..example_params(TsEdit::Strip)
    };
    let f = strip_and_check(&s, &p, Some(&HOP));
    let tcp = TcpPacket::new_checked(&f[seg_range(&s)]).unwrap();
    assert_eq!(tcp.header_len(), 60);
    assert_eq!(&tcp.options()[..12], &[kind::NOP; 12]);
    assert_eq!(tcp.seq_number().0, 1010);
    assert_eq!(tcp.ack_number().0, 2000);
    let map = tcp.option_map();
    assert!(map.timestamps_at().is_none());
    let edges: Vec<(u32, u32)> = map
        .sack_blocks(tcp.header())
        .map(|(l, r)| (l.0, r.0))
        .collect();
    assert_eq!(edges, vec![(3000, 4000), (5000, 6000), (7000, 8000)]);
    assert!(tcp.verify_checksum(s.src, s.dst));
}

#[test]
fn strip_takes_precedence_over_the_timestamp_offsets() {
    // The offsets would change TSval and TSecr; the Strip leaves no trace of them.
    let s = example_spec(emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(7, 9)]));
    let p = SpliceParams {
        tsval_add: 0x1000,
        tsecr_sub: 0x2000,
        timestamps: true,
        ts_edit: TsEdit::Strip,
        ..SpliceParams::default()
    };
    let f = strip_and_check(&s, &p, None);
    let l4 = l4_offset(&s);
    assert_eq!(&f[l4 + 20..l4 + 32], &[kind::NOP; 12]);
}

#[test]
fn strip_of_a_syn_keeps_the_other_handshake_options() {
    let mut s = example_spec(emit_options(&[
        Opt::Mss(1460),
        Opt::SackPerm,
        Opt::Ts(7, 0),
        Opt::Nop,
        Opt::Ws(7),
    ]));
    s.flags = flags::SYN;
    s.payload.clear();
    let f = strip_and_check(&s, &strip_params(), None);
    let tcp = TcpPacket::new_checked(&f[seg_range(&s)]).unwrap();
    let so = SynOptions::parse(tcp.options()).unwrap();
    assert_eq!(so.mss, Some(1460));
    assert!(so.sack_permitted);
    assert_eq!(so.window_scale, Some(7));
    assert_eq!(so.timestamps, None);
}

#[test]
fn strip_without_timestamps_is_the_plain_rewrite() {
    let p = example_params(TsEdit::Strip);
    let plain = SpliceParams {
        ts_edit: TsEdit::None,
        ..p
    };
    for options in [
        vec![],
        emit_options(&[
            Opt::Nop,
            Opt::Nop,
            Opt::Sack(vec![(6000, 7000), (8000, 9000)]),
        ]),
        emit_options(&[
            Opt::Mss(1400),
            Opt::Nop,
            Opt::Ws(3),
            Opt::Unknown(253, vec![1, 2]),
        ]),
    ] {
        let s = example_spec(options);
        let orig = build(&s);
        for hop in [None, Some(&HOP)] {
            let mut a = orig.clone();
            let mut b = orig.clone();
            let ra = rewrite_frame(&mut a, &p, hop).unwrap();
            let rb = rewrite_frame(&mut b, &plain, hop).unwrap();
            assert_eq!(a, b);
            assert_eq!(ra, rb);
            let (got, want) = seg_checksum(&a, &s);
            assert_eq!(got, want);
        }
        // With nothing else to do, a Strip leaves such a frame exactly as it was.
        let mut f = orig.clone();
        rewrite_frame(&mut f, &strip_params(), None).unwrap();
        assert_eq!(f, orig);
    }
}

#[test]
fn strip_leaves_a_malformed_list_untouched_and_reports_it() {
    let s = example_spec(malformed_options());
    let mut f = build(&s);
    let r = rewrite_frame(&mut f, &strip_params(), None).unwrap();
    assert!(r.options_malformed);
    assert_eq!(f, build(&s));
}

#[test]
fn strip_carries_a_checksum_error_through() {
    for (options, hop) in [
        (emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(1, 2)]), None),
        (
            emit_options(&[Opt::Nop, Opt::Ts(0xffff_ffff, 0x8000_0001), Opt::Nop]),
            Some(&HOP),
        ),
    ] {
        let s = example_spec(options);
        let mut f = build(&s);
        let l4 = l4_offset(&s);
        let bad = crate::checksum::add(u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]), 0x0101);
        f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
        let (h0, c0) = seg_checksum(&f, &s);
        let before = difference(h0, c0);
        assert_ne!(before, 0);
        rewrite_frame(&mut f, &strip_params(), hop).unwrap();
        assert_eq!(&f[l4 + 20..l4 + 32], &[kind::NOP; 12]);
        let (h1, c1) = seg_checksum(&f, &s);
        assert_eq!(difference(h1, c1), before);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// A Strip gives the plain rewrite with every timestamps option turned into NOPs, and a
    /// checksum equal to the full recomputation.
    #[test]
    fn strip_equals_nops_and_full_recomputation(
        s in spec_strategy(),
        mut p in params_strategy(),
        hop: bool,
    ) {
        p.ts_edit = TsEdit::Strip;
        let hop = hop.then_some(&HOP);
        let f = strip_and_check(&s, &p, hop);
        if !OptionMap::parse(&s.options).malformed() {
            let r = seg_range(&s);
            let tcp = TcpPacket::new_checked(&f[r]).unwrap();
            prop_assert_eq!(tcp.option_map().timestamps_at(), None);
        }
    }

    /// A checksum wrong on input is wrong by as much after a Strip.
    #[test]
    fn strip_carries_checksum_errors(
        s in spec_strategy(),
        mut p in params_strategy(),
        err in 1u16..0xffff,
    ) {
        p.ts_edit = TsEdit::Strip;
        let mut f = build(&s);
        let l4 = l4_offset(&s);
        let bad = crate::checksum::add(be16(&f, l4 + 16), err);
        f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
        let (h0, c0) = seg_checksum(&f, &s);
        let before = difference(h0, c0);
        rewrite_frame(&mut f, &p, Some(&HOP)).unwrap();
        let (h1, c1) = seg_checksum(&f, &s);
        prop_assert_eq!(difference(h1, c1), before);
    }
}
