//! SACK toward a peer that did not negotiate it (`SpliceParams::sack_strip`).

use super::*;

#[test]
fn sack_toward_a_peer_that_did_not_negotiate_it_becomes_nops() {
    for lead in [vec![Opt::Nop, Opt::Nop], vec![Opt::Nop]] {
        let mut opts = lead.clone();
        opts.push(Opt::Ts(100, 200));
        opts.push(Opt::Sack(vec![(6000, 7000), (8000, 9000)]));
        let s = example_spec(emit_options(&opts));
        let orig = build(&s);
        let mut f = orig.clone();
        let p = SpliceParams {
            ack_sub: 3000,
            sack_strip: true,
            ..SpliceParams::default()
        };
        rewrite_frame(&mut f, &p, None).unwrap();
        let l4 = l4_offset(&s);
        let seg = TcpPacket::new_checked(&f[seg_range(&s)]).unwrap();
        assert!(
            seg.verify_checksum(s.src, s.dst),
            "{} leading NOPs",
            lead.len()
        );
        let map = OptionMap::parse(seg.options());
        assert!(
            map.iter().all(|o| !matches!(o, MappedOption::Sack { .. })),
            "no SACK left"
        );
        assert_eq!(
            map.timestamps_at(),
            OptionMap::parse(&s.options).timestamps_at(),
            "the timestamps stay where they were"
        );
        assert_eq!(
            crate::wire::be32(&f, l4 + 8),
            crate::wire::be32(&orig, l4 + 8).wrapping_sub(3000),
            "the acknowledgement is still rewritten"
        );
        assert_eq!(seg.header_len(), 20 + s.options.len());
    }
}
