//! Timestamps on one leg only: the option inserted in front of the other options
//! (`plan_ts_insert` + `apply_ts_insert`). The checks of an inserted frame and the examples
//! are here; what the insert refuses, cuts or pads is in `limits`, the property tests in
//! `props`.

use super::*;

mod limits;
mod props;

/// Where the parts of a frame sit, read through the views.
#[derive(Debug)]
struct Parts {
    l3: usize,
    ihl: usize,
    total: usize,
    hl: usize,
}

fn parts(frame: &[u8]) -> Parts {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), EtherType::IPV4);
    let l3 = eth.header_len();
    let ip = Ipv4Packet::new_checked(&frame[l3..]).unwrap();
    let seg = TcpPacket::new_checked(ip.payload()).unwrap();
    Parts {
        l3,
        ihl: ip.header_len(),
        total: usize::from(ip.total_len()),
        hl: seg.header_len(),
    }
}

/// `(field, full recomputation)` for the IPv4 header checksum and for the TCP checksum.
fn frame_checksums(frame: &[u8]) -> ((u16, u16), (u16, u16)) {
    let p = parts(frame);
    let mut iph = frame[p.l3..p.l3 + p.ihl].to_vec();
    let ip_field = u16::from_be_bytes([iph[10], iph[11]]);
    iph[10..12].fill(0);
    let seg = &frame[p.l3 + p.ihl..p.l3 + p.total];
    let src = be32(frame, p.l3 + 12);
    let dst = be32(frame, p.l3 + 16);
    (
        (ip_field, checksum(&iph)),
        (
            u16::from_be_bytes([seg[16], seg[17]]),
            tcp_checksum(seg, src, dst),
        ),
    )
}

/// Spoils `f`'s (built from `s`) IPv4 and TCP checksums by `ip_err` and `tcp_err`, as a
/// frame damaged before the box carries them; returns the errors the frame now holds.
fn spoil_checksums(f: &mut [u8], s: &Spec, ip_err: u16, tcp_err: u16) -> (u16, u16) {
    let l4 = l4_offset(s);
    let l3 = l4 - 20;
    let bad = crate::checksum::add(be16(f, l4 + 16), tcp_err);
    f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
    let bad = crate::checksum::add(be16(f, l3 + 10), ip_err);
    f[l3 + 10..l3 + 12].copy_from_slice(&bad.to_be_bytes());
    let ((ig, iw), (tg, tw)) = frame_checksums(f);
    (difference(ig, iw), difference(tg, tw))
}

fn assert_checksums_recomputed(frame: &[u8]) {
    let ((ip_got, ip_want), (tcp_got, tcp_want)) = frame_checksums(frame);
    assert_eq!(ip_got, ip_want, "IPv4 header checksum");
    assert_eq!(tcp_got, tcp_want, "TCP checksum");
}

/// Plans and applies the insert as the worker does: `plan.grow` bytes of headroom (holding
/// junk, which apply must overwrite) in front of the frame.
fn insert_ts(frame: &[u8], tsval: u32, tsecr: u32) -> Option<(Vec<u8>, TsInsert)> {
    let plan = plan_ts_insert(frame, tsval, tsecr)?;
    let mut buf = vec![0x5a; plan.grow];
    buf.extend_from_slice(frame);
    apply_ts_insert(&mut buf, &plan).expect("apply succeeds on the frame it was planned on");
    Some((buf, plan))
}

/// A well-formed option list in pieces: the options other than NOP, END, timestamps and SACK
/// in order, and the blocks of each SACK option.
type Split<'a> = (Vec<TcpOption<'a>>, Vec<Vec<(u32, u32)>>);

fn split_options(opts: &[u8]) -> Split<'_> {
    let mut others = Vec::new();
    let mut sacks = Vec::new();
    for item in TcpOptions::new(opts, tcp::HEADER_LEN) {
        match item.unwrap().1 {
            TcpOption::End | TcpOption::Nop | TcpOption::Timestamps { .. } => {}
            TcpOption::Sack(b) => {
                sacks.push(b.as_slice().iter().map(|(l, r)| (l.0, r.0)).collect())
            }
            o => others.push(o),
        }
    }
    (others, sacks)
}

fn option_len(o: &TcpOption) -> usize {
    match o {
        TcpOption::End | TcpOption::Nop => 1,
        TcpOption::Mss(_) => 4,
        TcpOption::WindowScale(_) => 3,
        TcpOption::SackPermitted => 2,
        TcpOption::Timestamps { .. } => 10,
        TcpOption::Sack(b) => 2 + 8 * usize::from(b.count),
        TcpOption::Unknown { data, .. } => 2 + data.len(),
    }
}

