//! Packets that reach a worker which does not own their flow go to the owner's handoff ring;
//! each worker takes what the others handed it and processes it as if received
//! ([`crate::steer`] says who owns what).

use super::*;
use crate::contract::Handoff;
use crate::steer::owned;

impl<Q: PortQueue> Worker<Q> {
    /// Whether packets may arrive here that another worker owns.
    #[inline]
    pub(super) fn steers(&self) -> bool {
        self.rings.handoff.len() > 1
            && self.ctx.mode == ForwardMode::Full
            && self.ctx.steering != Steering::One
    }

    /// Takes the packets another worker owns out of `rx` and hands them over; a full ring
    /// is the owner's counted drop `handoff_full`.
    pub(super) fn hand_off(&mut self, port: usize, rx: &mut Burst<Q::Pkt, BURST>) {
        let workers = self.rings.handoff.len();
        let mut mine: Burst<Q::Pkt, BURST> = Burst::new();
        for pkt in rx.drain() {
            let owner = owned(pkt.data()).and_then(|o| self.ctx.steering.owner(&o, workers));
            match owner {
                Some(w) if w != usize::from(self.id) => {
                    match self.rings.handoff[w].push(Handoff { port, pkt }) {
                        Ok(()) => self.counters.handed_off += 1,
                        Err(_) => self.counters.drops.count(DropReason::HandoffFull),
                    }
                }
                // The burst it came from holds at most as many.
                _ => {
                    let _ = mine.push(pkt);
                }
            }
        }
        *rx = mine;
    }

    /// Processes up to two bursts of what other workers handed this one. Returns whether
    /// more may be waiting.
    pub(super) fn take_handoffs(&mut self, now_ms: u32) -> bool {
        let budget = 2 * BURST;
        for _ in 0..budget {
            let Some(h) = self.rings.handoff[usize::from(self.id)].pop() else {
                return false;
            };
            self.counters.handoff_received += 1;
            self.handle(h.port, h.pkt, now_ms, None);
        }
        true
    }
}
