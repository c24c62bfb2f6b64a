//! Login attempts that wait for their address's verifications (see
//! [`crate::auth::RateLimiter::must_wait`]), submitted as verdicts come in.

use dataplane::packet::Packet;

use super::conn::verify;
use super::Proxy;
use crate::auth::Verdict;
use crate::local::LocalStack;
use dataplane::contract::ControlIo;

impl Proxy {
    /// Submits the deferred attempts whose address has room again, in the order they came;
    /// one whose address got limited meanwhile is answered unchecked.
    pub(super) fn submit_deferred<P: Packet>(
        &mut self,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        for _ in 0..self.deferred.len() {
            let Some(key) = self.deferred.pop_front() else {
                break;
            };
            let Some(c) = self.conns.get_mut(&key) else {
                continue;
            };
            if !self.limiter.is_limited(key.src, now_ms) && self.limiter.must_wait(key.src, now_ms)
            {
                self.deferred.push_back(key);
                continue;
            }
            // (An entry of a connection gone, or of a new one on the same quad, has none.)
            let Some(credentials) = c.take_deferred() else {
                continue;
            };
            let verdict = if self.limiter.is_limited(key.src, now_ms) {
                Some(Verdict::Unavailable)
            } else {
                let against = c.against(&self.dir);
                verify(
                    &mut self.verifier,
                    &against,
                    &mut self.limiter,
                    key,
                    credentials,
                )
            };
            if let Some(v) = verdict {
                c.deliver(v);
                self.turn(key, now_ms, local, io);
            }
        }
    }
}
