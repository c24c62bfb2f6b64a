use super::*;
use proptest::prelude::*;

/// A Linux SYN (198.18.0.1:45678 -> 198.19.0.2:80): MSS 1460, SACK-permitted, timestamps,
/// NOP, window scale 7 — the layout Linux sends.
const LINUX_SYN: [u8; 40] = [
    0xb2, 0x6e, 0x00, 0x50, // ports 45678 -> 80
    0x3a, 0x2b, 0x1c, 0x0d, // seq
    0x00, 0x00, 0x00, 0x00, // ack
    0xa0, 0x02, 0xfa, 0xf0, // data offset 10 words, SYN, window 64240
    0x00, 0x00, 0x00, 0x00, // checksum (filled by the test), urgent
    0x02, 0x04, 0x05, 0xb4, // MSS 1460
    0x04, 0x02, // SACK permitted
    0x08, 0x0a, 0x00, 0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, // TS val 66051, ecr 0
    0x01, // NOP
    0x03, 0x03, 0x07, // window scale 7
];

#[test]
fn parses_linux_syn() {
    let p = TcpPacket::new_checked(&LINUX_SYN[..]).unwrap();
    assert_eq!(p.src_port(), 45678);
    assert_eq!(p.dst_port(), 80);
    assert_eq!(p.seq_number(), SeqNumber(0x3a2b1c0d));
    assert_eq!(p.header_len(), 40);
    assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
    assert_eq!(p.window_len(), 64240);
    assert_eq!(p.payload().len(), 0);
    assert_eq!(p.segment_len(), 1);
    let s = SynOptions::parse(p.options()).unwrap();
    assert_eq!(
        s,
        SynOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((66051, 0)),
        }
    );
    let offs: Vec<usize> = p.option_iter().map(|r| r.unwrap().0).collect();
    assert_eq!(offs, vec![20, 24, 26, 36, 37]);
}

#[test]
fn checksum_fill_and_verify() {
    let mut b = LINUX_SYN;
    let (s, d) = (0xc612_0001, 0xc613_0002);
    let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
    p.fill_checksum(s, d);
    assert!(p.verify_checksum(s, d));
    p.set_window_len(1);
    assert!(!p.verify_checksum(s, d));
}

#[test]
fn truncated_and_bad_offsets() {
    for n in 0..HEADER_LEN {
        assert_eq!(
            TcpPacket::new_checked(&LINUX_SYN[..n]).unwrap_err(),
            WireError::Truncated
        );
    }
    let mut b = LINUX_SYN;
    b[12] = 0x40; // 4 words < 5
    assert_eq!(
        TcpPacket::new_checked(&b[..]).unwrap_err(),
        WireError::BadDataOffset
    );
    // data offset 10 words but only 39 bytes present
    assert_eq!(
        TcpPacket::new_checked(&LINUX_SYN[..39]).unwrap_err(),
        WireError::BadDataOffset
    );
    b[12] = 0xf0; // 60 bytes > 40
    assert_eq!(
        TcpPacket::new_checked(&b[..]).unwrap_err(),
        WireError::BadDataOffset
    );
}

fn opts(bytes: &[u8]) -> Vec<Result<TcpOption<'_>, WireError>> {
    TcpOptions::new(bytes, HEADER_LEN)
        .map(|r| r.map(|(_, o)| o))
        .collect()
}

#[test]
fn option_length_zero_or_one_is_an_error() {
    assert_eq!(opts(&[0x22, 0x00, 0, 0]), vec![Err(WireError::BadOption)]);
    assert_eq!(opts(&[0x22, 0x01, 0, 0]), vec![Err(WireError::BadOption)]);
}

#[test]
fn option_overrunning_the_header_is_an_error() {
    assert_eq!(opts(&[0x22, 0x08, 0, 0]), vec![Err(WireError::BadOption)]);
    // a kind with no room for its length byte
    assert_eq!(opts(&[0x01, 0x01, 0x01, 0x02]), {
        let mut v = vec![Ok(TcpOption::Nop); 3];
        v.push(Err(WireError::BadOption));
        v
    });
}

