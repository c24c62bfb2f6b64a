//! Splitting a spliced segment that is larger than its receiver accepts into segments that
//! fit: TCP segmentation offload, in software, for the one case the box cannot prevent.
//!
//! The box answers some clients before it knows the server (`line`, `http-basic`, SYN
//! cookies) and tells them `min(client's MSS, proxy.client_mss)`. A server that accepts less
//! (a VPN or PPPoE path, a small `advmss`) would then receive segments larger than its MSS
//! after the splice. Each such segment becomes pieces of at most the server's MSS (data and
//! options), each a whole segment: the Ethernet, IPv4 and TCP headers copied (options
//! included, so SACK and timestamps go on every piece), the sequence number advanced by the
//! piece's offset, FIN and PSH on the last piece only, the IPv4 length and identification
//! and both checksums set per piece.
//!
//! The pieces' TCP checksums cannot be derived from the original's without summing the data
//! anyway, so the original's is verified first: a segment damaged on the wire is not split
//! (the caller drops it, as its receiver would), and each piece's checksum is computed over
//! its own bytes.

use crate::checksum;
use crate::wire::ethernet::{EtherType, EthernetFrame};
use crate::wire::ipv4::{self, Ipv4Packet, Protocol};
use crate::wire::tcp::{self, flags, TcpPacket};
use crate::wire::{be16, be32, put16, put32};

/// How one frame is cut (see [`plan_split`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitPlan {
    /// Ethernet, IPv4 and TCP headers, options included: copied to every piece.
    headers: usize,
    /// Where the IPv4 header starts.
    l3: usize,
    /// Where the TCP header starts.
    l4: usize,
    /// The payload's bytes in the frame.
    payload: usize,
    /// Payload bytes per piece (the last may carry fewer).
    chunk: usize,
}

/// Why a frame is not split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSplit {
    /// It fits as it is.
    Fits,
    /// Not a well-formed IPv4 TCP segment, or the MSS leaves no room for data after its
    /// headers: sent as it is.
    Unsplittable,
    /// Its TCP checksum is wrong: the receiver would drop it; so does the box.
    BadChecksum,
}

impl SplitPlan {
    /// How many pieces.
    pub fn pieces(&self) -> usize {
        self.payload.div_ceil(self.chunk)
    }

    /// The length of piece `i`'s frame.
    pub fn piece_len(&self, i: usize) -> usize {
        self.headers + self.chunk.min(self.payload - i * self.chunk)
    }
}

/// Plans cutting `frame` (an Ethernet frame, already rewritten for its receiver) into
/// segments whose data and options stay within `mss`.
pub fn plan_split(frame: &[u8], mss: u16) -> Result<SplitPlan, NoSplit> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| NoSplit::Unsplittable)?;
    if eth.ethertype() != EtherType::IPV4 {
        return Err(NoSplit::Unsplittable);
    }
    let l3 = eth.header_len();
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| NoSplit::Unsplittable)?;
    if ip.protocol() != Protocol::TCP || ip.is_fragment() {
        return Err(NoSplit::Unsplittable);
    }
    let l4 = l3 + ip.header_len();
    let seg = TcpPacket::new_checked(ip.payload()).map_err(|_| NoSplit::Unsplittable)?;
    let options = seg.header_len() - tcp::HEADER_LEN;
    let payload = seg.payload().len();
    if payload + options <= usize::from(mss) {
        return Err(NoSplit::Fits);
    }
    let chunk = usize::from(mss)
        .checked_sub(options)
        .filter(|&c| c >= 8)
        .ok_or(NoSplit::Unsplittable)?;
    if !seg.verify_checksum(ip.src().0, ip.dst().0) {
        return Err(NoSplit::BadChecksum);
    }
    Ok(SplitPlan {
        headers: l4 + seg.header_len(),
        l3,
        l4,
        payload,
        chunk,
    })
}

