//! The rewrite against a straightforward two-pass reference, and its checksum, inverse and
//! window translation, for random packets, parameters and bytes.

use super::*;

/// A straightforward rewrite (two `TcpOptions` passes over a copy of the option bytes),
/// slower than the fast path's single walk but easy to check by eye: the oracle the mapped
/// rewrite must match byte for byte, malformed lists included.
// A deliberate oracle: it repeats `tcp_inner` on purpose (raw offsets, its own option walk)
// and must not share code with it, so a slip in the fast path cannot hide in both.
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
