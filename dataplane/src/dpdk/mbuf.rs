//! Packet buffers: [`Mbuf`] owns one `rte_mbuf` and frees it when dropped; [`MbufBurst`] is a
//! fixed-capacity array of them for `rx_burst` / `tx_burst` (no allocation per burst).
//!
//! # One segment
//! [`Mbuf::data`] and [`Mbuf::data_mut`] see the first segment only. The box never makes
//! multi-segment mbufs: ports are configured without scatter and with an MTU whose frames fit
//! one buffer ([`Port::configure`](super::Port::configure) checks it), and packets built here
//! are copied into one segment. [`Mbuf::is_contiguous`] tells if that ever fails to hold.
//!
//! The hot accessors (`data`, `len`, `port`) read the `rte_mbuf` fields directly, whose layout
//! bindgen took from the headers (and checked at compile time); the rest go through the shim.
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::slice;

use dpdk_sys::rte_mbuf;

use super::{DpdkError, Mempool};

/// Largest [`MbufBurst`] capacity: one worker burst.
pub const MAX_BURST: usize = 64;

/// One packet buffer, owned: freed (back to its pool) when dropped.
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

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
        // SAFETY: DPDK keeps data_off + data_len within the first segment's buffer at
        // buf_addr; the bytes are ours (sole owner) and borrowed for as long as &self.
        unsafe {
            slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (addr, off, len) = {
            let m = self.raw();
            (m.buf_addr.cast::<u8>(), m.data_off, m.data_len)
        };
        // SAFETY: as in data(); &mut self makes the borrow exclusive, and the buffer is not
        // shared (refcount 1).
        unsafe { slice::from_raw_parts_mut(addr.add(usize::from(off)), usize::from(len)) }
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

/// Up to `N` (at most [`MAX_BURST`]) mbufs in a fixed array: what `rx_burst` fills and
/// `tx_burst` drains. Owns its mbufs: dropping the burst frees those left in it.
///
/// Order is kept: `rx_burst` appends, `tx_burst` sends from the front and shifts what was
/// not sent to the front, [`MbufBurst::take`] closes the gap.
pub struct MbufBurst<const N: usize> {
    len: usize,
    // The first `len` slots hold owned Mbufs. MaybeUninit<Mbuf> has the layout of Mbuf, which
    // is that of *mut rte_mbuf (repr(transparent) over NonNull), so the array is also the
    // `struct rte_mbuf **` DPDK reads and writes.
    slots: [MaybeUninit<Mbuf>; N],
}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for MbufBurst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const N: usize> MbufBurst<N> {
    const CHECK: () = assert!(N > 0 && N <= MAX_BURST, "MbufBurst capacity must be 1..=64");

    /// An empty burst.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        MbufBurst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no mbuf is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if no slot is free.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The mbufs held, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first `len` slots are initialised Mbufs.
        unsafe { slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs held, in order, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: the first `len` slots are initialised Mbufs; &mut self is exclusive.
        unsafe { slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Iterates over the mbufs held.
    pub fn iter(&self) -> slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the mbufs held.
    pub fn iter_mut(&mut self) -> slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Adds `m` at the end; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live range, so it is read
        // exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Removes the mbuf at `i`, keeping the order of the others.
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        if i >= self.len {
            return None;
        }
        // SAFETY: i < len, so slot i is initialised; it is moved out and the gap is closed
        // right after, so no slot is read twice.
        let m = unsafe { self.slots[i].assume_init_read() };
        self.shift_to(i + 1, i);
        Some(m)
    }

    /// Removes all mbufs, in order, through an iterator; those not taken from it are freed
    /// when it is dropped.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        self.len = 0;
        Drain {
            slots: &mut self.slots,
            next: 0,
            end,
        }
    }

    /// Frees every mbuf held (one bulk call).
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        let n = self.len as u32;
        self.len = 0;
        // SAFETY: the first n slots were owned mbufs; len is already 0, so they are freed
        // exactly once here.
        unsafe { dpdk_sys::ct_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast(), n) }
    }

    /// The free tail of the array, for `rx_burst` to fill: (pointer, room).
    pub(crate) fn spare(&mut self) -> (*mut *mut rte_mbuf, u16) {
        let room = (N - self.len) as u16; // N <= MAX_BURST
        (self.slots[self.len..].as_mut_ptr().cast(), room)
    }

    /// Records that DPDK wrote `n` mbufs into the spare slots.
    ///
    /// # Safety
    /// The first `n` spare slots must now hold owned, non-null mbufs, `n <= room`.
    pub(crate) unsafe fn filled(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// The held mbufs as DPDK's array: (pointer, count).
    pub(crate) fn held(&mut self) -> (*mut *mut rte_mbuf, u16) {
        (self.slots.as_mut_ptr().cast(), self.len as u16)
    }

    /// Forgets the first `n` mbufs (DPDK took them) and moves the rest to the front.
    ///
    /// # Safety
    /// Ownership of the first `n` held mbufs must have passed to DPDK, `n <= len`.
    pub(crate) unsafe fn consumed(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.shift_to(n, 0);
    }

    /// Moves the held slots `from..len` down to start at `to` (`to <= from`), dropping the
    /// `from - to` slots in between from the count: their mbufs must have been moved out.
    fn shift_to(&mut self, from: usize, to: usize) {
        debug_assert!(to <= from && from <= self.len);
        let count = self.len - from;
        let base = self.slots.as_mut_ptr();
        // SAFETY: both ranges lie within the array (from + count == len <= N); ptr::copy
        // allows overlap. Slots are plain pointers, so a bitwise move is a move.
        unsafe { std::ptr::copy(base.add(from), base.add(to), count) };
        self.len -= from - to;
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<'a, const N: usize> IntoIterator for &'a MbufBurst<N> {
    type Item = &'a Mbuf;
    type IntoIter = slice::Iter<'a, Mbuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, const N: usize> IntoIterator for &'a mut MbufBurst<N> {
    type Item = &'a mut Mbuf;
    type IntoIter = slice::IterMut<'a, Mbuf>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Iterator returned by [`MbufBurst::drain`].
pub struct Drain<'a, const N: usize> {
    slots: &'a mut [MaybeUninit<Mbuf>; N],
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots next..end are initialised and owned by the Drain (the burst's len is
        // 0); each is read once because `next` only grows.
        Some(unsafe { self.slots[i].assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<const N: usize> ExactSizeIterator for Drain<'_, N> {}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = &mut self.slots[self.next..self.end];
        if !rest.is_empty() {
            // SAFETY: these slots hold owned mbufs not yet yielded; nothing reads them again.
            unsafe { dpdk_sys::ct_pktmbuf_free_bulk(rest.as_mut_ptr().cast(), rest.len() as u32) }
        }
    }
}
