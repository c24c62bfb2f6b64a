//! The one rewrite of a spliced (or tracked) TCP packet: sequence and acknowledgement by Δ,
//! every SACK edge, TSval/TSecr offsets, window rescaling, and — when the packet is routed —
//! the TTL decrement and the Ethernet addresses of the next hop (DESIGN.md §4).
//!
//! Every changed field goes through the RFC 1624 update in [`crate::checksum`]; nothing is
//! recomputed, so a checksum that was wrong on the wire is still wrong by the same amount
//! when the endpoint sees it. The IP addresses and ports never change (the box is
//! transparent), so the TCP pseudo-header needs no update.
//!
//! Malformed options (DESIGN.md §4 "Option parsing") leave every option byte untouched: the
//! packet is still forwarded with sequence and acknowledgement rewritten, and the caller
//! counts it from the returned [`RewriteReport`].

pub mod fixed;
pub mod split;

use crate::checksum;
use crate::conn::{SpliceParams, TsEdit};
use crate::wire::ethernet::{EtherType, EthernetFrame};
use crate::wire::icmp;
use crate::wire::ipv4::{Ipv4Packet, Protocol};
use crate::wire::tcp::option_field as opt;
use crate::wire::tcp::{self, field, flags, MappedOption, OptionMap, TcpPacket};
use crate::wire::{be32, put16, put32, MacAddr, WireError};

/// The next hop of a routed packet: the port's own MAC and the neighbour's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub src: MacAddr,
    pub dst: MacAddr,
}

/// Why a packet could not be rewritten. The packet is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("malformed packet: {0}")]
    Wire(#[from] WireError),
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("not TCP")]
    NotTcp,
    /// A fragment carries no complete TCP header to rewrite.
    #[error("IPv4 fragment")]
    Fragment,
    /// TTL would reach zero: the control plane answers with ICMP time exceeded.
    #[error("TTL exceeded")]
    TtlExceeded,
}

/// What the rewrite noticed that the caller counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriteReport {
    /// The option list was malformed and left untouched.
    pub options_malformed: bool,
}

/// Rewrites a whole Ethernet frame in place: L2 and TTL for `hop` (when given), then the TCP
/// header by `p`. On error nothing was written.
pub fn rewrite_frame(
    frame: &mut [u8],
    p: &SpliceParams,
    hop: Option<&Hop>,
) -> Result<RewriteReport, RewriteError> {
    frame_inner(frame, p, hop, None)
}

/// [`rewrite_frame`] for a caller that has already mapped the segment's options (the worker,
/// whose tracker needed them first): `opts` must be the [`OptionMap`] of this frame's TCP
/// header, so the options are not walked a second time.
pub fn rewrite_frame_mapped(
    frame: &mut [u8],
    p: &SpliceParams,
    hop: Option<&Hop>,
    opts: &OptionMap,
) -> Result<RewriteReport, RewriteError> {
    frame_inner(frame, p, hop, Some(opts))
}

fn frame_inner(
    frame: &mut [u8],
    p: &SpliceParams,
    hop: Option<&Hop>,
    opts: Option<&OptionMap>,
) -> Result<RewriteReport, RewriteError> {
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    if eth.ethertype() != EtherType::IPV4 {
        return Err(RewriteError::NotIpv4);
    }
    let l3 = eth.header_len();
    // Validate everything before the first write, so an error leaves the frame as it was.
    {
        let ip = Ipv4Packet::new_checked(&eth.payload_mut()[..])?;
        if ip.protocol() != Protocol::TCP {
            return Err(RewriteError::NotTcp);
        }
        if ip.is_fragment() {
            return Err(RewriteError::Fragment);
        }
        if hop.is_some() && ip.ttl() <= 1 {
            return Err(RewriteError::TtlExceeded);
        }
        TcpPacket::new_checked(ip.payload())?;
    }
    if let Some(h) = hop {
        eth.set_src(h.src);
        eth.set_dst(h.dst);
    }
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
    if hop.is_some() {
        ip.decrement_ttl();
    }
    tcp_inner(ip.payload_mut(), p, opts)
}

/// Rewrites a TCP segment (header and payload, as the IP payload) in place by `p`.
pub fn rewrite_tcp(segment: &mut [u8], p: &SpliceParams) -> Result<RewriteReport, RewriteError> {
    tcp_inner(segment, p, None)
}

/// [`rewrite_tcp`] with the segment's options already mapped (`opts` must be the
/// [`OptionMap`] of this segment's header).
pub fn rewrite_tcp_mapped(
    segment: &mut [u8],
    p: &SpliceParams,
    opts: &OptionMap,
) -> Result<RewriteReport, RewriteError> {
    tcp_inner(segment, p, Some(opts))
}