/// Writes piece `i` of `frame` (planned by `plan`) into `out`, which must be
/// `plan.piece_len(i)` bytes long.
pub fn write_piece(frame: &[u8], plan: &SplitPlan, i: usize, out: &mut [u8]) {
    let start = i * plan.chunk;
    let len = plan.chunk.min(plan.payload - start);
    let last = start + len == plan.payload;
    out[..plan.headers].copy_from_slice(&frame[..plan.headers]);
    out[plan.headers..plan.headers + len]
        .copy_from_slice(&frame[plan.headers + start..plan.headers + start + len]);

    use ipv4::field as ip_field;
    use tcp::field as tcp_field;
    let ip = &mut out[plan.l3..plan.l4];
    let mut hc = be16(ip, ip_field::CHECKSUM);
    let old_len = be16(ip, ip_field::LENGTH);
    let new_len = (plan.headers - plan.l3 + len) as u16;
    hc = checksum::update16(hc, old_len, new_len);
    put16(ip, ip_field::LENGTH, new_len);
    // Each piece its own identification, as a NIC's segmentation gives them.
    let old_id = be16(ip, ip_field::IDENT);
    let new_id = old_id.wrapping_add(i as u16);
    hc = checksum::update16(hc, old_id, new_id);
    put16(ip, ip_field::IDENT, new_id);
    put16(ip, ip_field::CHECKSUM, hc);
    let (src, dst) = (be32(ip, ip_field::SRC), be32(ip, ip_field::DST));

    let seg = &mut out[plan.l4..];
    let seq = be32(seg, tcp_field::SEQ).wrapping_add(start as u32);
    put32(seg, tcp_field::SEQ, seq);
    if !last {
        seg[tcp_field::FLAGS] &= !(flags::FIN | flags::PSH);
    }
    let mut t = TcpPacket::new_unchecked(seg);
    t.fill_checksum(src, dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::HEADER_LEN as ETHERNET_HEADER_LEN;

    /// An Ethernet + IPv4 + TCP frame with NOP NOP TS options and `payload`.
    fn frame(payload: &[u8], fl: u8) -> Vec<u8> {
        let opts: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
        let tcp_len = 20 + opts.len() + payload.len();
        let mut f = vec![0u8; ETHERNET_HEADER_LEN + 20 + tcp_len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[ETHERNET_HEADER_LEN..];
        ip[0] = 0x45;
        put16(ip, 2, (20 + tcp_len) as u16);
        put16(ip, 4, 0x1234);
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        put32(ip, 12, 0xc612_0001);
        put32(ip, 16, 0xc613_0002);
        let c = checksum::checksum(&ip[..20]);
        put16(ip, 10, c);
        let t = &mut ip[20..];
        put16(t, 0, 40_000);
        put16(t, 2, 9000);
        put32(t, 4, 0xffff_ff00);
        put32(t, 8, 77);
        t[12] = (((20 + opts.len()) / 4) << 4) as u8;
        t[13] = fl;
        put16(t, 14, 500);
        t[20..32].copy_from_slice(&opts);
        t[32..].copy_from_slice(payload);
        TcpPacket::new_unchecked(&mut t[..]).fill_checksum(0xc612_0001, 0xc613_0002);
        f
    }

    fn pieces(f: &[u8], mss: u16) -> Vec<Vec<u8>> {
        let plan = plan_split(f, mss).unwrap();
        (0..plan.pieces())
            .map(|i| {
                let mut out = vec![0u8; plan.piece_len(i)];
                write_piece(f, &plan, i, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn pieces_fit_cover_the_data_in_order_and_check_out() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let f = frame(&data, flags::ACK | flags::PSH | flags::FIN);
        let ps = pieces(&f, 1220);
        assert_eq!(ps.len(), 3, "1208 bytes of data per piece");
        let mut joined = Vec::new();
        let mut next_seq = 0xffff_ff00u32;
        for (i, p) in ps.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&p[ETHERNET_HEADER_LEN..]).unwrap();
            assert!(ip.verify_checksum(), "piece {i}: IPv4 checksum");
            assert_eq!(usize::from(ip.total_len()), p.len() - ETHERNET_HEADER_LEN);
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum(ip.src().0, ip.dst().0), "piece {i}");
            assert!(t.payload().len() + t.header_len() - 20 <= 1220);
            assert_eq!(t.seq_number().0, next_seq, "piece {i}: sequence wraps too");
            assert_eq!(t.options(), &f[54..66], "options on every piece");
            next_seq = next_seq.wrapping_add(t.payload().len() as u32);
            let last = i == ps.len() - 1;
            assert_eq!(t.fin(), last, "FIN on the last piece only");
            assert_eq!(
                t.flags() & flags::PSH != 0,
                last,
                "PSH on the last piece only"
            );
            assert_eq!(t.ack_number().0, 77);
            joined.extend_from_slice(t.payload());
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn a_segment_that_fits_is_left_alone() {
        let f = frame(&[1u8; 1208], flags::ACK);
        assert_eq!(plan_split(&f, 1220), Err(NoSplit::Fits));
        assert!(plan_split(&f, 1219).is_ok());
    }

    #[test]
    fn a_damaged_segment_is_not_laundered_into_valid_pieces() {
        let mut f = frame(&[5u8; 2000], flags::ACK);
        let last = f.len() - 1;
        f[last] ^= 0xff;
        assert_eq!(plan_split(&f, 536), Err(NoSplit::BadChecksum));
    }

    #[test]
    fn no_room_for_data_or_no_tcp_is_not_split() {
        let f = frame(&[5u8; 100], flags::ACK);
        assert_eq!(plan_split(&f, 16), Err(NoSplit::Unsplittable));
        assert_eq!(plan_split(&f[..30], 16), Err(NoSplit::Unsplittable));
    }

    #[test]
    fn every_mss_and_length_reassembles() {
        for mss in [100u16, 536, 1220, 1360] {
            for n in [1usize, 99, 524, 525, 1500, 2897] {
                let data: Vec<u8> = (0..n).map(|i| (i * 31 + 5) as u8).collect();
                let f = frame(&data, flags::ACK);
                let ps = match plan_split(&f, mss) {
                    Ok(_) => pieces(&f, mss),
                    Err(NoSplit::Fits) => vec![f.clone()],
                    Err(e) => panic!("mss {mss} len {n}: {e:?}"),
                };
                let joined: Vec<u8> = ps
                    .iter()
                    .flat_map(|p| {
                        let ip = Ipv4Packet::new_checked(&p[ETHERNET_HEADER_LEN..]).unwrap();
                        TcpPacket::new_checked(ip.payload())
                            .unwrap()
                            .payload()
                            .to_vec()
                    })
                    .collect();
                assert_eq!(joined, data, "mss {mss} len {n}");
            }
        }
    }
}
