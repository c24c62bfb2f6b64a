//! The rewrite of the fast path's common case at fixed offsets: an untagged Ethernet frame,
//! IPv4 without options, TCP with no options or exactly NOP, NOP, timestamps (the layout the
//! worker's template test admits). It changes what [`super::rewrite_frame_mapped`] changes for
//! such a frame, byte for byte: the next hop's addresses, the TTL, sequence and
//! acknowledgement, the window, TSval and TSecr. The TCP checksum takes every change into one
//! accumulator folded once, which gives the same value as updating field by field: each RFC
//! 1624 step folds into 1..=0xffff unless everything summed is zero, so folding once at the
//! end cannot tell the difference.

use crate::checksum;
use crate::conn::SpliceParams;
use crate::wire::tcp::{field, flags};
use crate::wire::{be16, be32, put16, put32};

use super::{rescale_window, Hop};

/// Where the IPv4 header starts (after an untagged Ethernet header).
pub const IP: usize = 14;
/// Where the TCP header starts (after an IPv4 header without options).
pub const TCP: usize = IP + 20;
/// The TCP header's length with NOP, NOP, timestamps.
pub const TCP_WITH_TS: usize = 32;
/// Where TSval is in a header with NOP, NOP, timestamps.
const TSVAL: usize = TCP + 20 + 4;
const TSECR: usize = TSVAL + 4;
const TTL: usize = IP + 8;
const IP_CHECKSUM: usize = IP + 10;
const TCP_CHECKSUM: usize = TCP + 16;

/// Adds the change of the aligned 32-bit field at `at` to `new` to `acc`, and writes it.
#[inline(always)]
fn patch32(frame: &mut [u8], at: usize, new: u32, acc: &mut u64) {
    let old = be32(frame, at);
    *acc += u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    put32(frame, at, new);
}

/// Rewrites `frame` for `hop` by `p`. `tcp_len` is 20, or [`TCP_WITH_TS`] with the option at
/// its fixed place; the caller has checked the layout, that the TTL is above 1 and that the
/// segment carries no SYN (so its window is scaled).
#[inline]
pub fn rewrite_fixed(frame: &mut [u8], p: &SpliceParams, hop: &Hop, tcp_len: usize) {
    frame[0..6].copy_from_slice(&hop.dst.0);
    frame[6..12].copy_from_slice(&hop.src.0);
    let ttl = be16(frame, TTL);
    let ip_hc = checksum::update16(be16(frame, IP_CHECKSUM), ttl, ttl - 0x0100);
    put16(frame, TTL, ttl - 0x0100);
    put16(frame, IP_CHECKSUM, ip_hc);

    let has_ack = frame[TCP + field::FLAGS] & flags::ACK != 0;
    let mut acc = u64::from(!be16(frame, TCP_CHECKSUM));
    if p.seq_add != 0 {
        let at = TCP + field::SEQ;
        patch32(frame, at, be32(frame, at).wrapping_add(p.seq_add), &mut acc);
    }
    if has_ack && p.ack_sub != 0 {
        let at = TCP + field::ACK;
        patch32(frame, at, be32(frame, at).wrapping_sub(p.ack_sub), &mut acc);
    }
    if p.wscale_in != p.wscale_out {
        let at = TCP + field::WINDOW;
        let old = be16(frame, at);
        let new = rescale_window(old, p.wscale_in, p.wscale_out);
        if new != old {
            acc += u64::from(!old) + u64::from(new);
            put16(frame, at, new);
        }
    }
    if tcp_len == TCP_WITH_TS && p.timestamps {
        if p.tsval_add != 0 {
            patch32(
                frame,
                TSVAL,
                be32(frame, TSVAL).wrapping_add(p.tsval_add),
                &mut acc,
            );
        }
        if has_ack && p.tsecr_sub != 0 {
            patch32(
                frame,
                TSECR,
                be32(frame, TSECR).wrapping_sub(p.tsecr_sub),
                &mut acc,
            );
        }
    }
    put16(frame, TCP_CHECKSUM, !checksum::fold64(acc));
}
