//! The rewrite of the fast path's common case at fixed offsets: an untagged Ethernet frame,
//! IPv4 without options, TCP with no options or exactly NOP, NOP, timestamps (the layout the
//! worker's template test admits). It changes what [`super::rewrite_frame_mapped`] changes for
//! such a frame, byte for byte: the next hop's addresses, the TTL, sequence and
//! acknowledgement, the window, TSval and TSecr.
//!
//! The TCP checksum takes every change into one accumulator folded once, which gives the same
//! value as updating field by field: each RFC 1624 step folds into 1..=0xffff unless
//! everything summed is zero, so folding once at the end cannot tell the difference. The
//! checksums are updated on the bytes as loaded, in the machine's order: the one's-complement
//! sum commutes with swapping the bytes of every word (RFC 1071 §2(B)), and a 32-bit word
//! adds as its two 16-bit halves, so a field's change costs one complement and two adds,
//! with byte swaps only where a number is computed on.

use crate::checksum;
use crate::conn::SpliceParams;
use crate::wire::tcp::{field, flags};

use super::{rescale_window, Hop};

/// Where the IPv4 header starts (after an untagged Ethernet header).
pub const IP: usize = 14;
/// Where the TCP header starts (after an IPv4 header without options).
pub const TCP: usize = IP + 20;
/// The TCP header's length with NOP, NOP, timestamps.
pub const TCP_WITH_TS: usize = 32;
const TTL: usize = IP + 8;
const IP_CHECKSUM: usize = IP + 10;
const TCP_CHECKSUM: usize = TCP + 16;

/// The headers up to the end of a TCP header without options.
const HEADERS: usize = TCP + 20;
/// NOP, NOP and the timestamps option.
const TS_OPTION: usize = TCP_WITH_TS - 20;

/// The 16- and 32-bit words at `at`, in the machine's order (see the module documentation).
#[inline(always)]
fn raw16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn raw32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn put_raw16<const N: usize>(b: &mut [u8; N], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

/// Replaces the 32-bit field at `at` (a number in network order) by `f(old)`, adding the
/// change to `acc`.
#[inline(always)]
fn patch32<const N: usize>(b: &mut [u8; N], at: usize, f: impl Fn(u32) -> u32, acc: &mut u64) {
    let old = raw32(b, at);
    let new = f(u32::from_be(old)).to_be();
    *acc += u64::from(!old) + u64::from(new);
    b[at..at + 4].copy_from_slice(&new.to_ne_bytes());
}

/// Rewrites `frame` for `hop` by `p`. `tcp_len` is 20, or [`TCP_WITH_TS`] with the option at
/// its fixed place; the caller has checked the layout, that the TTL is above 1 and that the
/// segment carries no SYN (so its window is scaled). False, and nothing changed, when the
/// frame is too short for that layout.
#[inline]
pub fn rewrite_fixed(frame: &mut [u8], p: &SpliceParams, hop: &Hop, tcp_len: usize) -> bool {
    // Fixed-size views: every offset below is a constant inside them, checked once here.
    let Some((h, rest)) = frame.split_first_chunk_mut::<HEADERS>() else {
        return false;
    };
    let ts = match rest.first_chunk_mut::<TS_OPTION>() {
        Some(ts) if tcp_len == TCP_WITH_TS && p.timestamps => Some(ts),
        None if tcp_len == TCP_WITH_TS => return false,
        _ => None,
    };
    h[0..6].copy_from_slice(&hop.dst.0);
    h[6..12].copy_from_slice(&hop.src.0);
    // TTL and protocol are one word; the TTL is above 1, so its byte alone goes down by one.
    let ttl_word = raw16(h, TTL);
    let new_word = u16::from_be(ttl_word).wrapping_sub(0x0100).to_be();
    let ip_acc = u64::from(!raw16(h, IP_CHECKSUM)) + u64::from(!ttl_word) + u64::from(new_word);
    put_raw16(h, TTL, new_word);
    put_raw16(h, IP_CHECKSUM, !checksum::fold64(ip_acc));

    let has_ack = h[TCP + field::FLAGS] & flags::ACK != 0;
    let mut acc = u64::from(!raw16(h, TCP_CHECKSUM));
    if p.seq_add != 0 {
        patch32(h, TCP + field::SEQ, |x| x.wrapping_add(p.seq_add), &mut acc);
    }
    if has_ack && p.ack_sub != 0 {
        patch32(h, TCP + field::ACK, |x| x.wrapping_sub(p.ack_sub), &mut acc);
    }
    if p.wscale_in != p.wscale_out {
        let at = TCP + field::WINDOW;
        let old = raw16(h, at);
        let new = rescale_window(u16::from_be(old), p.wscale_in, p.wscale_out).to_be();
        if new != old {
            acc += u64::from(!old) + u64::from(new);
            put_raw16(h, at, new);
        }
    }
    if let Some(ts) = ts {
        // NOP, NOP, kind, length, then TSval and TSecr.
        if p.tsval_add != 0 {
            patch32(ts, 4, |x| x.wrapping_add(p.tsval_add), &mut acc);
        }
        if has_ack && p.tsecr_sub != 0 {
            patch32(ts, 8, |x| x.wrapping_sub(p.tsecr_sub), &mut acc);
        }
    }
    put_raw16(h, TCP_CHECKSUM, !checksum::fold64(acc));
    true
}