#[test]
fn fixed_length_options_with_wrong_length_are_errors() {
    assert_eq!(opts(&[2, 3, 5, 0]), vec![Err(WireError::BadOption)]);
    assert_eq!(opts(&[3, 4, 7, 0]), vec![Err(WireError::BadOption)]);
    assert_eq!(opts(&[4, 3, 0, 0]), vec![Err(WireError::BadOption)]);
    let mut ts = [0u8; 12];
    ts[0] = 8;
    ts[1] = 12;
    assert_eq!(opts(&ts), vec![Err(WireError::BadOption)]);
    // SACK lengths must be 2 + 8n, n in 1..=4
    let mut sack = [0u8; 40];
    sack[0] = 5;
    for len in [2u8, 9, 11, 18 + 1, 42] {
        sack[1] = len;
        assert_eq!(opts(&sack)[0], Err(WireError::BadOption), "len {len}");
    }
}

#[test]
fn sack_blocks_one_to_four() {
    for n in 1..=4usize {
        let mut b = vec![1u8, 1, 5, (2 + 8 * n) as u8];
        for i in 0..n {
            b.extend_from_slice(&(1000 * i as u32 + 1).to_be_bytes());
            b.extend_from_slice(&(1000 * i as u32 + 500).to_be_bytes());
        }
        let got = opts(&b);
        let Ok(TcpOption::Sack(s)) = got[2] else {
            panic!("{got:?}")
        };
        assert_eq!(s.count as usize, n);
        assert_eq!(
            s.as_slice()[n - 1].1,
            SeqNumber(1000 * (n as u32 - 1) + 500)
        );
    }
}

#[test]
fn end_stops_and_unknown_is_skipped_by_length() {
    let b = [0xfe, 4, 0xaa, 0xbb, 1, 0, 0xff, 0xff];
    assert_eq!(
        opts(&b),
        vec![
            Ok(TcpOption::Unknown {
                kind: 0xfe,
                data: &[0xaa, 0xbb]
            }),
            Ok(TcpOption::Nop),
            Ok(TcpOption::End),
        ]
    );
}

#[test]
fn option_map_of_a_linux_syn() {
    let p = TcpPacket::new_checked(&LINUX_SYN[..]).unwrap();
    let m = p.option_map();
    assert!(!m.malformed());
    assert_eq!(m.window_scale(), Some(7));
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![MappedOption::Timestamps { at: 26 }]
    );
    assert_eq!(m.sack_blocks(p.header()).count(), 0);
}

#[test]
fn option_map_of_an_ack_with_timestamps_and_sack() {
    // NOP NOP TS(1, 2) NOP NOP SACK(10-20, 30-40): Linux's layout for a SACKing ACK.
    let mut h = vec![0u8; 20];
    h[12] = 0xd0; // 13 words: 20 + 30 bytes of options + 2 of END padding
    h.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 18]);
    for v in [10u32, 20, 30, 40] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0]);
    let p = TcpPacket::new_checked(&h[..]).unwrap();
    let m = p.option_map();
    assert!(!m.malformed());
    assert_eq!(m.window_scale(), None);
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![
            MappedOption::Timestamps { at: 22 },
            MappedOption::Sack { at: 34, blocks: 2 }
        ]
    );
    let sack: Vec<_> = m.sack_blocks(p.header()).map(|(l, r)| (l.0, r.0)).collect();
    assert_eq!(sack, vec![(10, 20), (30, 40)]);
}

#[test]
fn option_map_without_options_is_empty() {
    let mut h = [0u8; 24];
    h[12] = 0x50;
    let p = TcpPacket::new_checked(&h[..]).unwrap();
    assert_eq!(p.option_map(), OptionMap::default());
    assert!(p.option_map().is_empty());
}