#[inline]
fn tcp_inner(
    segment: &mut [u8],
    p: &SpliceParams,
    opts: Option<&OptionMap>,
) -> Result<RewriteReport, RewriteError> {
    let mut seg = TcpPacket::new_checked(segment)?;
    let mut report = RewriteReport::default();
    let fl = seg.flags();
    let has_ack = fl & flags::ACK != 0;
    let hl = seg.header_len();
    let hdr = seg.header_mut();
    let mut hc = crate::wire::be16(hdr, tcp::CHECKSUM_OFFSET);

    if p.seq_add != 0 {
        patch32(hdr, field::SEQ, |s| s.wrapping_add(p.seq_add), &mut hc);
    }
    if has_ack && p.ack_sub != 0 {
        patch32(hdr, field::ACK, |a| a.wrapping_sub(p.ack_sub), &mut hc);
    }
    // Window fields in SYN segments are never scaled (RFC 7323 §2.2).
    if fl & flags::SYN == 0 && p.wscale_in != p.wscale_out {
        let old = crate::wire::be16(hdr, field::WINDOW);
        let new = rescale_window(old, p.wscale_in, p.wscale_out);
        if new != old {
            hc = checksum::update16(hc, old, new);
            put16(hdr, field::WINDOW, new);
        }
    }

    let touch_sack = has_ack && p.ack_sub != 0;
    let touch_ts = p.timestamps && (p.tsval_add != 0 || (has_ack && p.tsecr_sub != 0));
    let strip_ts = p.ts_edit == TsEdit::Strip;
    if hl > tcp::HEADER_LEN && (touch_sack || touch_ts || strip_ts || p.sack_strip) {
        // The map holds offsets, not bytes: the header can be patched while it is read.
        let parsed;
        let map = match opts {
            Some(m) => {
                debug_assert_eq!(*m, OptionMap::parse(&hdr[tcp::HEADER_LEN..]));
                m
            }
            None => {
                parsed = OptionMap::parse(&hdr[tcp::HEADER_LEN..]);
                &parsed
            }
        };
        if map.malformed() {
            report.options_malformed = true;
        } else {
            for opt in map.iter() {
                match opt {
                    MappedOption::Sack { at, blocks } if p.sack_strip => {
                        let end = at + opt::DATA + opt::SACK_BLOCK_LEN * blocks;
                        let nops = [tcp::kind::NOP; tcp::MAX_OPTIONS_LEN];
                        hc = checksum::update_bytes(
                            hc,
                            &hdr[at..end],
                            &nops[..end - at],
                            at % 2 == 1,
                        );
                        hdr[at..end].fill(tcp::kind::NOP);
                    }
                    MappedOption::Sack { at, blocks } if touch_sack => {
                        for i in 0..blocks {
                            let edge = at + opt::DATA + opt::SACK_BLOCK_LEN * i;
                            let right = edge + opt::SACK_RIGHT;
                            patch32(hdr, edge, |v| v.wrapping_sub(p.ack_sub), &mut hc);
                            patch32(hdr, right, |v| v.wrapping_sub(p.ack_sub), &mut hc);
                        }
                    }
                    MappedOption::Timestamps { at } if strip_ts => {
                        // Same length, so nothing else moves: ten NOPs.
                        let mut old = [0u8; tcp::TIMESTAMPS_LEN];
                        old.copy_from_slice(&hdr[at..at + tcp::TIMESTAMPS_LEN]);
                        let nops = [tcp::kind::NOP; tcp::TIMESTAMPS_LEN];
                        hc = checksum::update_bytes(hc, &old, &nops, at % 2 == 1);
                        hdr[at..at + tcp::TIMESTAMPS_LEN].copy_from_slice(&nops);
                    }
                    MappedOption::Timestamps { at } if touch_ts => {
                        if p.tsval_add != 0 {
                            let tsval = at + opt::TSVAL;
                            patch32(hdr, tsval, |v| v.wrapping_add(p.tsval_add), &mut hc);
                        }
                        // TSecr means something only with ACK set (RFC 7323 §3.2).
                        if has_ack && p.tsecr_sub != 0 {
                            let tsecr = at + opt::TSECR;
                            patch32(hdr, tsecr, |v| v.wrapping_sub(p.tsecr_sub), &mut hc);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    put16(hdr, tcp::CHECKSUM_OFFSET, hc);
    Ok(report)
}

/// How a timestamp option is added to a frame (see [`plan_ts_insert`]): the frame grows by
/// `grow` bytes in front, and its options become `options[..len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsInsert {
    pub grow: usize,
    options: [u8; tcp::MAX_OPTIONS_LEN],
    len: usize,
}

/// Plans adding a timestamp option (TSval `tsval`, TSecr `tsecr`) to the TCP segment of
/// `frame`, an Ethernet frame already rewritten for its receiver. The option goes first,
/// NOP-aligned as Linux sends it, the segment's own options after it; where the 40 bytes of
/// options cannot hold them all, SACK blocks are left out from the last (RFC 2018 §3: a
/// receiver reports as many as fit; the sender learns the rest from later ones). `None` for a
/// frame that is not a well-formed IPv4 TCP segment or whose options are malformed: it is
/// sent without the option.
pub fn plan_ts_insert(frame: &[u8], tsval: u32, tsecr: u32) -> Option<TsInsert> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != Protocol::TCP || ip.is_fragment() {
        return None;
    }
    let seg = TcpPacket::new_checked(ip.payload()).ok()?;
    let old = seg.options();
    let map = OptionMap::parse(old);
    if map.malformed() {
        return None;
    }
    // After two NOPs, so TSval and TSecr are 4-byte aligned.
    const TS_AT: usize = 2;
    let mut options = [tcp::kind::NOP; tcp::MAX_OPTIONS_LEN];
    options[TS_AT] = tcp::kind::TIMESTAMPS;
    options[TS_AT + opt::LEN] = tcp::TIMESTAMPS_LEN as u8;
    put32(&mut options, TS_AT + opt::TSVAL, tsval);
    put32(&mut options, TS_AT + opt::TSECR, tsecr);
    let mut len = TS_AT + tcp::TIMESTAMPS_LEN;
    // The other options as they are, SACK last with the blocks that still fit; NOPs and the
    // end-of-list padding are not copied (the list is padded again below).
    let mut sack: Option<&[u8]> = None;
    let mut pos = 0;
    while pos < old.len() {
        match old[pos] {
            tcp::kind::END => break,
            tcp::kind::NOP => pos += 1,
            kind => {
                let l = usize::from(old[pos + opt::LEN]);
                if kind == tcp::kind::SACK {
                    sack = Some(&old[pos..pos + l]);
                } else if kind != tcp::kind::TIMESTAMPS {
                    options
                        .get_mut(len..len + l)?
                        .copy_from_slice(&old[pos..pos + l]);
                    len += l;
                }
                pos += l;
            }
        }
    }
    if let Some(sack) = sack {
        // Aligned on four bytes as senders put it: two NOPs before kind and length, so the
        // blocks start on a 4-byte boundary.
        let at = len.next_multiple_of(4) + opt::DATA;
        let blocks_at = at + opt::DATA;
        let room = tcp::MAX_OPTIONS_LEN.saturating_sub(blocks_at) / opt::SACK_BLOCK_LEN;
        let blocks = ((sack.len() - opt::DATA) / opt::SACK_BLOCK_LEN).min(room);
        if blocks > 0 {
            let blocks_len = opt::SACK_BLOCK_LEN * blocks;
            options[at] = tcp::kind::SACK;
            options[at + opt::LEN] = (opt::DATA + blocks_len) as u8;
            options[blocks_at..blocks_at + blocks_len]
                .copy_from_slice(&sack[opt::DATA..opt::DATA + blocks_len]);
            len = blocks_at + blocks_len;
        }
    }
    // Never shorter than the list it replaces (that one may have been padded generously):
    // the frame only grows, and the NOPs fill the rest.
    let len = len.next_multiple_of(4).max(old.len());
    let grow = len - old.len();
    if usize::from(ip.total_len()) + grow > usize::from(u16::MAX) {
        return None;
    }
    Some(TsInsert { grow, options, len })
}

/// Carries out `plan` on `frame`: the frame as planned, preceded by `plan.grow` bytes of
/// room (prepended in the buffer's headroom). The Ethernet, IPv4 and fixed TCP headers move
/// into the room, the new option list fills the gap before the payload, and the IPv4 length
/// and both checksums are updated incrementally (the payload is not summed again, so an error
/// in it still shows at the receiver).
pub fn apply_ts_insert(frame: &mut [u8], plan: &TsInsert) -> Result<(), RewriteError> {
    let g = plan.grow;
    let (l3, ihl, old_hl) = {
        let eth = EthernetFrame::new_checked(frame.get(g..).ok_or(WireError::Truncated)?)?;
        let ip = Ipv4Packet::new_checked(eth.payload())?;
        let seg = TcpPacket::new_checked(ip.payload())?;
        (eth.header_len(), ip.header_len(), seg.header_len())
    };
    let old_opts_len = old_hl - tcp::HEADER_LEN;
    if old_opts_len + g != plan.len {
        return Err(RewriteError::Wire(WireError::BadOption));
    }
    let mut old_opts = [0u8; tcp::MAX_OPTIONS_LEN];
    let opts_at = l3 + ihl + tcp::HEADER_LEN;
    old_opts[..old_opts_len].copy_from_slice(&frame[g + opts_at..g + opts_at + old_opts_len]);
    frame.copy_within(g..g + opts_at, 0);
    frame[opts_at..opts_at + plan.len].copy_from_slice(&plan.options[..plan.len]);

    let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
    let old_total = ip.total_len();
    let new_total = old_total + g as u16;
    let ip_hc = checksum::update16(ip.checksum(), old_total, new_total);
    ip.set_total_len(new_total);
    ip.set_checksum(ip_hc);

    let hdr = &mut frame[l3 + ihl..opts_at + plan.len];
    let mut hc = crate::wire::be16(hdr, tcp::CHECKSUM_OFFSET);
    // The pseudo-header's TCP length, the data offset, and the option bytes (the old ones
    // zero-extended: zero words add nothing). The payload moved by a multiple of four bytes,
    // so its words sum as before.
    let old_tcp_len = old_total - (ihl as u16);
    hc = checksum::update16(hc, old_tcp_len, old_tcp_len + g as u16);
    // The data offset shares its 16-bit word with the flags.
    let old_word = crate::wire::be16(hdr, field::DATA_OFF);
    let new_word = (old_word & 0x0fff) | ((((old_hl + g) / 4) as u16) << 12);
    hc = checksum::update16(hc, old_word, new_word);
    put16(hdr, field::DATA_OFF, new_word);
    hc = checksum::update_bytes(hc, &old_opts[..plan.len], &plan.options[..plan.len], false);
    put16(hdr, tcp::CHECKSUM_OFFSET, hc);
    Ok(())
}

/// Restores the TCP header quoted in an ICMP error (RFC 792: the offending IP header and at
/// least 8 bytes of its payload) to the sequence space of the quoted packet's sender.
///
/// An error about a spliced flow quotes the packet as the box rewrote it, in the receiver's
/// space: its sender would not recognise it, and path-MTU discovery and error reporting would
/// silently break (OpenBSD pf does the same for `modulate state`). `icmp` is the whole ICMP
/// message; `p` the rewrite of the direction the quoted packet travelled. The sequence number
/// gets `p` undone, and the acknowledgement too when the quote reaches the flags that say it
/// is one; the ICMP checksum is updated incrementally. The quoted TCP checksum cannot be fixed (the quote
/// is partial) and is left alone, as routers leave it.
pub fn unrewrite_icmp_quote(icmp: &mut [u8], p: &SpliceParams) -> Result<(), RewriteError> {
    let quoted = crate::wire::ipv4::Ipv4Packet::new_checked_quoted(&icmp[icmp::HEADER_LEN..])?;
    if quoted.protocol() != Protocol::TCP {
        return Err(RewriteError::NotTcp);
    }
    let tcp_at = icmp::HEADER_LEN + quoted.header_len();
    let quote_len = icmp.len().saturating_sub(tcp_at);
    // The sequence number ends the 8 bytes every error quotes.
    if quote_len < field::SEQ + 4 {
        return Err(RewriteError::Wire(WireError::Truncated));
    }
    let mut hc = crate::wire::be16(icmp, icmp::field::CHECKSUM);
    let seq = tcp_at + field::SEQ;
    patch32(icmp, seq, |s| s.wrapping_sub(p.seq_add), &mut hc);
    // The acknowledgement only when the quote reaches the flags that say it is one.
    if quote_len > field::FLAGS && icmp[tcp_at + field::FLAGS] & flags::ACK != 0 {
        let ack = tcp_at + field::ACK;
        patch32(icmp, ack, |a| a.wrapping_add(p.ack_sub), &mut hc);
    }
    put16(icmp, icmp::field::CHECKSUM, hc);
    Ok(())
}

/// Translates a window field from the sender's shift to the shift its receiver assumes.
///
/// Rounds down (never announces more buffer than the sender has), but keeps a non-zero window
/// non-zero so the receiver does not see a spurious zero window; saturates at 0xffff.
#[inline]
pub fn rescale_window(win: u16, shift_in: u8, shift_out: u8) -> u16 {
    let real = u64::from(win) << shift_in.min(14);
    let out = real >> shift_out.min(14);
    if out == 0 && real != 0 {
        1
    } else {
        out.min(0xffff) as u16
    }
}

/// Replaces the 32-bit field at `off` (any alignment) by `f(old)` and folds the change into
/// the checksum `hc` (RFC 1624 eq. 3).
#[inline]
fn patch32(hdr: &mut [u8], off: usize, f: impl Fn(u32) -> u32, hc: &mut u16) {
    let old = be32(hdr, off);
    let new = f(old);
    *hc = if off.is_multiple_of(2) {
        checksum::update32(*hc, old, new)
    } else {
        checksum::update_bytes(*hc, &old.to_be_bytes(), &new.to_be_bytes(), true)
    };
    put32(hdr, off, new);
}

#[cfg(test)]
mod tests;
