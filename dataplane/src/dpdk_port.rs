//! DPDK queues as the worker loop sees them: [`DpdkQueuePair`] is a worker's [`PortQueue`] on
//! one port (RX queue *i* and TX queue *i*, DESIGN.md §3); the control plane sends through
//! the workers (`contract`). Safe code over [`crate::dpdk`]; the packets are [`Mbuf`]s and
//! the bursts the worker's own [`Burst`], which DPDK fills and empties in place.

use crate::dpdk::{Mbuf, Mempool, RxQueue, TxQueue};
use crate::packet::Burst;
use crate::port::PortQueue;

/// One worker's RX and TX queue on one port.
pub struct DpdkQueuePair {
    rx: RxQueue,
    tx: TxQueue,
    /// Where packets the worker makes itself come from (segments it splits).
    pool: Option<Mempool>,
}

impl DpdkQueuePair {
    /// Pairs an RX and a TX queue handle.
    ///
    /// # Panics
    /// If they belong to different ports (a programmer error).
    pub fn new(rx: RxQueue, tx: TxQueue) -> DpdkQueuePair {
        assert_eq!(
            rx.port_id(),
            tx.port_id(),
            "a queue pair is two queues of one port"
        );
        DpdkQueuePair { rx, tx, pool: None }
    }

    /// The pool the worker takes new packets from ([`PortQueue::alloc`]).
    pub fn with_pool(mut self, pool: Mempool) -> DpdkQueuePair {
        self.pool = Some(pool);
        self
    }

    /// The DPDK port id.
    pub fn port_id(&self) -> u16 {
        self.rx.port_id()
    }

    /// The (RX queue, TX queue) indices.
    pub fn queues(&self) -> (u16, u16) {
        (self.rx.queue(), self.tx.queue())
    }

    /// Gives the two handles back (to stop or reconfigure the port, drop them).
    pub fn into_parts(self) -> (RxQueue, TxQueue) {
        (self.rx, self.tx)
    }
}

impl std::fmt::Debug for DpdkQueuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkQueuePair")
            .field("port", &self.port_id())
            .field("queues", &self.queues())
            .finish()
    }
}

impl PortQueue for DpdkQueuePair {
    type Pkt = Mbuf;

    #[inline]
    fn rx_burst<const N: usize>(&mut self, out: &mut Burst<Mbuf, N>) -> usize {
        self.rx.rx_burst(out)
    }

    #[inline]
    fn tx_burst<const N: usize>(&mut self, pkts: &mut Burst<Mbuf, N>) -> usize {
        self.tx.tx_burst(pkts)
    }

    fn alloc(&mut self, len: usize) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(self.pool.as_ref()?)?;
        m.append(len)?;
        Some(m)
    }
}
