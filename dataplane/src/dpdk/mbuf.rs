//! Packet buffers: [`Mbuf`] owns one `rte_mbuf` and frees it when dropped. Bursts of them are
//! the worker loop's own [`Burst<Mbuf, N>`](crate::packet::Burst), whose slot array
//! `[Option<Mbuf>; N]` has the layout of DPDK's `struct rte_mbuf *[N]` (see [`Mbuf`]), so
//! `rx_burst` / `tx_burst` fill and empty it in place.
//!
//! # One segment
//! [`Mbuf::data`] and [`Mbuf::data_mut`] see the first segment only. The box never makes
//! multi-segment mbufs: ports are configured without scatter and with an MTU whose frames fit
//! one buffer ([`Port::configure`](super::Port::configure) checks it), and packets built here
//! are copied into one segment. [`Mbuf::is_contiguous`] tells if that ever fails to hold.
//!
//! The hot accessors (`data`, `len`, `port`) read the `rte_mbuf` fields directly, whose layout
//! bindgen took from the headers (and checked at compile time); the rest go through the shim.
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::slice;

use dpdk_sys::rte_mbuf;

use super::{DpdkError, Mempool};
use crate::packet::Packet;

/// One packet buffer, owned: freed (back to its pool) when dropped.
///
/// `#[repr(transparent)]` over `NonNull<rte_mbuf>`, so an `Option<Mbuf>` is a nullable
/// `struct rte_mbuf *`: the std docs (`std::option`, "Representation") guarantee the
/// null-pointer optimisation for `Option` of a `repr(transparent)` struct around `NonNull<U>`
/// (`U: Sized`): `Option<T>` has the size, alignment and ABI of `T`, every valid `T` (any
/// non-null pointer) read as `Option<T>` is `Some` of it, `Some(t)` read as `T` is `t`, and
/// all-zero bytes (NULL) are `None`. The queues rely on it to hand a `[Option<Mbuf>; N]` to
/// DPDK as its `struct rte_mbuf *[N]` array.
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// The layout the burst functions rely on, checked at compile time as well.
const _: () = assert!(
    size_of::<Option<Mbuf>>() == size_of::<*mut rte_mbuf>()
        && align_of::<Option<Mbuf>>() == align_of::<*mut rte_mbuf>()
);

// SAFETY: an Mbuf is the sole owner of its rte_mbuf (refcount 1, never shared: we make no
// clones), so moving it to another thread moves the whole buffer; freeing it from any thread is
// allowed because pools are multi-producer.
unsafe impl Send for Mbuf {}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("port", &self.port())
            .finish()
    }
}

