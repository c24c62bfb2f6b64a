//! The insert over random option layouts, payloads, padding, timestamps and bytes.

use super::*;

/// Options as a sender lays them out: some others (MSS-like, window scale, unknown kinds of
/// any size), then NOP NOP SACK with 0..=4 blocks; lists over 40 bytes lose their last
/// options.
fn linux_like_options() -> impl Strategy<Value = Vec<u8>> {
    let other = prop_oneof![
        any::<u16>().prop_map(Opt::Mss),
        (0u8..15).prop_map(Opt::Ws),
        Just(Opt::SackPerm),
        Just(Opt::Nop),
        (9u8..=254, proptest::collection::vec(any::<u8>(), 0..=28))
            .prop_map(|(k, d)| Opt::Unknown(k, d)),
    ];
    (
        proptest::collection::vec(other, 0..4),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
    )
        .prop_map(|(others, blocks)| linux_options(&others, &blocks))
}

/// A frame built from `s`, optionally with IP options, and `pad` more bytes of Ethernet
/// padding.
fn frame_of(s: &Spec, ip_opts: bool, pad: usize) -> Vec<u8> {
    let mut f = build(s);
    if ip_opts {
        f = with_ip_options(&f, s);
    }
    f.resize(f.len() + pad, 0xee);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Insert over random payloads, SACK blocks, other options, TSval and TSecr: both
    /// checksums equal full recomputations and the frame is what it was plus NOP NOP TS.
    #[test]
    fn insert_checksums_equal_full_recomputation(
        mut s in spec_strategy(),
        options in linux_like_options(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        tsval: u32,
        tsecr: u32,
        ip_opts: bool,
        pad in 0usize..24,
    ) {
        s.options = options;
        s.payload = payload;
        let f = frame_of(&s, ip_opts, pad);
        if let Some((out, plan)) = insert_ts(&f, tsval, tsecr) {
            check_insert(&f, &out, &plan, tsval, tsecr);
            assert_checksums_recomputed(&out);
        }
    }

    /// Checksum errors in the IPv4 header or the segment survive the insert unchanged.
    #[test]
    fn insert_carries_checksum_errors(
        mut s in spec_strategy(),
        options in linux_like_options(),
        tsval: u32,
        tsecr: u32,
        ip_err: u16,
        tcp_err: u16,
    ) {
        s.options = options;
        let mut f = build(&s);
        let before = spoil_checksums(&mut f, &s, ip_err, tcp_err);
        if let Some((out, _)) = insert_ts(&f, tsval, tsecr) {
            let ((ig, iw), (tg, tw)) = frame_checksums(&out);
            prop_assert_eq!((difference(ig, iw), difference(tg, tw)), before);
        }
    }

    /// The insert is refused only for a list it cannot hold: malformed, or other options
    /// (not NOP, timestamps or SACK) over the 28 bytes NOP NOP TS leaves.
    #[test]
    fn insert_is_refused_only_when_it_cannot_fit(
        s in spec_strategy(),
        options in linux_like_options(),
        tsval: u32,
        tsecr: u32,
        which: bool,
    ) {
        let mut s = s;
        if which {
            s.options = options;
        }
        let f = build(&s);
        let map = OptionMap::parse(&s.options);
        let plan = plan_ts_insert(&f, tsval, tsecr);
        if map.malformed() {
            prop_assert_eq!(plan, None);
        } else {
            let others: usize = split_options(&s.options).0.iter().map(option_len).sum();
            if others <= tcp::MAX_OPTIONS_LEN - 12 {
                prop_assert!(plan.is_some(), "refused with {} bytes of other options", others);
            }
        }
    }

    /// Random option bytes never panic the plan; a malformed list gets no plan, and any plan
    /// applies to a frame that parses with correct checksums.
    #[test]
    fn random_option_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..=40),
        tsval: u32,
        tsecr: u32,
    ) {
        let mut opts = bytes;
        opts.truncate(opts.len() / 4 * 4);
        let s = example_spec(opts);
        let f = build(&s);
        let malformed = OptionMap::parse(&s.options).malformed();
        match plan_ts_insert(&f, tsval, tsecr) {
            None => {}
            Some(plan) => {
                prop_assert!(!malformed);
                let mut buf = vec![0u8; plan.grow];
                buf.extend_from_slice(&f);
                apply_ts_insert(&mut buf, &plan).unwrap();
                check_insert(&f, &buf, &plan, tsval, tsecr);
                assert_checksums_recomputed(&buf);
            }
        }
        if malformed {
            prop_assert_eq!(plan_ts_insert(&f, tsval, tsecr), None);
        }
    }

    /// Random and truncated frames never panic the plan, nor the apply of any plan made.
    #[test]
    fn random_frames_never_panic_the_insert(
        s in spec_strategy(),
        cut in 0usize..200,
        junk in proptest::collection::vec(any::<u8>(), 0..120),
        use_junk: bool,
    ) {
        let full = build(&s);
        let f = if use_junk { junk } else { full[..cut.min(full.len())].to_vec() };
        if let Some(plan) = plan_ts_insert(&f, 1, 2) {
            let mut buf = vec![0u8; plan.grow];
            buf.extend_from_slice(&f);
            let _ = apply_ts_insert(&mut buf, &plan);
        }
    }
}
