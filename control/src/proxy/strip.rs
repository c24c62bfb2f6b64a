//! Stripping the payload (and a FIN) of a segment during the drain (patent Fig. 6): the leg
//! still learns what the peer acknowledged, but no new data reaches it, so the box
//! acknowledges nothing new and the peer sends that data again later — through the fast path.
//! A FIN is held back the same way: a peer that closes during the drain is spliced all the
//! same, and its FIN reaches the other peer through the fast path.

use common::wire::ipv4::{Ipv4Packet, Protocol};
use common::wire::tcp::{flags, TcpPacket};

/// Cuts the TCP payload and the FIN flag off an IP datagram (checksums recomputed: the
/// packet is the box's own business from here on). Returns whether anything was cut.
pub fn strip_payload(ip: &mut Vec<u8>) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(&ip[..]) else {
        return false;
    };
    if p.protocol() != Protocol::TCP {
        return false;
    }
    let (src, dst, ihl) = (p.src(), p.dst(), p.header_len());
    let Ok(t) = TcpPacket::new_checked(p.payload()) else {
        return false;
    };
    if t.payload().is_empty() && t.flags() & flags::FIN == 0 {
        return false;
    }
    let end = ihl + t.header_len();
    ip.truncate(end);
    let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
    p.set_total_len(end as u16);
    p.fill_checksum();
    let mut t = TcpPacket::new_unchecked(&mut ip[ihl..]);
    // The push flag means nothing without data.
    t.set_flags(t.flags() & !(flags::PSH | flags::FIN));
    t.fill_checksum(src.0, dst.0);
    true
}
