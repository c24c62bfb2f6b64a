//! Per-queue handles: what a worker owns to burst on one RX or TX queue of a port.
//!
//! DPDK requires each queue to be used by one thread at a time. A handle is taken once per
//! queue ([`Port::rx_queue`](super::Port::rx_queue)), is `Send` to its worker's lcore but not
//! `Sync`, and releases the queue when dropped. Handles are taken from a started port, keep it
//! open, and block its reconfiguration and stop while they live: a handle always bursts on a
//! running queue.
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::port::PortInner;
use super::{DpdkError, Mbuf};
use crate::packet::Burst;

/// The RX side of one queue of a port, owned by one worker.
pub struct RxQueue {
    pub(super) port: Arc<PortInner>,
    pub(super) queue: u16,
    pub(super) _not_sync: PhantomData<Cell<()>>,
}

/// The TX side of one queue of a port, owned by one worker (or the control plane).
pub struct TxQueue {
    pub(super) port: Arc<PortInner>,
    pub(super) queue: u16,
    pub(super) _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to the free room of `burst`; returns how many came.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<Mbuf, N>) -> usize {
        // SAFETY: this handle is the only user of the queue (claimed), which is configured, and
        // the port cannot be reconfigured or stopped while the handle exists.
        unsafe { rx_into(self.port.id, self.queue, burst) }
    }
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Sends from the front of `burst`; returns how many were sent. The rest stay in
    /// `burst`, in order.
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<Mbuf, N>) -> usize {
        // SAFETY: as in RxQueue::rx_burst.
        unsafe { tx_from(self.port.id, self.queue, burst) }
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.rx_claimed[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.tx_claimed[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

pub(super) fn claim(
    flags: &[AtomicBool],
    queue: u16,
    port: &str,
    what: &'static str,
) -> Result<(), DpdkError> {
    let flag = flags
        .get(usize::from(queue))
        .ok_or_else(|| DpdkError::InvalidConfig {
            target: format!("port {port}"),
            why: format!(
                "{what} {queue} is not configured ({} configured)",
                flags.len()
            ),
        })?;
    if flag
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(DpdkError::PortBusy {
            port: port.to_string(),
            why: "that queue's handle is already taken",
        });
    }
    Ok(())
}

pub(super) fn assert_unclaimed(flags: &[AtomicBool], queue: u16, what: &str) {
    let flag = flags.get(usize::from(queue));
    assert!(
        flag.is_some_and(|f| !f.load(Ordering::Acquire)),
        "{what} queue {queue} is not configured or is held by a queue handle"
    );
}

/// Receives into the free slots of `burst` (appended after the packets it holds).
///
/// # Safety
/// `queue` must be a configured RX queue of `port`, used by no other thread during the call.
#[inline]
pub(super) unsafe fn rx_into<const N: usize>(
    port: u16,
    queue: u16,
    burst: &mut Burst<Mbuf, N>,
) -> usize {
    let (slots, len) = burst.slots_mut();
    let spare = &mut slots[*len..];
    let room = u16::try_from(spare.len()).unwrap_or(u16::MAX);
    if room == 0 {
        return 0;
    }
    // SAFETY: the caller's contract on (port, queue). `spare` is at least `room` consecutive
    // `Option<Mbuf>`s, which have the layout of `struct rte_mbuf *` (see `Mbuf`), so it is the
    // writable array of `room` pointers DPDK wants; it only writes to it. The slots are `None`
    // (Burst's invariant past `len`): overwriting them drops nothing (and a `Some` left there
    // by a leaked iterator would only leak its mbuf, never free one twice). DPDK writes n <= room
    // non-null pointers to mbufs it hands over to us, i.e. valid `Some(Mbuf)`s that the
    // burst now owns: counting them in `len` below is all that is left to do.
    let n = usize::from(unsafe {
        dpdk_sys::ct_eth_rx_burst(port, queue, spare.as_mut_ptr().cast(), room)
    });
    debug_assert!(spare[..n].iter().all(Option::is_some));
    *len += n;
    n
}

/// Sends from the front of `burst`; the unsent stay, moved to the front, in order.
///
/// # Safety
/// `queue` must be a configured TX queue of `port`, used by no other thread during the call.
#[inline]
pub(super) unsafe fn tx_from<const N: usize>(
    port: u16,
    queue: u16,
    burst: &mut Burst<Mbuf, N>,
) -> usize {
    let (slots, len) = burst.slots_mut();
    let held = &mut slots[..*len];
    let count = u16::try_from(held.len()).unwrap_or(u16::MAX);
    if count == 0 {
        return 0;
    }
    // SAFETY: the caller's contract on (port, queue). The first `count` slots are `Some`
    // (Burst is dense from 0), i.e. owned, non-null `struct rte_mbuf *`s by the layout of
    // `Option<Mbuf>` (see `Mbuf`): the array of `count` mbufs DPDK wants. DPDK takes ownership
    // of the first n <= count it returns (and frees them once sent); the rest stay where they
    // were, still ours ("the upper layer" retries or frees them, as rte_eth_tx_burst says).
    let n = usize::from(unsafe {
        dpdk_sys::ct_eth_tx_burst(port, queue, held.as_mut_ptr().cast(), count)
    });
    // The first n slots still name mbufs that are DPDK's now: forget them, unfreed and
    // unread (they may be freed already), leaving `None`; then the unsent move to the front.
    for slot in &mut held[..n] {
        std::mem::forget(slot.take());
    }
    held.rotate_left(n);
    *len -= n;
    n
}