/// Checks an inserted frame `out` against the frame `orig` it was made of, everything but
/// the checksum values: the L2 header, the IPv4 header but its length and checksum, the fixed
/// TCP header but its data offset and checksum, the new option list (NOP NOP TS first with
/// the given values, the other options in order, the SACK blocks a prefix of the original
/// ones, cut only where another block would not fit), the payload and the Ethernet padding.
/// Returns how many SACK blocks the new list holds.
fn check_insert(orig: &[u8], out: &[u8], plan: &TsInsert, tsval: u32, tsecr: u32) -> usize {
    let g = plan.grow;
    assert_eq!(g % 4, 0, "the payload moves by whole words");
    assert_eq!(out.len(), orig.len() + g);
    let o = parts(orig);
    let n = parts(out);
    let (l3, ihl) = (o.l3, o.ihl);
    assert_eq!((n.l3, n.ihl), (l3, ihl));
    assert_eq!(n.total, o.total + g, "IPv4 total length grew by grow");
    assert_eq!(n.hl, o.hl + g, "TCP header grew by grow");
    assert_eq!(n.hl % 4, 0);
    assert!(n.hl <= 60);

    assert_eq!(&out[..l3], &orig[..l3], "Ethernet header");
    let (oi, ni) = (&orig[l3..l3 + ihl], &out[l3..l3 + ihl]);
    assert_eq!(&ni[..2], &oi[..2]);
    assert_eq!(&ni[4..10], &oi[4..10]);
    assert_eq!(&ni[12..], &oi[12..], "addresses and IP options");

    let (ot, nt) = (&orig[l3 + ihl..], &out[l3 + ihl..]);
    assert_eq!(&nt[..12], &ot[..12], "ports, sequence, acknowledgement");
    assert_eq!(
        nt[12],
        (((n.hl / 4) as u8) << 4) | (ot[12] & 0x0f),
        "data offset"
    );
    assert_eq!(&nt[13..16], &ot[13..16], "flags and window");
    assert_eq!(&nt[18..20], &ot[18..20], "urgent pointer");
    let (o_pay, n_pay) = (&ot[o.hl..o.total - ihl], &nt[n.hl..n.total - ihl]);
    assert_eq!(n_pay, o_pay, "payload");
    assert_eq!(
        &out[l3 + n.total..],
        &orig[l3 + o.total..],
        "Ethernet padding"
    );

    let old_opts = &ot[20..o.hl];
    let new_opts = &nt[20..n.hl];
    let items: Vec<(usize, TcpOption)> = TcpOptions::new(new_opts, tcp::HEADER_LEN)
        .map(|i| i.expect("the new list is well-formed"))
        .collect();
    assert!(items.len() >= 3);
    assert_eq!(items[0], (20, TcpOption::Nop));
    assert_eq!(items[1], (21, TcpOption::Nop));
    assert_eq!(items[2], (22, TcpOption::Timestamps { tsval, tsecr }));
    let ts_count = items
        .iter()
        .filter(|(_, o)| matches!(o, TcpOption::Timestamps { .. }))
        .count();
    assert_eq!(ts_count, 1, "one timestamps option");
    let map = OptionMap::parse(new_opts);
    assert!(!map.malformed());
    assert_eq!(map.timestamps_at(), Some(22));

    let (old_others, old_sacks) = split_options(old_opts);
    let (new_others, new_sacks) = split_options(new_opts);
    assert_eq!(new_others, old_others, "the other options, in order");
    assert!(new_sacks.len() <= 1);
    let kept = new_sacks.first().map_or(0, Vec::len);
    if kept > 0 {
        assert!(
            old_sacks.iter().any(|b| b.starts_with(&new_sacks[0])),
            "SACK blocks kept in order, only the last ones dropped"
        );
    }
    if let [only] = &old_sacks[..] {
        if kept < only.len() {
            // Dropped only because another block would not fit: where the blocks end (or
            // where a NOP-aligned SACK option would begin them), eight more bytes pass 60.
            let end = match items.iter().find(|(_, o)| matches!(o, TcpOption::Sack(_))) {
                Some((at, _)) => at + 2 + 8 * kept,
                None => {
                    let others: usize = old_others.iter().map(option_len).sum();
                    (20 + 12 + others).next_multiple_of(4) + 4
                }
            };
            assert!(end + 8 > 60, "a SACK block was dropped though it fitted");
        }
    }
    kept
}

/// Inserts into `frame` and checks everything, the checksums included; returns the SACK
/// blocks kept.
fn insert_and_check(frame: &[u8], tsval: u32, tsecr: u32) -> usize {
    let (out, plan) = insert_ts(frame, tsval, tsecr).expect("the insert is planned");
    let kept = check_insert(frame, &out, &plan, tsval, tsecr);
    assert_checksums_recomputed(&out);
    kept
}

