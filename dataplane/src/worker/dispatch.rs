//! Where a packet's journey through a worker ends: buffered for its port, handed to the
//! control plane, or dropped (counted, and captured within the rate).

use super::*;

impl<Q: PortQueue> Worker<Q> {
    /// Carries out a packet's verdict: buffered for its port, handed to control (counted, a
    /// full ring a counted drop), or dropped (counted, and captured within the rate).
    pub(super) fn dispatch(&mut self, verdict: Verdict, pkt: Q::Pkt, ingress: Iface, now_ms: u32) {
        match verdict {
            Verdict::Forward(out) => {
                self.counters.forwarded += 1;
                self.enqueue_tx(out, pkt);
            }
            Verdict::ToControl(why) => {
                let msg = ToControl {
                    iface: ingress,
                    worker: self.id,
                    why,
                    pkt,
                };
                if let Err(msg) = self.rings.to_control.push(msg) {
                    self.counters.drops.count(DropReason::ControlRingFull);
                    // A proxy SYN control never saw must not leave its placeholder behind:
                    // the client's retransmission starts over.
                    if matches!(
                        msg.why,
                        Why::ProxySyn {
                            placeholder: true,
                            ..
                        }
                    ) {
                        if let Some(key) = flow_key_of(msg.pkt.data()) {
                            self.table.remove(&key);
                        }
                    }
                } else if matches!(why, Why::TtlExceeded) {
                    // Control only answers it (time exceeded); the packet itself ends here,
                    // so it counts as a drop, not as one handed over.
                    self.counters.drops.count(DropReason::TtlExceeded);
                } else {
                    self.counters.to_control += 1;
                }
            }
            Verdict::Drop(r) => {
                self.counters.drops.count(r);
                if self.capture.take(now_ms) {
                    self.capture(ingress, r, pkt);
                }
            }
        }
    }

    /// Hands a dropped packet to control for the drop capture. Only into the first half of
    /// the ring to control: the second half stays for the packets control must see (ARP,
    /// proxy SYNs), however many drops there are.
    fn capture(&mut self, iface: Iface, r: DropReason, pkt: Q::Pkt) {
        let ring = &self.rings.to_control;
        if ring.len() >= ring.capacity() / 2 {
            self.counters.capture_ring_full += 1;
            return;
        }
        let msg = ToControl {
            iface,
            worker: self.id,
            why: Why::Dropped(r),
            pkt,
        };
        match ring.push(msg) {
            Ok(()) => self.counters.drops_captured += 1,
            Err(_) => self.counters.capture_ring_full += 1,
        }
    }
}
