//! One turn of the control lcore, the same under DPDK and in the simulation: take a burst of
//! packets from the workers' ring, hand each to the part of the control plane that owns it
//! (dropped packets to the drop capture), and run the timers.

use std::sync::Arc;

use crate::settings::Settings;
use dataplane::contract::{Command, Rings, ToControl, Why};
use dataplane::packet::Packet;

use crate::dropcap::DropCapture;
use crate::proxy::Proxy;

use common::config::Iface;

use crate::local::LocalStack;
use dataplane::contract::ControlIo;

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
    fn send_frame(&mut self, iface: Iface, frame: &[u8]) {
        match (self.alloc)(frame) {
            Some(p) => self.send_packet(iface, p),
            None => self.tx_failed += 1,
        }
    }
    fn send_packet(&mut self, iface: Iface, pkt: P) {
        if self.rings.send(0, iface, pkt).is_err() {
            self.tx_failed += 1;
        }
    }
    fn broadcast(&mut self, cmd: Command) {
        self.commands_dropped += self.rings.broadcast(&cmd) as u64;
    }
    fn command(&mut self, worker: u16, cmd: Command) -> bool {
        let ring = &self.rings.commands[usize::from(worker) % self.rings.commands.len()];
        let ok = ring.push(cmd).is_ok();
        self.commands_dropped += u64::from(!ok);
        ok
    }
    fn syn_cookies(&mut self, on: bool) {
        self.rings
            .syn_cookies
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }
    fn reinject(&mut self, worker: u16, iface: Iface, pkt: P) -> bool {
        let ok = self.rings.reinject(usize::from(worker), iface, pkt).is_ok();
        self.tx_failed += u64::from(!ok);
        ok
    }
    fn alloc(&mut self, frame: &[u8]) -> Option<P> {
        (self.alloc)(frame)
    }
}

/// Everything that runs on the control lcore.
pub struct ControlPlane<P> {
    pub local: LocalStack<P>,
    pub proxy: Proxy,
    /// The drop capture, when the configuration has one (`capture.drops`).
    pub dropcap: Option<DropCapture>,
    last_tick: u32,
    /// The fast path's wrapping millisecond clock, extended to 64 bits for smoltcp.
    clock: u64,
    last_now: u32,
}

impl<P: Packet> ControlPlane<P> {
    pub fn new(settings: Arc<Settings>) -> Self {
        let links = settings.config.links();
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        ControlPlane {
            local: LocalStack::new(&settings.workers),
            dropcap: settings
                .config
                .capture
                .drops
                .as_ref()
                .map(|d| DropCapture::open(d, &names)),
            proxy: Proxy::new(settings),
            last_tick: 0,
            clock: 0,
            last_now: 0,
        }
    }

    /// The participating stack's clock (milliseconds).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// When a connection timer of the participating stack is next due, in the `now_ms` frame
    /// of [`ControlPlane::poll`] (it is acted on at the first tick from then): a simulation
    /// that skips idle time must not skip past it.
    pub fn next_due_ms(&self) -> Option<u32> {
        let due = self.proxy.next_due()?;
        Some(
            self.last_now
                .wrapping_add(due.saturating_sub(self.clock).min(u64::from(u32::MAX / 2)) as u32),
        )
    }

    /// One turn; returns how many packets it took from the ring.
    pub fn poll(&mut self, rings: &Rings<P>, now_ms: u32, io: &mut impl ControlIo<P>) -> usize {
        self.clock += u64::from(now_ms.wrapping_sub(self.last_now));
        self.last_now = now_ms;
        let mut n = 0;
        while n < CONTROL_BURST {
            let Some(msg) = rings.to_control.pop() else {
                break;
            };
            match msg.why {
                Why::ProxySyn { .. } | Why::ProxyAck { .. } | Why::Proxied => {
                    self.proxy.on_packet(msg, self.clock, &mut self.local, io)
                }
                Why::Dropped(_) => self.capture(msg),
                Why::Local if self.proxy.for_portal(msg.pkt.data()) => {
                    self.proxy.on_portal(msg, self.clock, &mut self.local, io)
                }
                _ => self.local.on_packet(msg, now_ms, io),
            }
            n += 1;
        }
        self.proxy.poll_verdicts(self.clock, &mut self.local, io);
        if now_ms.wrapping_sub(self.last_tick) >= TICK_MS {
            self.local.tick(now_ms, io);
            self.proxy.tick(self.clock, &mut self.local, io);
            if let Some(c) = self.dropcap.as_mut() {
                c.tick(now_ms);
            }
            self.last_tick = now_ms;
        }
        n
    }

    /// Writes a dropped packet to the drop capture (if there is one), then lets it go.
    fn capture(&mut self, msg: ToControl<P>) {
        if let (Why::Dropped(reason), Some(c)) = (msg.why, self.dropcap.as_mut()) {
            c.write(
                msg.iface,
                msg.worker,
                reason,
                msg.pkt.data(),
                wall_clock_us(),
            );
        }
    }

    /// At shutdown, once the workers have stopped: captures the dropped packets still queued
    /// toward control, lets go of the rest, and flushes the capture.
    pub fn finish(&mut self, rings: &Rings<P>) {
        while let Some(msg) = rings.to_control.pop() {
            self.capture(msg);
        }
        if let Some(c) = self.dropcap.as_mut() {
            c.flush();
        }
    }
}

/// Microseconds since the epoch: the drop capture's timestamps (control reads it when it
/// writes the packet, within a turn of the drop).
fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