/// The segment the Linux way: `others` first, then NOP NOP SACK when there are blocks.
fn linux_options(others: &[Opt], blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut opts = others.to_vec();
    if !blocks.is_empty() {
        opts.extend([Opt::Nop, Opt::Nop, Opt::Sack(blocks.to_vec())]);
    }
    emit_options(&opts)
}

const SACK4: [(u32, u32); 4] = [
    (0x1000_0000, 0x1000_0100),
    (0x2000_0000, 0x2000_0200),
    (0x3000_0000, 0x3000_0300),
    (0xffff_ff00, 0x0000_0100),
];

#[test]
fn insert_into_a_segment_without_options() {
    for payload_len in [0usize, 1, 2, 17, 18, 1459, 1460] {
        let mut s = example_spec(vec![]);
        s.payload = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
        let f = build(&s);
        let plan = plan_ts_insert(&f, 0xa1b2_c3d4, 0x0506_0708).unwrap();
        assert_eq!(plan.grow, 12, "NOP NOP TS");
        assert_eq!(insert_and_check(&f, 0xa1b2_c3d4, 0x0506_0708), 0);
    }
}

#[test]
fn insert_keeps_the_sack_blocks_that_fit() {
    // NOP NOP TS takes 12 bytes and NOP NOP SACK 4 more: three blocks fit in the 40.
    for n in 1..=4 {
        let s = example_spec(linux_options(&[], &SACK4[..n]));
        assert_eq!(s.options.len(), 4 + 8 * n);
        let f = build(&s);
        let kept = insert_and_check(&f, 77, 88);
        assert_eq!(kept, n.min(3), "{n} blocks");
        let (out, plan) = insert_ts(&f, 77, 88).unwrap();
        assert_eq!(plan.grow, 12 + 4 + 8 * kept - (4 + 8 * n));
        let tcp = TcpPacket::new_checked(&out[l4_offset(&s)..out.len() - 3]).unwrap();
        let edges: Vec<(u32, u32)> = tcp
            .option_map()
            .sack_blocks(tcp.header())
            .map(|(l, r)| (l.0, r.0))
            .collect();
        assert_eq!(edges, SACK4[..kept].to_vec());
        // The layout Linux sends: NOP NOP TS NOP NOP SACK.
        assert_eq!(
            &tcp.options()[..16],
            &[
                1,
                1,
                8,
                10,
                0,
                0,
                0,
                77,
                0,
                0,
                0,
                88,
                1,
                1,
                5,
                (2 + 8 * kept) as u8
            ]
        );
    }
}

#[test]
fn insert_keeps_other_options_in_order() {
    for (others, blocks, want_kept) in [
        (vec![Opt::Mss(1460)], &SACK4[..1], 1),
        (vec![Opt::Mss(1460)], &SACK4[..2], 2),
        (vec![Opt::Unknown(253, vec![0xbe, 0xef])], &SACK4[..0], 0),
        // Three bytes: the SACK after it is aligned again.
        (vec![Opt::Ws(7)], &SACK4[..2], 2),
        (vec![Opt::Nop, Opt::Ws(7), Opt::SackPerm], &SACK4[..1], 1),
        (
            vec![Opt::Unknown(30, vec![0x20, 0x01, 0, 0, 0, 0, 0, 9])],
            &SACK4[..1],
            1,
        ),
        // Five bytes: two of the three blocks fit after it.
        (vec![Opt::Unknown(254, vec![0xf9, 0x89, 1])], &SACK4[..3], 2),
    ] {
        let s = example_spec(linux_options(&others, blocks));
        let kept = insert_and_check(&build(&s), 0x0102_0304, 0xfffe_fdfc);
        assert_eq!(kept, want_kept, "{others:?} with {} blocks", blocks.len());
    }
}

#[test]
fn insert_over_odd_and_even_payloads() {
    for payload_len in [1usize, 2, 3, 4, 5, 63, 64, 65] {
        for options in [vec![], linux_options(&[Opt::Ws(2)], &SACK4[..2])] {
            let mut s = example_spec(options);
            s.payload = (0..payload_len).map(|i| 0xff - i as u8).collect();
            insert_and_check(&build(&s), 1, 2);
        }
    }
}

#[test]
fn insert_leaves_ethernet_padding_alone() {
    // A pure ACK is a 54-byte frame, padded to the 60-byte minimum (and here beyond).
    for pad in [6usize, 20] {
        for options in [vec![], linux_options(&[], &SACK4[..1])] {
            let mut s = example_spec(options);
            s.payload.clear();
            let mut f = build(&s);
            f.extend((0..pad).map(|i| 0xc0 | i as u8));
            assert!(f.len() >= 60);
            insert_and_check(&f, 0x0a0b_0c0d, 0);
        }
    }
}

