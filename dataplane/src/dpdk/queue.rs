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
use super::{DpdkError, MbufBurst};

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
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
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
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
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

/// # Safety
/// `queue` must be a configured RX queue of `port`, used by no other thread during the call.
#[inline]
pub(super) unsafe fn rx_into<const N: usize>(
    port: u16,
    queue: u16,
    burst: &mut MbufBurst<N>,
) -> usize {
    let (slots, room) = burst.spare();
    if room == 0 {
        return 0;
    }
    // SAFETY: the caller's contract on (port, queue); `slots` has `room` writable entries.
    let n = usize::from(unsafe { dpdk_sys::ct_eth_rx_burst(port, queue, slots, room) });
    // SAFETY: DPDK wrote n <= room owned, non-null mbufs into the spare slots.
    unsafe { burst.filled(n) };
    n
}

/// # Safety
/// `queue` must be a configured TX queue of `port`, used by no other thread during the call.
#[inline]
pub(super) unsafe fn tx_from<const N: usize>(
    port: u16,
    queue: u16,
    burst: &mut MbufBurst<N>,
) -> usize {
    let (slots, count) = burst.held();
    if count == 0 {
        return 0;
    }
    // SAFETY: the caller's contract on (port, queue); `slots` holds `count` owned mbufs.
    let n = usize::from(unsafe { dpdk_sys::ct_eth_tx_burst(port, queue, slots, count) });
    // SAFETY: DPDK took ownership of the first n (it frees them once sent).
    unsafe { burst.consumed(n) };
    n
}
