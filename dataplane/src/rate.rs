//! A token bucket on the worker's own clock, for the drop capture: a worker hands at most its
//! share of the configured rate of dropped packets to control, so a flood of bad packets
//! cannot turn into a flood of work for the control lcore and the disk.
//!
//! Refilled lazily from the `now_ms` the worker already has (no clock read of its own), in
//! thousandths of a token so that any rate refills smoothly at millisecond steps; it holds
//! one second's worth at most, so an idle worker may capture a burst of `rate` packets.

/// Packets per second, `rate` at most in any one burst. A rate of zero never gives a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u32,
    /// In thousandths of a token.
    milli: u64,
    last_ms: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32) -> TokenBucket {
        TokenBucket {
            rate,
            milli: u64::from(rate) * 1000,
            last_ms: 0,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Takes a token at `now_ms` (wrapping milliseconds), if there is one.
    #[inline]
    pub fn take(&mut self, now_ms: u32) -> bool {
        if self.rate == 0 {
            return false;
        }
        let elapsed = u64::from(now_ms.wrapping_sub(self.last_ms));
        self.last_ms = now_ms;
        let full = u64::from(self.rate) * 1000;
        self.milli = (self.milli + elapsed * u64::from(self.rate)).min(full);
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

    fn takes(b: &mut TokenBucket, now: u32, tries: usize) -> usize {
        (0..tries).filter(|_| b.take(now)).count()
    }

    #[test]
    fn a_burst_gets_the_rate_then_time_refills_it() {
        let mut b = TokenBucket::new(10);
        assert_eq!(takes(&mut b, 5_000, 25), 10);
        assert_eq!(takes(&mut b, 5_099, 5), 0, "a tenth of a token is not one");
        assert_eq!(takes(&mut b, 5_100, 5), 1);
        assert_eq!(takes(&mut b, 5_600, 10), 5);
        // Never more than one second's worth, however long it was idle.
        assert_eq!(takes(&mut b, 60_000, 25), 10);
    }

    #[test]
    fn slow_rates_accumulate_across_calls() {
        let mut b = TokenBucket::new(3);
        assert_eq!(takes(&mut b, 0, 3), 3);
        // 3 per second: one token every 333.3 ms, counted in thousandths.
        let got: usize = (1..=1000).map(|ms| takes(&mut b, ms, 1)).sum();
        assert_eq!(got, 3);
    }

    #[test]
    fn survives_the_clock_wrapping() {
        let mut b = TokenBucket::new(2);
        assert_eq!(takes(&mut b, u32::MAX - 10, 5), 2);
        assert_eq!(takes(&mut b, 489, 5), 1, "500 ms across the wrap");
    }

    #[test]
    fn rate_zero_is_off() {
        let mut b = TokenBucket::new(0);
        assert_eq!(takes(&mut b, 1_000_000, 10), 0);
    }
}
