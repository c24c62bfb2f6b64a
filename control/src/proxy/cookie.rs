//! SYN cookies for `proxy` rules (RFC 4987 §3.6): the box answers a SYN with a SYN-ACK whose
//! sequence number encodes what it must remember of the handshake, and keeps nothing. A client
//! that really connects proves it with its ACK (acknowledging the cookie + 1); only then are
//! the two legs built. A SYN flood toward a `proxy` rule so costs one SYN-ACK per SYN instead
//! of a pending connection, and a real client is never refused for lack of handshake slots.
//!
//! The 32 bits: 9 bits of data (period, MSS index, window scale, SACK), masked with a keyed
//! hash of the quad and the client's ISN so they look random, then 23 bits of a keyed hash
//! over the quad, the client's ISN and the data. A blind guess is right once in 2^23.
//! Timestamps need no bits: the client's ACK carries the option if the SYN did.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber, TcpTimestampRepr,
};

use common::flow::FlowKey;
use common::wire::tcp::SynOptions;

/// The MSS values a cookie can carry (Linux's IPv4 table): the client's is rounded down.
const MSS: [u16; 4] = [536, 1300, 1440, 1460];
const HASH_BITS: u32 = 23;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;
const DATA_MASK: u32 = (1 << (32 - HASH_BITS)) - 1;
/// The cookie clock's period: a cookie is good in the period it was made in and the next.
pub const PERIOD_MS: u64 = 64_000;

/// The secret the cookies are made with (random per process).
pub struct CookieJar {
    keys: RandomState,
}

impl Default for CookieJar {
    fn default() -> Self {
        CookieJar {
            keys: RandomState::new(),
        }
    }
}

impl CookieJar {
    fn hash(&self, key: &FlowKey, client_isn: u32, salt: u32) -> u32 {
        self.keys.hash_one((key, client_isn, salt)) as u32
    }

    /// The box's ISN for a SYN on `key` (client to server) with sequence number `client_isn`.
    pub fn make(&self, key: &FlowKey, client_isn: u32, syn: &SynOptions, now_ms: u64) -> u32 {
        let mss = syn.mss.filter(|&m| m != 0).unwrap_or(536);
        let mss_index = MSS.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32;
        let scale = syn.window_scale.map_or(0, |w| u32::from(w.min(14)) + 1);
        let period = (now_ms / PERIOD_MS) as u32 & 3;
        let data = period << 7 | mss_index << 5 | scale << 1 | u32::from(syn.sack_permitted);
        let mask = self.hash(key, client_isn, u32::MAX) & DATA_MASK;
        (data ^ mask) << HASH_BITS | self.hash(key, client_isn, data) & HASH_MASK
    }

    /// The SYN's options if `cookie` is one this jar made for `key` and `client_isn` within
    /// the last period or two (timestamps are not in it: the caller takes them from the ACK).
    pub fn check(
        &self,
        key: &FlowKey,
        client_isn: u32,
        cookie: u32,
        now_ms: u64,
    ) -> Option<SynOptions> {
        let data = (cookie >> HASH_BITS) ^ (self.hash(key, client_isn, u32::MAX) & DATA_MASK);
        if self.hash(key, client_isn, data) & HASH_MASK != cookie & HASH_MASK {
            return None;
        }
        let age = ((now_ms / PERIOD_MS) as u32).wrapping_sub(data >> 7) & 3;
        if age > 1 {
            return None;
        }
        let scale = (data >> 1) & 0xf;
        Some(SynOptions {
            mss: Some(MSS[(data >> 5 & 3) as usize]),
            window_scale: scale.checked_sub(1).map(|s| s as u8),
            sack_permitted: data & 1 == 1,
            timestamps: None,
        })
    }
}

/// What a SYN-ACK from the box (as the server) says.
pub struct SynAck {
    pub isn: u32,
    pub mss: u16,
    pub window_shift: u8,
    /// The box's TSval, if the client asked for timestamps.
    pub tsval: Option<u32>,
}

/// The box's SYN-ACK for the client's SYN on `key`, as an IP datagram: what the client leg
/// would send for the same SYN (its ISN, MSS, window and options).
pub fn syn_ack(key: &FlowKey, client_isn: u32, syn: &SynOptions, a: &SynAck) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: key.dport,
        dst_port: key.sport,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(a.isn as i32),
        ack_number: Some(TcpSeqNumber(client_isn.wrapping_add(1) as i32)),
        window_len: u16::MAX,
        window_scale: syn.window_scale.map(|_| a.window_shift),
        max_seg_size: Some(a.mss),
        sack_permitted: syn.sack_permitted,
        sack_ranges: [None; 3],
        timestamp: match (syn.timestamps, a.tsval) {
            (Some((their, _)), Some(ours)) => Some(TcpTimestampRepr::new(ours, their)),
            _ => None,
        },
        payload: &[],
    };
    datagram(key.dst, key.src, &tcp)
}

/// The client's SYN as the client leg must see it: rebuilt from the cookie's options, the
/// client's ISN and window, and its TSval from the ACK.
pub fn rebuilt_syn(
    key: &FlowKey,
    client_isn: u32,
    window: u16,
    syn: &SynOptions,
    tsval: Option<u32>,
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: key.sport,
        dst_port: key.dport,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(client_isn as i32),
        ack_number: None,
        window_len: window,
        window_scale: syn.window_scale,
        max_seg_size: syn.mss,
        sack_permitted: syn.sack_permitted,
        sack_ranges: [None; 3],
        timestamp: tsval.map(|v| TcpTimestampRepr::new(v, 0)),
        payload: &[],
    };
    datagram(key.src, key.dst, &tcp)
}

fn datagram(src: common::wire::Ipv4Addr, dst: common::wire::Ipv4Addr, tcp: &TcpRepr) -> Vec<u8> {
    let (src, dst) = (Ipv4Address::from_bits(src.0), Ipv4Address::from_bits(dst.0));
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut p, &caps);
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
    buf
}

#[cfg(test)]
mod tests;
