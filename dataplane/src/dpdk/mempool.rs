//! Packet-buffer pools (`rte_pktmbuf_pool_create`).
//!
//! A pool is multi-producer/multi-consumer (DPDK's default `ring_mp_mc` ops): any thread may
//! allocate from it and free into it. EAL lcores use a per-lcore cache; other threads go to the
//! ring directly.
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{rte_errno, DpdkError, Eal};

/// A cloneable handle on an mbuf pool. The pool is freed when the last handle is dropped and
/// every mbuf is back; if some are still out (held by an [`Mbuf`](super::Mbuf), or in a port's
/// descriptor rings) the pool and the EAL are leaked instead, so no mbuf ever dangles.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    size: u32,
    data_room: u16,
    eal: Eal,
}

// SAFETY: an rte_mempool with the default ring_mp_mc ops may be used from any thread at once
// (per-lcore caches are indexed by the caller's unique lcore id); the other fields are plain
// data, immutable after creation.
unsafe impl Send for PoolInner {}
// SAFETY: as for Send: every operation we expose through &PoolInner is thread-safe in DPDK.
unsafe impl Sync for PoolInner {}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("data_room", &self.inner.data_room)
            .finish()
    }
}

impl Mempool {
    /// Any NUMA socket (`SOCKET_ID_ANY`).
    pub const SOCKET_ANY: i32 = dpdk_sys::SOCKET_ID_ANY;
    /// Headroom DPDK reserves in front of the packet in every mbuf (`RTE_PKTMBUF_HEADROOM`).
    pub const HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;
    /// Data room for a standard 1500-byte MTU frame plus headroom
    /// (`RTE_MBUF_DEFAULT_BUF_SIZE`).
    pub const DEFAULT_DATA_ROOM: u16 = 2048 + Self::HEADROOM;

    /// Creates a pool of `n_mbufs` packet buffers, each with `data_room` bytes (headroom
    /// included), with a per-lcore cache of `cache` buffers (at most 512, and DPDK wants
    /// `n_mbufs` to be at least 1.5 times it), on NUMA `socket` ([`Mempool::SOCKET_ANY`]).
    /// Names are unique per process.
    pub fn new(
        eal: &Eal,
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let target = || format!("mempool {name:?}");
        if data_room <= Self::HEADROOM {
            return Err(DpdkError::InvalidConfig {
                target: target(),
                why: format!("data room {data_room} leaves no byte after the headroom"),
            });
        }
        let c_name = CString::new(name).map_err(|_| DpdkError::InvalidConfig {
            target: target(),
            why: "mempool name contains a NUL byte".to_string(),
        })?;
        // SAFETY: c_name is a valid C string for the call (DPDK copies it); the EAL is up
        // (we hold a handle). Failure is reported as NULL with rte_errno set.
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| DpdkError::call("rte_pktmbuf_pool_create", target(), rte_errno()))?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                ptr,
                name: name.to_string(),
                size: n_mbufs,
                data_room,
                eal: eal.clone(),
            }),
        })
    }

    /// The name the pool was created with.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many mbufs the pool holds in all.
    pub fn capacity(&self) -> u32 {
        self.inner.size
    }

    /// Bytes of buffer per mbuf, headroom included.
    pub fn data_room(&self) -> u16 {
        self.inner.data_room
    }

    /// Bytes of packet one mbuf can hold after the standard headroom.
    pub fn max_packet_len(&self) -> u16 {
        self.inner.data_room - Self::HEADROOM
    }

    /// Free mbufs, per-lcore caches included. Not exact while other threads use the pool.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive (we hold it); the count only reads the ring and caches.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs currently out of the pool (in packets, rings and descriptor queues).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for available().
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool is alive until the free below.
        let in_use = unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            log::warn!(
                "mempool {:?}: {in_use} mbufs still out at drop: pool and EAL left allocated",
                self.name
            );
            // Keep the EAL (and so this pool's memory) alive for the rest of the process.
            std::mem::forget(self.eal.clone());
            return;
        }
        // SAFETY: no mbuf of this pool exists (in_use == 0, and nothing can allocate: this was
        // the last handle, and ports hold a handle while configured with it).
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
