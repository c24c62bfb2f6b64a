//! A token bucket on the millisecond clock the control loop already has: the box's own ICMP
//! errors are limited like Linux's `icmp_ratelimit`, so a flood of expiring packets cannot
//! make the box a reflector.

/// `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate: u32,
    burst: u32,
    /// Thousandths of a token, so slow rates refill exactly.
    milli: u64,
    last_ms: Option<u32>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            milli: u64::from(burst) * 1000,
            last_ms: None,
        }
    }

    /// Takes a token at `now_ms` (wrapping milliseconds); false when none is left.
    pub fn take(&mut self, now_ms: u32) -> bool {
        let elapsed = self.last_ms.map_or(0, |l| now_ms.wrapping_sub(l));
        // A clock that went backwards (wrapped the other way) refills nothing.
        let elapsed = if elapsed > u32::MAX / 2 { 0 } else { elapsed };
        self.last_ms = Some(now_ms);
        let cap = u64::from(self.burst) * 1000;
        self.milli = (self.milli + u64::from(elapsed) * u64::from(self.rate)).min(cap);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = TokenBucket::new(100, 10);
        let first = (0..50).filter(|_| b.take(1_000)).count();
        assert_eq!(first, 10, "the burst");
        // 100 a second: one every 10 ms.
        assert!(!b.take(1_005));
        assert!(b.take(1_010));
        assert!(!b.take(1_010));
        let second = (0..50).filter(|_| b.take(1_510)).count();
        assert_eq!(second, 10, "500 ms refill 50, capped at the burst");
    }

    #[test]
    fn survives_the_clock_wrapping() {
        let mut b = TokenBucket::new(1000, 1);
        assert!(b.take(u32::MAX - 1));
        assert!(!b.take(u32::MAX - 1));
        assert!(b.take(1), "3 ms later, across the wrap");
        // A timestamp from the past refills nothing.
        assert!(!b.take(0));
    }
}
