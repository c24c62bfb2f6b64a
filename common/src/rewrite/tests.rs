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
