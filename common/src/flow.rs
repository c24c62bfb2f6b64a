//! Flow keys and the symmetric flow hash.
//!
//! The fast path indexes each connection once, under the key as the *client* (the SYN's
//! sender) sees it; a packet from the server looks the same connection up with its key
//! reversed. The hash is symmetric — both directions of a connection hash alike — so both
//! land in the same bucket and, in software steering, on the same worker.

use crate::wire::Ipv4Addr;

/// An IPv4 TCP/UDP 4-tuple in the direction of one packet (12 bytes, `Copy`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(C)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

/// Which way a packet travels on a connection, relative to its SYN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Direction {
    /// From the SYN's sender (the client) to the server.
    ClientToServer = 0,
    /// From the server to the client.
    ServerToClient = 1,
}

impl Direction {
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
    #[inline]
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

impl core::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{}",
            self.src, self.sport, self.dst, self.dport
        )
    }
}

impl FlowKey {
    pub const fn new(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> FlowKey {
        FlowKey {
            src,
            dst,
            sport,
            dport,
        }
    }

    /// Which way a packet with `key` travels on the connection keyed (client→server) by
    /// `self`, if it belongs to it.
    #[inline]
    pub fn direction_of(&self, key: &FlowKey) -> Option<Direction> {
        if key == self {
            Some(Direction::ClientToServer)
        } else if *key == self.reversed() {
            Some(Direction::ServerToClient)
        } else {
            None
        }
    }

    /// The same connection seen from the other end.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// A 32-bit hash that is the same for a key and its reverse.
    ///
    /// The two endpoints are ordered before mixing, so the result does not depend on which
    /// way the packet travels; the mixer is the splitmix64 finaliser (full avalanche, no
    /// table, a few cycles).
    #[inline]
    pub fn symmetric_hash(&self) -> u32 {
        let x = self.symmetric_mix();
        (x ^ (x >> 32)) as u32
    }

    /// Another 32 bits of the same mix, as symmetric: the high half alone. Spread over
    /// workers by this, the keys one worker gets still cover every value of
    /// [`FlowKey::symmetric_hash`] (which folds in the low half too), so each worker's
    /// table is indexed as evenly as one table would be.
    #[inline]
    pub fn symmetric_hash_high(&self) -> u32 {
        (self.symmetric_mix() >> 32) as u32
    }

    #[inline]
    fn symmetric_mix(&self) -> u64 {
        let a = (u64::from(self.src.0) << 16) | u64::from(self.sport);
        let b = (u64::from(self.dst.0) << 16) | u64::from(self.dport);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut x = lo ^ hi.rotate_left(29) ^ (hi >> 48).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

/// The symmetric Toeplitz key (0x6d5a repeated): with it the NIC's RSS hash of a packet and
/// of its reply are equal, so both directions reach the same queue (Woo and Park, "Scalable
/// TCP Session Monitoring with Symmetric Receive-side Scaling", 2012).
pub const SYMMETRIC_RSS_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// The Toeplitz hash a NIC computes for RSS (Microsoft RSS specification), over `input`.
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit window of the key that lines up with the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (next, &byte) in (4..).zip(input) {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            let incoming = key.get(next).map_or(0, |k| (k >> bit) & 1);
            window = (window << 1) | u32::from(incoming);
        }
    }
    result
}

impl FlowKey {
    /// The RSS hash a NIC with the symmetric key computes for this IPv4/TCP or UDP packet.
    pub fn rss_hash(&self) -> u32 {
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&self.src.octets());
        input[4..8].copy_from_slice(&self.dst.octets());
        input[8..10].copy_from_slice(&self.sport.to_be_bytes());
        input[10..12].copy_from_slice(&self.dport.to_be_bytes());
        toeplitz(&SYMMETRIC_RSS_KEY, &input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn both_directions_hash_alike(s: u32, d: u32, sp: u16, dp: u16) {
            let k = FlowKey::new(Ipv4Addr(s), sp, Ipv4Addr(d), dp);
            prop_assert_eq!(k.symmetric_hash(), k.reversed().symmetric_hash());
            prop_assert_eq!(k.symmetric_hash_high(), k.reversed().symmetric_hash_high());
        }

        #[test]
        fn symmetric_rss_hash_is_symmetric(s: u32, d: u32, sp: u16, dp: u16) {
            let k = FlowKey::new(Ipv4Addr(s), sp, Ipv4Addr(d), dp);
            prop_assert_eq!(k.rss_hash(), k.reversed().rss_hash());
        }
    }

    #[test]
    fn toeplitz_matches_the_rss_specification() {
        // Microsoft RSS verification suite, IPv4 with TCP ports, default (non-symmetric) key:
        // 66.9.149.187:2794 -> 161.142.100.80:1766 hashes to 0x51ccc178.
        const MS_KEY: [u8; 40] = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&MS_KEY, &input), 0x51cc_c178);
    }

    #[test]
    fn hash_spreads_nearby_flows() {
        // 4096 client ports to one server: the low 10 bits (a 1024-bucket table) must be used
        // fairly evenly, not collapse onto a few buckets.
        let mut buckets = [0u32; 1024];
        for p in 0..4096u16 {
            let k = FlowKey::new(
                Ipv4Addr::new(198, 18, 0, 1),
                40000 + p,
                Ipv4Addr::new(198, 19, 0, 2),
                80,
            );
            buckets[(k.symmetric_hash() & 1023) as usize] += 1;
        }
        let max = *buckets.iter().max().unwrap();
        assert!(max <= 16, "a bucket got {max} of 4096 keys");
    }

    #[test]
    fn different_flows_differ() {
        let a = FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            1000,
            Ipv4Addr::new(198, 19, 0, 2),
            80,
        );
        let b = FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            1001,
            Ipv4Addr::new(198, 19, 0, 2),
            80,
        );
        assert_ne!(a.symmetric_hash(), b.symmetric_hash());
    }
}
