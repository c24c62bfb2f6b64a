//! The rewrite on hand-built examples: every field of the table, malformed options, TTL 1,
//! a SYN, the ICMP quote restored.

use super::*;

#[test]
fn rewrites_every_field_of_the_table() {
    let opts = emit_options(&[
        Opt::Nop,
        Opt::Ts(100, 200),
        Opt::Nop,
        Opt::Sack(vec![(6000, 7000), (8000, 9000)]),
    ]);
    let s = example_spec(opts);
    let mut f = build(&s);
    let p = example_params(TsEdit::None);
    let r = rewrite_frame(&mut f, &p, Some(&HOP)).unwrap();
    assert!(!r.options_malformed);
    let l4 = l4_offset(&s);
    let tcp = TcpPacket::new_checked(&f[l4..f.len() - 3]).unwrap();
    assert_eq!(tcp.seq_number().0, 1010);
    assert_eq!(tcp.ack_number().0, 2000);
    assert_eq!(tcp.window_len(), 128); // 512 << 7 >> 9
    let mut seen_ts = false;
    let mut seen_sack = false;
    for (at, o) in tcp.option_iter().map(Result::unwrap) {
        match o {
            TcpOption::Timestamps { tsval, tsecr } => {
                assert_eq!(at % 2, 1, "TS sits at an odd offset in this layout");
                assert_eq!((tsval, tsecr), (150, 180));
                seen_ts = true;
            }
            TcpOption::Sack(b) => {
                let edges: Vec<(u32, u32)> = b.as_slice().iter().map(|(l, r)| (l.0, r.0)).collect();
                assert_eq!(edges, vec![(3000, 4000), (5000, 6000)]);
                seen_sack = true;
            }
            _ => {}
        }
    }
    assert!(seen_ts && seen_sack);
    assert!(tcp.verify_checksum(s.src, s.dst));
}

#[test]
fn malformed_options_are_left_untouched_and_reported() {
    let opts = malformed_options();
    let s = example_spec(opts.clone());
    let mut f = build(&s);
    let p = SpliceParams {
        ack_sub: 3,
        wscale_in: 0,
        wscale_out: 0,
        ..example_params(TsEdit::None)
    };
    let r = rewrite_frame(&mut f, &p, None).unwrap();
    assert!(r.options_malformed);
    let l4 = l4_offset(&s);
    assert_eq!(&f[l4 + 20..l4 + 20 + opts.len()], &opts[..]);
    let tcp = TcpPacket::new_checked(&f[l4..f.len() - 3]).unwrap();
    assert_eq!(tcp.seq_number().0, 1010);
    assert!(tcp.verify_checksum(s.src, s.dst));
}

#[test]
fn ttl_one_is_refused_untouched() {
    let mut s = example_spec(vec![]);
    s.ttl = 1;
    let orig = build(&s);
    let mut f = orig.clone();
    assert_eq!(
        rewrite_frame(&mut f, &SpliceParams::default(), Some(&HOP)),
        Err(RewriteError::TtlExceeded)
    );
    assert_eq!(f, orig);
}

#[test]
fn syn_window_is_not_rescaled_and_tsecr_without_ack_is_kept() {
    let opts = emit_options(&[
        Opt::Mss(1460),
        Opt::SackPerm,
        Opt::Ts(7, 9),
        Opt::Nop,
        Opt::Ws(7),
    ]);
    let mut s = example_spec(opts);
    s.flags = flags::SYN;
    s.payload.clear();
    let mut f = build(&s);
    let p = SpliceParams {
        seq_add: 1,
        tsval_add: 1,
        tsecr_sub: 1,
        wscale_in: 0,
        wscale_out: 7,
        timestamps: true,
        ..SpliceParams::default()
    };
    rewrite_frame(&mut f, &p, None).unwrap();
    let l4 = l4_offset(&s);
    let tcp = TcpPacket::new_checked(&f[l4..f.len() - 3]).unwrap();
    assert_eq!(tcp.window_len(), 512);
    let so = SynOptions::parse(tcp.options()).unwrap();
    assert_eq!(so.timestamps, Some((8, 9)));
    assert!(tcp.verify_checksum(s.src, s.dst));
}

/// The example segment as the box rewrote it toward the server (seq 1000 -> 1010, ack 5000 ->
/// 2000), and the parameters it used.
fn rewritten_toward_the_server() -> (Vec<u8>, SpliceParams) {
    let mut f = build(&example_spec(vec![]));
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        ..SpliceParams::default()
    };
    rewrite_frame(&mut f, &p, None).unwrap();
    (f, p)
}

/// The "fragmentation needed" a router beyond the box answers, quoting `datagram`.
fn frag_needed_quoting(datagram: &[u8]) -> Vec<u8> {
    let err = crate::wire::icmp::IcmpErrorRepr::frag_needed(1400, datagram);
    let mut icmp = vec![0u8; err.buffer_len()];
    err.emit(&mut icmp);
    icmp
}

#[test]
fn icmp_quote_is_restored_to_the_senders_space() {
    use crate::wire::icmp::IcmpPacket;
    let (f, p) = rewritten_toward_the_server();
    let mut icmp = frag_needed_quoting(&f[14..f.len() - 3]);
    unrewrite_icmp_quote(&mut icmp, &p).unwrap();
    let pkt = IcmpPacket::new_checked(&icmp[..]).unwrap();
    assert!(pkt.verify_checksum(), "checksum fixed incrementally");
    let q = crate::wire::ipv4::Ipv4Packet::new_checked_quoted(pkt.quoted()).unwrap();
    let t = &q.payload()[..12];
    assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 1000);
    assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 5000);
    assert_eq!(pkt.next_hop_mtu(), 1400);
}

/// Quotes of 8 to 13 TCP bytes hold the sequence number but not the flags (the acknowledgement
/// may be there without saying whether it counts): the sequence number is restored and
/// nothing past the quote is read.
#[test]
fn short_icmp_quotes_restore_the_sequence_number_only() {
    use crate::wire::icmp::IcmpPacket;
    let (f, p) = rewritten_toward_the_server();
    let ip_hl = 20;
    for tcp_bytes in 8..=13 {
        let mut icmp = frag_needed_quoting(&f[14..14 + ip_hl + tcp_bytes]);
        let before = icmp.clone();
        unrewrite_icmp_quote(&mut icmp, &p).unwrap();
        let pkt = IcmpPacket::new_checked(&icmp[..]).unwrap();
        assert!(pkt.verify_checksum(), "{tcp_bytes} bytes quoted");
        let t = 8 + ip_hl;
        assert_eq!(
            crate::wire::be32(&icmp, t + 4),
            1000,
            "{tcp_bytes} bytes quoted"
        );
        if tcp_bytes >= 12 {
            assert_eq!(
                icmp[t + 8..t + 12],
                before[t + 8..t + 12],
                "{tcp_bytes} bytes quoted: the acknowledgement is left alone"
            );
        }
    }
}
