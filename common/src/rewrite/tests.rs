//! Unit and property tests of the rewrite. Packets are built by hand here (not with the
//! views' emitters) so a bug in a view cannot hide the same bug in the rewrite.
//!
//! This module holds what the groups below share: the option and frame builders, the
//! proptest strategies, the example segment, the Strip parameters, a segment's place in its
//! frame.

use super::*;
use crate::checksum::{checksum, difference, fold, pseudo_header_sum, sum};
use crate::conn::SpliceParams;
use crate::wire::be16;
use crate::wire::tcp::{kind, SynOptions, TcpOption, TcpOptions};
use proptest::prelude::*;

mod fields;
/// The fast path's fixed-offset rewrite matches the reference.
mod fixed;
mod properties;
mod sack;

// Timestamps on one leg only: the option turned into NOPs (`TsEdit::Strip`), or inserted in
// front of the other options (`plan_ts_insert` + `apply_ts_insert`).
mod insert;
mod strip;

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

/// Parameters that move every field of the example: both sequence spaces, both clocks, the
/// window (shift 7 in, 9 out); the timestamp edit as given.
fn example_params(ts_edit: TsEdit) -> SpliceParams {
    SpliceParams {
        seq_add: 10,
        ack_sub: 3000,
        tsval_add: 50,
        tsecr_sub: 20,
        wscale_in: 7,
        wscale_out: 9,
        timestamps: true,
        ts_edit,
        sack_strip: false,
    }
}

/// NOP, NOP, timestamps, then an option whose length is 0: a list the rewrite must leave as
/// it is and report.
fn malformed_options() -> Vec<u8> {
    let mut opts = emit_options(&[Opt::Nop, Opt::Nop, Opt::Ts(100, 200)]);
    opts.extend_from_slice(&[0x22, 0x00, 0x00, 0x00]);
    opts
}

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
