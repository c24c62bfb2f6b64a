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
