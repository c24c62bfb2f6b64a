//! Unit and property tests of the rewrite. Packets are built by hand here (not with the
//! views' emitters) so a bug in a view cannot hide the same bug in the rewrite.

use super::*;
use crate::checksum::{checksum, difference, fold, pseudo_header_sum, sum};
use crate::conn::SpliceParams;
use crate::wire::tcp::{kind, SynOptions, TcpOption, TcpOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Opt {
    Nop,
    Mss(u16),
    Ws(u8),
    SackPerm,
    Ts(u32, u32),
    Sack(Vec<(u32, u32)>),
    Unknown(u8, Vec<u8>),
    /// Bytes as they come: often a malformed option (a bad length, a known kind with the
    /// wrong size, a length past the end).
    Raw(Vec<u8>),
}

impl Opt {
    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Opt::Nop => out.push(kind::NOP),
            Opt::Mss(m) => {
                out.extend_from_slice(&[kind::MSS, 4]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            Opt::Ws(w) => out.extend_from_slice(&[kind::WINDOW_SCALE, 3, *w]),
            Opt::SackPerm => out.extend_from_slice(&[kind::SACK_PERMITTED, 2]),
            Opt::Ts(v, e) => {
                out.extend_from_slice(&[kind::TIMESTAMPS, 10]);
                out.extend_from_slice(&v.to_be_bytes());
                out.extend_from_slice(&e.to_be_bytes());
            }
            Opt::Sack(blocks) => {
                out.extend_from_slice(&[kind::SACK, (2 + 8 * blocks.len()) as u8]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            Opt::Unknown(k, data) => {
                out.extend_from_slice(&[*k, (2 + data.len()) as u8]);
                out.extend_from_slice(data);
            }
            Opt::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Emits options in order, dropping any that would overflow 40 bytes, then pads with EOL.
fn emit_options(opts: &[Opt]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in opts {
        let mut one = Vec::new();
        o.emit(&mut one);
        if out.len() + one.len() <= 40 {
            out.extend(one);
        }
    }
    while out.len() % 4 != 0 {
        out.push(kind::END);
    }
    out
}

#[derive(Debug, Clone)]
struct Spec {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    ttl: u8,
    vlan: bool,
    options: Vec<u8>,
    payload: Vec<u8>,
}

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Builds Ethernet (optionally 802.1Q) + IPv4 + TCP with correct checksums.
fn build(s: &Spec) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    if s.vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let l3 = f.len();
    let tcp_len = 20 + s.options.len() + s.payload.len();
    let total = 20 + tcp_len;
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, s.ttl, 6, 0, 0];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&s.src.to_be_bytes());
    ip.extend_from_slice(&s.dst.to_be_bytes());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    let l4 = f.len();
    f.extend_from_slice(&s.sport.to_be_bytes());
    f.extend_from_slice(&s.dport.to_be_bytes());
    f.extend_from_slice(&s.seq.to_be_bytes());
    f.extend_from_slice(&s.ack.to_be_bytes());
    f.push((((20 + s.options.len()) / 4) as u8) << 4);
    f.push(s.flags);
    f.extend_from_slice(&s.win.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&s.options);
    f.extend_from_slice(&s.payload);
    let c = tcp_checksum(&f[l4..], s.src, s.dst);
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    assert_eq!(l3 + total, f.len());
    // Ethernet minimum-size padding after the IP datagram must be ignored by everyone.
    f.extend_from_slice(&[0xa5; 3]);
    f
}

/// The full TCP checksum of a segment whose checksum field is taken as zero.
fn tcp_checksum(seg: &[u8], src: u32, dst: u32) -> u16 {
    let mut copy = seg.to_vec();
    copy[16..18].copy_from_slice(&[0, 0]);
    !fold(pseudo_header_sum(src, dst, 6, seg.len() as u16) + sum(&copy))
}

fn l4_offset(s: &Spec) -> usize {
    if s.vlan {
        18 + 20
    } else {
        14 + 20
    }
}

fn seg_checksum(frame: &[u8], s: &Spec) -> (u16, u16) {
    let l4 = l4_offset(s);
    let end = l4 + 20 + s.options.len() + s.payload.len();
    let seg = &frame[l4..end];
    (
        u16::from_be_bytes([seg[16], seg[17]]),
        tcp_checksum(seg, s.src, s.dst),
    )
}

fn opt_strategy() -> impl Strategy<Value = Opt> {
    prop_oneof![
        3 => Just(Opt::Nop),
        1 => any::<u16>().prop_map(Opt::Mss),
        1 => (0u8..15).prop_map(Opt::Ws),
        1 => Just(Opt::SackPerm),
        4 => (any::<u32>(), any::<u32>()).prop_map(|(v, e)| Opt::Ts(v, e)),
        4 => proptest::collection::vec((any::<u32>(), any::<u32>()), 1..=4).prop_map(Opt::Sack),
        1 => (9u8..=254, proptest::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(k, d)| Opt::Unknown(k, d)),
        1 => (prop_oneof![Just(kind::TIMESTAMPS), Just(kind::SACK), Just(kind::MSS), any::<u8>()],
              0u8..=12, proptest::collection::vec(any::<u8>(), 0..10))
            .prop_map(|(k, l, d)| {
                let mut v = vec![k, l];
                v.extend(d);
                Opt::Raw(v)
            }),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            2u8..=255,
        ),
        any::<bool>(),
        proptest::collection::vec(opt_strategy(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |((src, dst, sport, dport), (seq, ack, fl, win, ttl), vlan, opts, payload)| Spec {
                src,
                dst,
                sport,
                dport,
                seq,
                ack,
                // keep SYN rare-ish but present; ACK on most packets
                flags: fl | if fl & 0x40 != 0 { 0 } else { flags::ACK },
                win,
                ttl,
                vlan,
                options: emit_options(&opts),
                payload,
            },
        )
}

fn params_strategy() -> impl Strategy<Value = SpliceParams> {
    (
        // deltas: full range, with the wrap edges well represented
        prop_oneof![any::<u32>(), Just(0u32), Just(u32::MAX), Just(1u32 << 31)],
        prop_oneof![any::<u32>(), Just(0u32), Just(u32::MAX)],
        any::<u32>(),
        any::<u32>(),
        0u8..=14,
        0u8..=14,
        any::<bool>(),
    )
        .prop_map(|(s, a, tv, te, wi, wo, ts)| SpliceParams {
            seq_add: s,
            ack_sub: a,
            tsval_add: tv,
            tsecr_sub: te,
            wscale_in: wi,
            wscale_out: wo,
            timestamps: ts,
            ts_edit: TsEdit::None,
            sack_strip: false,
        })
}

const HOP: Hop = Hop {
    src: MacAddr([0x02, 0xaa, 0, 0, 0, 0x01]),
    dst: MacAddr([0x02, 0xbb, 0, 0, 0, 0x02]),
};

fn ip_header_ok(frame: &[u8], s: &Spec) -> bool {
    let l3 = l4_offset(s) - 20;
    fold(sum(&frame[l3..l3 + 20])) == 0xffff
}

/// The rewrite as it was before options were mapped in one walk (two `TcpOptions` passes
/// over a copy of the option bytes): the reference the mapped rewrite must match byte for
/// byte, malformed lists included.
fn reference_rewrite_tcp(segment: &mut [u8], p: &SpliceParams) -> RewriteReport {
    let mut seg = TcpPacket::new_checked(segment).unwrap();
    let mut report = RewriteReport::default();
    let fl = seg.flags();
    let has_ack = fl & flags::ACK != 0;
    let hl = seg.header_len();
    let hdr = seg.header_mut();
    let mut hc = crate::wire::be16(hdr, tcp::CHECKSUM_OFFSET);
    if p.seq_add != 0 {
        patch32(hdr, 4, |s| s.wrapping_add(p.seq_add), &mut hc);
    }
    if has_ack && p.ack_sub != 0 {
        patch32(hdr, 8, |a| a.wrapping_sub(p.ack_sub), &mut hc);
    }
    if fl & flags::SYN == 0 && p.wscale_in != p.wscale_out {
        let old = crate::wire::be16(hdr, 14);
        let new = rescale_window(old, p.wscale_in, p.wscale_out);
        if new != old {
            hc = checksum::update16(hc, old, new);
            put16(hdr, 14, new);
        }
    }
    let touch_sack = has_ack && p.ack_sub != 0;
    let touch_ts = p.timestamps && (p.tsval_add != 0 || (has_ack && p.tsecr_sub != 0));
    if hl > tcp::HEADER_LEN && (touch_sack || touch_ts) {
        let opts = hdr[tcp::HEADER_LEN..hl].to_vec();
        if TcpOptions::new(&opts, tcp::HEADER_LEN).any(|o| o.is_err()) {
            report.options_malformed = true;
        } else {
            for (at, opt) in TcpOptions::new(&opts, tcp::HEADER_LEN).flatten() {
                match opt {
                    TcpOption::Sack(s) if touch_sack => {
                        for i in 0..usize::from(s.count) {
                            let edge = at + 2 + 8 * i;
                            patch32(hdr, edge, |v| v.wrapping_sub(p.ack_sub), &mut hc);
                            patch32(hdr, edge + 4, |v| v.wrapping_sub(p.ack_sub), &mut hc);
                        }
                    }
                    TcpOption::Timestamps { .. } if touch_ts => {
                        if p.tsval_add != 0 {
                            patch32(hdr, at + 2, |v| v.wrapping_add(p.tsval_add), &mut hc);
                        }
                        if has_ack && p.tsecr_sub != 0 {
                            patch32(hdr, at + 6, |v| v.wrapping_sub(p.tsecr_sub), &mut hc);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    put16(hdr, tcp::CHECKSUM_OFFSET, hc);
    report
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Walking the options once (the rewrite mapping them itself, or given the map the worker
    /// made) writes the same bytes and reports the same malformed lists as the two-pass
    /// rewrite it replaced.
    #[test]
    fn mapped_rewrite_equals_the_two_pass_reference(s in spec_strategy(), p in params_strategy()) {
        let l4 = l4_offset(&s);
        let end = l4 + 20 + s.options.len() + s.payload.len();
        let orig = build(&s);

        let mut want = orig.clone();
        let want_report = reference_rewrite_tcp(&mut want[l4..end], &p);

        let mut own = orig.clone();
        let own_report = rewrite_tcp(&mut own[l4..end], &p).unwrap();
        prop_assert_eq!(&own, &want);
        prop_assert_eq!(own_report, want_report);

        let map = TcpPacket::new_checked(&orig[l4..end]).unwrap().option_map();
        let mut mapped = orig.clone();
        let mapped_report = rewrite_tcp_mapped(&mut mapped[l4..end], &p, &map).unwrap();
        prop_assert_eq!(&mapped, &want);
        prop_assert_eq!(mapped_report, want_report);

        let mut a = orig.clone();
        let mut b = orig.clone();
        let ra = rewrite_frame(&mut a, &p, Some(&HOP)).unwrap();
        let rb = rewrite_frame_mapped(&mut b, &p, Some(&HOP), &map).unwrap();
        prop_assert_eq!(a, b);
        prop_assert_eq!(ra, rb);
        prop_assert_eq!(ra, want_report);
    }

    /// The incremental checksum equals a full recomputation, for random packets, option
    /// layouts (odd offsets included) and deltas across the 2^32 wrap.
    #[test]
    fn incremental_equals_full_recomputation(s in spec_strategy(), p in params_strategy()) {
        let mut f = build(&s);
        rewrite_frame(&mut f, &p, Some(&HOP)).unwrap();
        let (got, want) = seg_checksum(&f, &s);
        prop_assert_eq!(got, want);
        prop_assert!(ip_header_ok(&f, &s));
        let l3 = l4_offset(&s) - 20;
        prop_assert_eq!(f[l3 + 8], s.ttl - 1);
        prop_assert_eq!(&f[0..6], &HOP.dst.0);
        prop_assert_eq!(&f[6..12], &HOP.src.0);
    }

    /// Client→server rewrite followed by its inverse restores the original bytes.
    #[test]
    fn rewrite_then_inverse_is_identity(s in spec_strategy(), mut p in params_strategy()) {
        p.wscale_out = p.wscale_in; // window rescaling is lossy by nature, tested apart
        let orig = build(&s);
        let mut f = orig.clone();
        rewrite_frame(&mut f, &p, None).unwrap();
        rewrite_frame(&mut f, &p.inverse(), None).unwrap();
        prop_assert_eq!(f, orig);
    }

    /// A checksum that was wrong on input is wrong by the same amount after the rewrite.
    #[test]
    fn checksum_errors_pass_through(
        s in spec_strategy(),
        p in params_strategy(),
        err in 1u16..0xffff,
    ) {
        let mut f = build(&s);
        let l4 = l4_offset(&s);
        let bad = crate::checksum::add(u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]), err);
        f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
        let (h0, c0) = seg_checksum(&f, &s);
        let before = difference(h0, c0);
        prop_assert_ne!(before, 0);
        rewrite_frame(&mut f, &p, Some(&HOP)).unwrap();
        let (h1, c1) = seg_checksum(&f, &s);
        prop_assert_eq!(difference(h1, c1), before);
    }

    /// The window translation rounds down by at most one unit of the receiver's scale and
    /// never makes a non-zero window zero.
    #[test]
    fn window_rescale_is_conservative(win: u16, si in 0u8..=14, so in 0u8..=14) {
        let out = rescale_window(win, si, so);
        let real = u64::from(win) << si;
        let seen = u64::from(out) << so;
        if out == 0xffff {
            prop_assert!(seen <= real || real >> so >= 0xffff);
        } else if win == 0 {
            prop_assert_eq!(out, 0);
        } else {
            prop_assert!(out >= 1);
            prop_assert!(seen <= real.max(1 << so));
            prop_assert!(real < seen + (1 << so));
        }
    }

    /// Random and truncated bytes never panic the rewrite, and an error leaves them as they were.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), p in params_strategy()) {
        let mut f = bytes.clone();
        if rewrite_frame(&mut f, &p, Some(&HOP)).is_err() {
            prop_assert_eq!(f, bytes);
        }
    }

    #[test]
    fn truncated_frames_never_panic(s in spec_strategy(), p in params_strategy(), cut in 0usize..200) {
        let full = build(&s);
        let n = cut.min(full.len());
        let mut f = full[..n].to_vec();
        if rewrite_frame(&mut f, &p, Some(&HOP)).is_err() {
            prop_assert_eq!(&f[..], &full[..n]);
        }
    }
}

fn example_spec(options: Vec<u8>) -> Spec {
    Spec {
        src: 0xc612_0001,
        dst: 0xc613_0002,
        sport: 40000,
        dport: 8080,
        seq: 1000,
        ack: 5000,
        flags: flags::ACK | flags::PSH,
        win: 512,
        ttl: 64,
        vlan: false,
        options,
        payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    }
}

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
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        tsval_add: 50,
        tsecr_sub: 20,
        wscale_in: 7,
        wscale_out: 9,
        timestamps: true,
        ts_edit: TsEdit::None,
        sack_strip: false,
    };
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
    let mut opts = emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(100, 200)]);
    opts.extend_from_slice(&[0x22, 0x00, 0x00, 0x00]); // length 0
    let s = example_spec(opts.clone());
    let mut f = build(&s);
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3,
        tsval_add: 50,
        tsecr_sub: 20,
        timestamps: true,
        ..SpliceParams::default()
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

#[test]
fn icmp_quote_is_restored_to_the_senders_space() {
    use crate::wire::icmp::{IcmpErrorRepr, IcmpPacket};
    // The box rewrote a client segment (seq 1000 -> 1010, ack 5000 -> 2000) toward the server;
    // a router beyond answers "fragmentation needed" quoting it.
    let s = example_spec(vec![]);
    let mut f = build(&s);
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        ..SpliceParams::default()
    };
    rewrite_frame(&mut f, &p, None).unwrap();
    let datagram = &f[14..f.len() - 3];
    let err = IcmpErrorRepr::frag_needed(1400, datagram);
    let mut icmp = vec![0u8; err.buffer_len()];
    err.emit(&mut icmp);
    unrewrite_icmp_quote(&mut icmp, &p).unwrap();
    let pkt = IcmpPacket::new_checked(&icmp[..]).unwrap();
    assert!(pkt.verify_checksum(), "checksum fixed incrementally");
    let q = crate::wire::ipv4::Ipv4Packet::new_checked_quoted(pkt.quoted()).unwrap();
    let t = &q.payload()[..12];
    assert_eq!(u32::from_be_bytes([t[4], t[5], t[6], t[7]]), 1000);
    assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 5000);
    assert_eq!(pkt.next_hop_mtu(), 1400);
}

// ---------------------------------------------------------------------------------------------
// Timestamps on one leg only: the option turned into NOPs (`TsEdit::Strip`), or inserted in
// front of the other options (`plan_ts_insert` + `apply_ts_insert`).

use crate::wire::be16;

fn strip_params() -> SpliceParams {
    SpliceParams {
        ts_edit: TsEdit::Strip,
        ..SpliceParams::default()
    }
}

/// The TCP segment of a frame built from `s` (the Ethernet padding left out).
fn seg_range(s: &Spec) -> std::ops::Range<usize> {
    let l4 = l4_offset(s);
    l4..l4 + 20 + s.options.len() + s.payload.len()
}

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
        seq_add: 10,
        ack_sub: 3000,
        tsval_add: 50,
        tsecr_sub: 20,
        timestamps: true,
        ts_edit: TsEdit::Strip,
        ..SpliceParams::default()
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
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        tsval_add: 50,
        tsecr_sub: 20,
        wscale_in: 7,
        wscale_out: 9,
        timestamps: true,
        ts_edit: TsEdit::Strip,
        sack_strip: false,
    };
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
    let mut opts = emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(100, 200)]);
    opts.extend_from_slice(&[0x22, 0x00, 0x00, 0x00]); // length 0
    let s = example_spec(opts.clone());
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
    let p = SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        wscale_in: 7,
        wscale_out: 9,
        ts_edit: TsEdit::Insert {
            tsval: 1000,
            tsecr: 2000,
        },
        ..SpliceParams::default()
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
        let l4 = l4_offset(&s);
        let l3 = l4 - 20;
        for (ip_err, tcp_err) in [(0u16, 0x0101u16), (0x0203, 0), (0x8000, 0x7fff)] {
            let mut f = build(&s);
            let bad = crate::checksum::add(be16(&f, l4 + 16), tcp_err);
            f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
            let bad = crate::checksum::add(be16(&f, l3 + 10), ip_err);
            f[l3 + 10..l3 + 12].copy_from_slice(&bad.to_be_bytes());
            let ((ig, iw), (tg, tw)) = frame_checksums(&f);
            let before = (difference(ig, iw), difference(tg, tw));
            assert_eq!(before, (ip_err, tcp_err));
            let (out, plan) = insert_ts(&f, 11, 22).unwrap();
            check_insert(&f, &out, &plan, 11, 22);
            let ((ig, iw), (tg, tw)) = frame_checksums(&out);
            assert_eq!((difference(ig, iw), difference(tg, tw)), before);
        }
    }
}

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
        let l4 = l4_offset(&s);
        let l3 = l4 - 20;
        let bad = crate::checksum::add(be16(&f, l4 + 16), tcp_err);
        f[l4 + 16..l4 + 18].copy_from_slice(&bad.to_be_bytes());
        let bad = crate::checksum::add(be16(&f, l3 + 10), ip_err);
        f[l3 + 10..l3 + 12].copy_from_slice(&bad.to_be_bytes());
        let ((ig, iw), (tg, tw)) = frame_checksums(&f);
        let before = (difference(ig, iw), difference(tg, tw));
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