#[test]
fn insert_behind_a_vlan_tag_and_ip_options() {
    let mut s = example_spec(linux_options(&[], &SACK4[..2]));
    s.vlan = true;
    let f = build(&s);
    insert_and_check(&f, 5, 6);
    insert_and_check(&with_ip_options(&f, &s), 5, 6);
    s.vlan = false;
    insert_and_check(&with_ip_options(&build(&s), &s), 5, 6);
}

/// `frame` (built from `s`) with four bytes of IPv4 options (NOP NOP NOP EOL) after the fixed
/// IP header, both checksums still right.
fn with_ip_options(frame: &[u8], s: &Spec) -> Vec<u8> {
    let l3 = l4_offset(s) - 20;
    let mut f = frame[..l3 + 20].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&frame[l3 + 20..]);
    f[l3] = 0x46;
    let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) + 4;
    f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
    f[l3 + 10..l3 + 12].fill(0);
    let c = checksum(&f[l3..l3 + 24]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn insert_puts_timestamps_at_offset_22() {
    let s = example_spec(linux_options(&[Opt::Mss(1400)], &SACK4[..1]));
    let (out, plan) = insert_ts(&build(&s), 0xcafe_f00d, 0x0bad_beef).unwrap();
    let l4 = l4_offset(&s);
    let hl = usize::from(out[l4 + 12] >> 4) * 4;
    let map = OptionMap::parse(&out[l4 + 20..l4 + hl]);
    assert!(!map.malformed());
    assert_eq!(map.timestamps_at(), Some(22));
    assert_eq!(be32(&out, l4 + 24), 0xcafe_f00d);
    assert_eq!(be32(&out, l4 + 28), 0x0bad_beef);
    assert_eq!(&out[l4 + 20..l4 + 22], &[kind::NOP, kind::NOP]);
    // The worker's own accessor agrees.
    let tcp = TcpPacket::new_checked(&out[l4..out.len() - 3]).unwrap();
    assert_eq!(tcp.option_map().timestamps_at(), Some(22));
    assert_eq!(plan.grow, 12);
}

#[test]
fn insert_replaces_a_timestamps_option_already_there() {
    for opts in [
        emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(1, 2)]),
        emit_options(&[Opt::Nop, Opt::Ts(1, 2), Opt::Nop]),
        linux_options(&[Opt::Ts(1, 2)], &SACK4[..3]),
    ] {
        let s = example_spec(opts);
        insert_and_check(&build(&s), 0x3333_3333, 0x4444_4444);
    }
}

#[test]
fn insert_after_the_rewrite_as_the_worker_does() {
    let s = example_spec(linux_options(&[], &SACK4[..3]));
    let mut f = build(&s);
    // The leg the timestamps are inserted toward has none of its own to offset.
    let p = SpliceParams {
        tsval_add: 0,
        tsecr_sub: 0,
        timestamps: false,
        ..example_params(TsEdit::Insert {
            tsval: 1000,
            tsecr: 2000,
        })
    };
    rewrite_frame(&mut f, &p, Some(&HOP)).unwrap();
    let TsEdit::Insert { tsval, tsecr } = p.ts_edit else {
        unreachable!()
    };
    let (out, plan) = insert_ts(&f, tsval, tsecr).unwrap();
    check_insert(&f, &out, &plan, tsval, tsecr);
    assert_checksums_recomputed(&out);
    let tcp = TcpPacket::new_checked(&out[l4_offset(&s)..out.len() - 3]).unwrap();
    assert_eq!(tcp.seq_number().0, 1010);
    assert_eq!(tcp.ack_number().0, 2000);
    assert_eq!(&out[..6], &HOP.dst.0);
}

#[test]
fn insert_carries_checksum_errors_through() {
    for options in [vec![], linux_options(&[Opt::Ws(1)], &SACK4[..3])] {
        let s = example_spec(options);
        for (ip_err, tcp_err) in [(0u16, 0x0101u16), (0x0203, 0), (0x8000, 0x7fff)] {
            let mut f = build(&s);
            let before = spoil_checksums(&mut f, &s, ip_err, tcp_err);
            assert_eq!(before, (ip_err, tcp_err));
            let (out, plan) = insert_ts(&f, 11, 22).unwrap();
            check_insert(&f, &out, &plan, 11, 22);
            let ((ig, iw), (tg, tw)) = frame_checksums(&out);
            assert_eq!((difference(ig, iw), difference(tg, tw)), before);
        }
    }
}
