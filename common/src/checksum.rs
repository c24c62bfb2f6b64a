//! Internet checksums (RFC 1071) and their incremental update (RFC 1624).
//!
//! Every header change on the fast path goes through [`update16`], [`update32`] or
//! [`update_bytes`], which implement RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, in
//! one's-complement arithmetic. Because the update never looks at the rest of the packet, a
//! checksum that was wrong on the wire stays wrong by exactly the same amount, and the endpoint
//! still sees the error (the patent, end of Fig. 9). [`checksum`] recomputes from scratch and
//! exists for tests and for packets the control plane builds itself.

/// Adds `data` as big-endian 16-bit words to a 32-bit accumulator (a trailing odd byte is
/// padded with zero). The result is not folded.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold64(acc) as u32
}

/// Folds a 64-bit accumulator into a 16-bit one's-complement sum (end-around carry).
#[inline]
pub fn fold64(acc: u64) -> u16 {
    // Four end-around-carry steps take any 64-bit sum below 2^16 (after the first it is
    // below 2^33, then 0x2fffe, then 0x10001): no loop, no branch. Each step keeps the value
    // modulo 0xffff and never makes a non-zero sum zero, so the result is the loop's.
    let a = (acc & 0xffff_ffff) + (acc >> 32);
    let a = (a & 0xffff) + (a >> 16);
    let a = (a & 0xffff) + (a >> 16);
    let a = (a & 0xffff) + (a >> 16);
    a as u16
}

/// Folds a 32-bit accumulator into a 16-bit one's-complement sum (end-around carry).
#[inline]
pub fn fold(acc: u32) -> u16 {
    fold64(u64::from(acc))
}

/// One's-complement addition of two 16-bit values.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u32::from(a) + u32::from(b))
}

/// The checksum of `data` (the complement of its one's-complement sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// The sum of the IPv4 pseudo-header for TCP/UDP (RFC 793 §3.1).
#[inline]
pub fn pseudo_header_sum(src: u32, dst: u32, protocol: u8, length: u16) -> u32 {
    (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff)
        + u32::from(protocol)
        + u32::from(length)
}

/// RFC 1624 equation 3 for one 16-bit word: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!hc) + u32::from(!old) + u32::from(new))
}

/// RFC 1624 equation 3 for an aligned 32-bit field (two words at once).
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let acc = u32::from(!hc)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(acc)
}

/// RFC 1624 equation 3 for a field of any length at any offset inside the checksummed region.
///
/// `odd` says the field starts at an odd byte offset from the start of that region (TCP options
/// such as timestamps can sit there after a single NOP). One's-complement sums are
/// byte-order independent (RFC 1071 §2(B)): a field shifted by one byte contributes its own sum
/// with the two bytes swapped.
#[inline]
pub fn update_bytes(hc: u16, old: &[u8], new: &[u8], odd: bool) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let (mut so, mut sn) = (fold(sum(old)), fold(sum(new)));
    if odd {
        so = so.swap_bytes();
        sn = sn.swap_bytes();
    }
    update16(hc, so, sn)
}

/// `a - b` in one's-complement arithmetic, with both zeros (0x0000 and 0xffff) the same:
/// how far a checksum is from the correct one. Used by tests to show that an error on input
/// is carried unchanged through a rewrite.
#[inline]
pub fn difference(a: u16, b: u16) -> u16 {
    let d = add(a, !b);
    if d == 0xffff {
        0
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_branch_free_fold_is_the_loop_fold() {
        let looped = |mut acc: u64| {
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let edges = [
            0,
            1,
            0xfffe,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut values: Vec<u64> = edges.to_vec();
        for _ in 0..100_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Every magnitude: the sums the rewrites make are small, the edges large.
            values.push(x >> (x % 64));
        }
        for v in values {
            assert_eq!(fold64(v), looped(v), "{v:#x}");
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn update_bytes_at_odd_offset_matches_recomputation() {
        let mut buf = [0x11u8, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99];
        let before = checksum(&buf);
        let old = buf[3..7].to_vec();
        buf[3..7].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let inc = update_bytes(before, &old, &buf[3..7], true);
        assert_eq!(inc, checksum(&buf));
    }

    #[test]
    fn difference_treats_both_zeros_alike() {
        assert_eq!(difference(0xffff, 0x0000), 0);
        assert_eq!(difference(0x1234, 0x1234), 0);
        assert_eq!(difference(0x1235, 0x1234), 1);
    }
}
