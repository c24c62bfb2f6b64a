//! One turn of the control lcore, the same under DPDK and in the simulation: take a burst of
//! packets from the workers' ring, hand each to the part of the control plane that owns it,
//! and run the timers.

use dataplane::packet::Packet;
use dataplane::ring::{Command, Rings};

use common::config::Side;

use crate::local::{ControlIo, LocalStack};

/// Packets the control loop takes from its ring per turn.
pub const CONTROL_BURST: usize = 64;
/// How often the timers run.
pub const TICK_MS: u32 = 10;

/// The control plane's I/O over the rings: frames it builds become packets through `alloc`
/// (an mbuf from the pool, or a `Vec` in tests); everything it sends goes out through worker
/// 0's TX queues (see `dataplane::ring`).
pub struct RingIo<'a, P, A: FnMut(&[u8]) -> Option<P>> {
    pub rings: &'a Rings<P>,
    pub alloc: A,
    pub tx_failed: u64,
    pub commands_dropped: u64,
}

impl<'a, P, A: FnMut(&[u8]) -> Option<P>> RingIo<'a, P, A> {
    pub fn new(rings: &'a Rings<P>, alloc: A) -> Self {
        RingIo {
            rings,
            alloc,
            tx_failed: 0,
            commands_dropped: 0,
        }
    }
}

impl<P, A: FnMut(&[u8]) -> Option<P>> ControlIo<P> for RingIo<'_, P, A> {
    fn send_frame(&mut self, side: Side, frame: &[u8]) {
        match (self.alloc)(frame) {
            Some(p) => self.send_packet(side, p),
            None => self.tx_failed += 1,
        }
    }
    fn send_packet(&mut self, side: Side, pkt: P) {
        if self.rings.send(0, side, pkt).is_err() {
            self.tx_failed += 1;
        }
    }
    fn broadcast(&mut self, cmd: Command) {
        self.commands_dropped += self.rings.broadcast(&cmd) as u64;
    }
}

/// Everything that runs on the control lcore.
pub struct ControlPlane<P> {
    pub local: LocalStack<P>,
    last_tick: u32,
}

impl<P: Packet> ControlPlane<P> {
    pub fn new(local: LocalStack<P>) -> Self {
        ControlPlane {
            local,
            last_tick: 0,
        }
    }

    /// One turn; returns how many packets it took from the ring.
    pub fn poll(&mut self, rings: &Rings<P>, now_ms: u32, io: &mut impl ControlIo<P>) -> usize {
        let mut n = 0;
        while n < CONTROL_BURST {
            let Some(msg) = rings.to_control.pop() else {
                break;
            };
            self.local.on_packet(msg, now_ms, io);
            n += 1;
        }
        if now_ms.wrapping_sub(self.last_tick) >= TICK_MS {
            self.local.tick(now_ms, io);
            self.last_tick = now_ms;
        }
        n
    }
}