impl Mbuf {
    /// Takes one empty mbuf from `pool`; `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is alive (borrowed); returns an owned, reset mbuf or NULL.
        NonNull::new(unsafe { dpdk_sys::ct_pktmbuf_alloc(pool.as_ptr()) }).map(Mbuf)
    }

    /// An mbuf from `pool` holding a copy of `bytes`.
    pub fn from_slice(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf, DpdkError> {
        let mut m = Mbuf::alloc(pool).ok_or(DpdkError::PoolExhausted)?;
        let room = m.tailroom();
        let dst = m.append(bytes.len()).ok_or(DpdkError::NoRoom {
            len: bytes.len(),
            room,
        })?;
        dst.copy_from_slice(bytes);
        Ok(m)
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a live rte_mbuf; the returned borrow is tied to &self.
        unsafe { self.0.as_ref() }
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: DPDK keeps data_off within the first segment's buffer at buf_addr.
        let start = unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) };
        // SAFETY: DPDK keeps data_off + data_len within that buffer; the bytes are ours (sole
        // owner) and borrowed for as long as &self.
        unsafe { slice::from_raw_parts(start, usize::from(m.data_len)) }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (addr, off, len) = {
            let m = self.raw();
            (m.buf_addr.cast::<u8>(), m.data_off, m.data_len)
        };
        // SAFETY: as in data(): data_off is within the buffer.
        let start = unsafe { addr.add(usize::from(off)) };
        // SAFETY: as in data(); &mut self makes the borrow exclusive, and the buffer is not
        // shared (refcount 1).
        unsafe { slice::from_raw_parts_mut(start, usize::from(len)) }
    }

    /// Length of the first segment (the whole packet: see the module docs).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// True if the packet has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet, all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// True if the packet is in one segment, so [`Mbuf::data`] is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// The port the packet came in on (set by rx_burst).
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Sets the input-port field (for packets made by software).
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: we own the mbuf exclusively (&mut self).
        unsafe { dpdk_sys::ct_mbuf_set_port(self.0.as_ptr(), port) }
    }

    /// The RSS hash the NIC computed, if it did (`RTE_MBUF_F_RX_RSS_HASH`).
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let mut hash = 0u32;
        // SAFETY: reads fields of our live mbuf; writes only the local `hash`.
        unsafe { dpdk_sys::ct_mbuf_rss_hash(self.0.as_ptr(), &mut hash) }.then_some(hash)
    }

    /// Free bytes in front of the packet.
    pub fn headroom(&self) -> usize {
        // SAFETY: reads fields of our live mbuf.
        usize::from(unsafe { dpdk_sys::ct_pktmbuf_headroom(self.0.as_ptr()) })
    }

    /// Free bytes after the packet (in its last segment).
    pub fn tailroom(&self) -> usize {
        // SAFETY: reads fields of our live mbuf.
        usize::from(unsafe { dpdk_sys::ct_pktmbuf_tailroom(self.0.as_ptr()) })
    }

    /// Grows the packet by `n` bytes at the end and returns them (uninitialised contents are
    /// whatever the buffer held: overwrite them); `None` if there is not enough tailroom.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: we own the mbuf exclusively; DPDK checks the tailroom and returns NULL
        // without changing anything if it is short.
        let p = unsafe { dpdk_sys::ct_pktmbuf_append(self.0.as_ptr(), n16) };
        // SAFETY: on success p points to n bytes inside our buffer, borrowed with &mut self.
        (!p.is_null()).then(|| unsafe { slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Grows the packet by `n` bytes at the front (into the headroom) and returns them;
    /// `None` if there is not enough headroom.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: as in append(), with the headroom.
        let p = unsafe { dpdk_sys::ct_pktmbuf_prepend(self.0.as_ptr(), n16) };
        // SAFETY: as in append().
        (!p.is_null()).then(|| unsafe { slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the front (`rte_pktmbuf_adj`); false, and nothing changed, if
    /// the first segment is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: we own the mbuf exclusively; DPDK checks the length.
        !unsafe { dpdk_sys::ct_pktmbuf_adj(self.0.as_ptr(), n16) }.is_null()
    }

    /// Removes `n` bytes from the end (`rte_pktmbuf_trim`); false, and nothing changed, if the
    /// last segment is shorter.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: we own the mbuf exclusively; DPDK checks the length.
        unsafe { dpdk_sys::ct_pktmbuf_trim(self.0.as_ptr(), n16) == 0 }
    }

    /// Prefetches the packet's first cache line (`rte_prefetch0`), ahead of parsing it.
    #[inline]
    pub fn prefetch(&self) {
        let p = self.data().as_ptr();
        // SAFETY: a prefetch is a hint; the address is inside our buffer anyway.
        unsafe { dpdk_sys::ct_prefetch0(p.cast()) }
    }

    /// Gives up ownership: the caller must free the mbuf or hand it to DPDK.
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a live mbuf that nobody else owns or uses (for example one returned by
    /// [`Mbuf::into_raw`]), with a reference count of 1, from a pool that is still alive.
    pub unsafe fn from_raw(ptr: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    /// The raw pointer, still owned by `self`.
    pub fn as_ptr(&self) -> *const rte_mbuf {
        self.0.as_ptr()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nothing refers to it.
        unsafe { dpdk_sys::ct_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// The worker loop's view of an mbuf: its first (only, see the module docs) segment.
impl Packet for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        Mbuf::rss_hash(self)
    }
    #[inline]
    fn grow_front(&mut self, n: usize) -> bool {
        self.prepend(n).is_some()
    }
    fn shrink_front(&mut self, n: usize) -> bool {
        self.adj(n)
    }
}