#[test]
fn option_map_keeps_what_precedes_a_malformed_option() {
    // SACK(1-2), then a timestamps option with length 9.
    let mut o = vec![5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    o.extend_from_slice(&[8, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    let m = OptionMap::parse(&o);
    assert!(m.malformed());
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        vec![MappedOption::Sack { at: 20, blocks: 1 }]
    );
    // A SYN with a malformed list announces no window scale, as SynOptions::parse refuses it.
    let m = OptionMap::parse(&[3, 3, 7, 2, 1]);
    assert!(m.malformed());
    assert_eq!(m.window_scale(), None);
    assert!(SynOptions::parse(&[3, 3, 7, 2, 1]).is_err());
}

#[test]
fn window_scale_above_14_is_clamped() {
    let s = SynOptions::parse(&[3, 3, 20, 0]).unwrap();
    assert_eq!(s.window_scale, Some(14));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
            let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.payload(), p.segment_len());
            for o in p.option_iter() {
                let _ = o;
            }
            let _ = SynOptions::parse(p.options());
            let _ = p.verify_checksum(1, 2);
        }
    }

    #[test]
    fn truncated_syn_never_panics(n in 0usize..=40) {
        if let Ok(p) = TcpPacket::new_checked(&LINUX_SYN[..n]) {
            let _ = SynOptions::parse(p.options());
            prop_assert_eq!(n, 40);
        }
    }

    /// The one-walk map holds exactly what the option iterator yields: the timestamps and
    /// SACK options before the first malformed one, in order, with their SACK blocks; it is
    /// malformed exactly when the iterator reports an error; its window scale is
    /// `SynOptions::parse`'s.
    #[test]
    fn option_map_agrees_with_the_iterator(opts in option_bytes()) {
        let m = OptionMap::parse(&opts);
        let mut want_mapped = Vec::new();
        let mut want_sack = Vec::new();
        let mut malformed = false;
        for item in TcpOptions::new(&opts, HEADER_LEN) {
            match item {
                Ok((at, TcpOption::Timestamps { .. })) => {
                    want_mapped.push(MappedOption::Timestamps { at });
                }
                Ok((at, TcpOption::Sack(s))) => {
                    want_mapped.push(MappedOption::Sack { at, blocks: usize::from(s.count) });
                    want_sack.extend_from_slice(s.as_slice());
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        prop_assert_eq!(m.malformed(), malformed);
        prop_assert_eq!(m.iter().collect::<Vec<_>>(), want_mapped);
        prop_assert_eq!(m.is_empty(), m.iter().next().is_none());
        let mut header = vec![0u8; HEADER_LEN];
        header.extend_from_slice(&opts);
        prop_assert_eq!(m.sack_blocks(&header).collect::<Vec<_>>(), want_sack);
        prop_assert_eq!(
            m.window_scale(),
            SynOptions::parse(&opts).ok().and_then(|s| s.window_scale)
        );
    }

    #[test]
    fn random_options_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut count = 0;
        for o in TcpOptions::new(&bytes, HEADER_LEN) {
            count += 1;
            if let Ok((at, _)) = o {
                prop_assert!(at >= HEADER_LEN && at < HEADER_LEN + bytes.len());
            }
        }
        prop_assert!(count <= bytes.len());
    }
}

/// Option lists as they come off a wire: well-formed options of every kind the fast path
/// knows, known kinds with a wrong length, unknown kinds, lengths that overrun, END and NOP,
/// stray bytes, cut at 40 bytes.
fn option_bytes() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        3 => Just(vec![kind::NOP]),
        1 => Just(vec![kind::END]),
        1 => any::<u16>().prop_map(|m| vec![kind::MSS, 4, (m >> 8) as u8, m as u8]),
        2 => any::<u8>().prop_map(|w| vec![kind::WINDOW_SCALE, 3, w]),
        1 => Just(vec![kind::SACK_PERMITTED, 2]),
        4 => proptest::collection::vec(any::<u8>(), 8).prop_map(|d| {
            let mut v = vec![kind::TIMESTAMPS, 10];
            v.extend(d);
            v
        }),
        4 => (1usize..=4, proptest::collection::vec(any::<u8>(), 32)).prop_map(|(n, d)| {
            let mut v = vec![kind::SACK, (2 + 8 * n) as u8];
            v.extend_from_slice(&d[..8 * n]);
            v
        }),
        // a known kind with a length it cannot have, an unknown kind, a length of 0 or 1
        2 => (prop_oneof![Just(2u8), Just(3), Just(4), Just(5), Just(8), 9u8..=255], 0u8..=40)
            .prop_map(|(k, l)| {
                let mut v = vec![k, l];
                v.extend(std::iter::repeat_n(0xa5, usize::from(l.saturating_sub(2))));
                v
            }),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(chunk, 0..8).prop_map(|chunks| {
        let mut v: Vec<u8> = chunks.concat();
        v.truncate(40);
        v
    })
}
