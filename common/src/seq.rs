//! TCP sequence numbers as a type (RFC 793 §3.3, RFC 1982 serial arithmetic).
//!
//! A raw `u32` comparison across the 2³² wrap is a bug waiting: `SeqNumber` only offers
//! wrapping arithmetic and modular ordering, valid while the two numbers are less than 2³¹
//! apart (always true inside a TCP window).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, Sub};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The signed distance from `other` to `self` (`self - other`), modulo 2³².
    #[inline]
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The later of two sequence numbers in modular order.
    #[inline]
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self.diff(other) >= 0 {
            self
        } else {
            other
        }
    }

    /// The earlier of two sequence numbers in modular order.
    #[inline]
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self.diff(other) <= 0 {
            self
        } else {
            other
        }
    }

    /// Adds a 32-bit offset modulo 2³² (deltas are full-range, not signed window distances).
    #[inline]
    pub fn wrapping_add(self, delta: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(delta))
    }

    /// Subtracts a 32-bit offset modulo 2³².
    #[inline]
    pub fn wrapping_sub(self, delta: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(delta))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    #[inline]
    fn add(self, rhs: usize) -> SeqNumber {
        // Segment lengths are below 2^16; truncation of larger values is what TCP does anyway.
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl Sub for SeqNumber {
    type Output = i32;
    #[inline]
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.diff(rhs)
    }
}

impl PartialOrd for SeqNumber {
    #[inline]
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq({})", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordering_across_the_wrap() {
        let a = SeqNumber(u32::MAX - 10);
        let b = a + 20usize;
        assert_eq!(b.0, 9);
        assert!(b > a);
        assert!(a < b);
        assert_eq!(b - a, 20);
        assert_eq!(a - b, -20);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn add_then_sub_is_identity(x: u32, d: u32) {
            prop_assert_eq!(SeqNumber(x).wrapping_add(d).wrapping_sub(d), SeqNumber(x));
        }

        #[test]
        fn order_is_modular(x: u32, d in 1u32..(1 << 31)) {
            let a = SeqNumber(x);
            let b = a.wrapping_add(d);
            prop_assert!(b > a);
            prop_assert!(a < b);
            prop_assert_eq!(b - a, d as i32);
        }
    }
}
