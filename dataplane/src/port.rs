//! What a worker needs of a port's queue pair, and in-memory ports that implement it.
//!
//! [`MemNic`] is a NIC in memory for tests and the deterministic simulation: frames injected
//! on its "wire" side are spread over its RX queues by the same symmetric Toeplitz RSS a real
//! NIC would compute (non-IPv4 and non-TCP/UDP frames go to queue 0, as RSS does with
//! no hash), and frames the box transmits on any queue come out on the wire side in order.
//! Its queues are lock-free bounded rings; a full RX ring is counted as `imissed`, as a NIC
//! does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::packet::{Burst, Packet};
use common::flow::FlowKey;
use common::wire::ethernet::{EtherType, EthernetFrame};
use common::wire::ipv4::{Ipv4Packet, Protocol};

/// One RX queue and one TX queue of one port, owned by one thread.
pub trait PortQueue: Send {
    type Pkt: Packet;
    /// Appends up to `out.room()` received packets to `out`; returns how many.
    fn rx_burst<const N: usize>(&mut self, out: &mut Burst<Self::Pkt, N>) -> usize;
    /// Sends from the front of `pkts`; the sent ones are removed, the unsent stay in order.
    /// Returns how many were sent.
    fn tx_burst<const N: usize>(&mut self, pkts: &mut Burst<Self::Pkt, N>) -> usize;
    /// A new packet of `len` bytes (contents unspecified: overwrite them) to send on this
    /// queue; `None` when no buffer is free (or the queue has no pool).
    fn alloc(&mut self, len: usize) -> Option<Self::Pkt>;
}

/// Port counters as a NIC reports them.
#[derive(Debug, Default)]
pub struct MemNicStats {
    pub ipackets: AtomicU64,
    pub opackets: AtomicU64,
    pub ibytes: AtomicU64,
    pub obytes: AtomicU64,
    pub imissed: AtomicU64,
    pub oerrors: AtomicU64,
}

/// How a [`MemNic`] picks the RX queue of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spread {
    /// Symmetric RSS with a round-robin redirection table of 128 entries: both directions of
    /// a flow on one queue (`crate::steer::Steering::Rss`).
    #[default]
    Rss,
    /// By the sender's address and port alone, as a device without symmetric RSS may: the
    /// two directions of a flow mostly on different queues.
    BySender,
}

/// A NIC in memory with `queues` RX/TX queue pairs.
#[derive(Debug)]
pub struct MemNic {
    rx: Vec<ArrayQueue<Vec<u8>>>,
    spread: Spread,
    wire_out: ArrayQueue<Vec<u8>>,
    pub stats: MemNicStats,
}

impl MemNic {
    pub fn new(queues: usize, depth: usize) -> Arc<MemNic> {
        MemNic::spreading(queues, depth, Spread::Rss)
    }

    pub fn spreading(queues: usize, depth: usize, spread: Spread) -> Arc<MemNic> {
        Arc::new(MemNic {
            rx: (0..queues.max(1)).map(|_| ArrayQueue::new(depth)).collect(),
            spread,
            wire_out: ArrayQueue::new(depth * queues.max(1)),
            stats: MemNicStats::default(),
        })
    }

    pub fn queues(&self) -> usize {
        self.rx.len()
    }

    /// The RX queue a frame arrives on (see [`Spread`]).
    pub fn rss_queue(&self, frame: &[u8]) -> usize {
        let Some(k) = flow_key_of(frame) else {
            return 0;
        };
        match self.spread {
            Spread::Rss => (k.rss_hash() as usize % 128) % self.rx.len(),
            Spread::BySender => {
                let sender = FlowKey::new(k.src, k.sport, k.src, k.sport);
                sender.symmetric_hash() as usize % self.rx.len()
            }
        }
    }

    /// A frame arrives from the wire. Returns false (counted as missed) when the ring is full.
    pub fn inject(&self, frame: Vec<u8>) -> bool {
        let q = self.rss_queue(&frame);
        self.inject_to(q, frame)
    }

    /// A frame arrives on RX queue `q` (whatever its flow).
    pub fn inject_to(&self, q: usize, frame: Vec<u8>) -> bool {
        let len = frame.len() as u64;
        match self.rx[q].push(frame) {
            Ok(()) => {
                self.stats.ipackets.fetch_add(1, Ordering::Relaxed);
                self.stats.ibytes.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.imissed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The next frame the box sent out of this port, if any.
    pub fn take_sent(&self) -> Option<Vec<u8>> {
        self.wire_out.pop()
    }

    /// Every frame sent so far.
    pub fn drain_sent(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.wire_out.pop()).collect()
    }

    /// A queue pair of this NIC for one worker (or the control plane's TX queue).
    pub fn queue(self: &Arc<Self>, q: usize) -> MemQueue {
        assert!(
            q < self.rx.len() || q == self.rx.len(),
            "queue {q} out of range"
        );
        MemQueue {
            nic: Arc::clone(self),
            q,
        }
    }
}

/// The IPv4 datagram an Ethernet frame carries, if it is one.
#[inline]
pub fn ipv4_of(frame: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    Ipv4Packet::new_checked(&frame[eth.header_len()..]).ok()
}

/// The key RSS hashes for a frame: IPv4 TCP/UDP, not fragmented.
pub fn flow_key_of(frame: &[u8]) -> Option<FlowKey> {
    let ip = ipv4_of(frame)?;
    let proto = ip.protocol();
    if (proto != Protocol::TCP && proto != Protocol::UDP) || ip.is_fragment() {
        return None;
    }
    let l4 = ip.payload();
    if l4.len() < 4 {
        return None;
    }
    Some(FlowKey::new(
        ip.src(),
        u16::from_be_bytes([l4[0], l4[1]]),
        ip.dst(),
        u16::from_be_bytes([l4[2], l4[3]]),
    ))
}

/// One queue pair of a [`MemNic`]. Queue index `queues()` is a TX-only queue (the control
/// plane's).
#[derive(Debug)]
pub struct MemQueue {
    nic: Arc<MemNic>,
    q: usize,
}

impl PortQueue for MemQueue {
    type Pkt = Vec<u8>;

    fn alloc(&mut self, len: usize) -> Option<Vec<u8>> {
        Some(vec![0; len])
    }

    fn rx_burst<const N: usize>(&mut self, out: &mut Burst<Vec<u8>, N>) -> usize {
        let Some(ring) = self.nic.rx.get(self.q) else {
            return 0;
        };
        let mut n = 0;
        while !out.is_full() {
            match ring.pop() {
                Some(f) => {
                    let _ = out.push(f);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    fn tx_burst<const N: usize>(&mut self, pkts: &mut Burst<Vec<u8>, N>) -> usize {
        let room = self.nic.wire_out.capacity() - self.nic.wire_out.len();
        let n = pkts.len().min(room);
        for f in pkts.consume_front(n) {
            self.nic.stats.opackets.fetch_add(1, Ordering::Relaxed);
            self.nic
                .stats
                .obytes
                .fetch_add(f.data().len() as u64, Ordering::Relaxed);
            // Room was checked above and this queue's NIC has one producer per queue; a
            // racing producer on another queue can still fill it: count that as an error.
            if self.nic.wire_out.push(f).is_err() {
                self.nic.stats.oerrors.fetch_add(1, Ordering::Relaxed);
            }
        }
        n
    }
}
