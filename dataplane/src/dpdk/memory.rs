//! The workers' tables in DPDK's memory: hugepages when the EAL has them, so a lookup at
//! random in a table of millions of flows does not also pay a page walk per 4 KiB page (with
//! `--no-huge` the EAL's heap is ordinary memory and this changes nothing but the allocator).
//!
//! An allocation holds an [`Eal`] handle: the EAL is not cleaned up while a table lives.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Mutex, Weak};

use super::eal::{Eal, EalInner};

/// Types for which all-zero bytes are a valid value, and that value is their `Default`: what
/// a table's fresh memory (`rte_zmalloc`) holds is then a table of free slots.
///
/// # Safety
/// Every field must be an integer, an array of them, or a `#[repr(u8)]`-like enum whose
/// zero is a variant, recursively; no references, no `NonZero`, no padding-dependent
/// invariants; and `Default::default()` must be all zero bytes.
pub unsafe trait Zeroed: Copy + Default {}

// SAFETY: an integer.
unsafe impl Zeroed for u8 {}
// SAFETY: integers (addresses, ports, deltas, offsets, the tracker's sequence numbers), u8
// flags and `TcpState`, a `repr(u8)` enum whose 0 is `Free`, the Default of a free slot.
unsafe impl Zeroed for common::conn::Conn {}
// SAFETY: a `FlowKey` (integers), a u32 stamp and `DatagramState`, a `repr(u8)` enum whose 0
// is `Free`; Default is the free slot.
unsafe impl Zeroed for crate::datagram::Datagram {}

/// The EAL while it is up: allocations take a handle from here.
static CURRENT: Mutex<Option<Weak<EalInner>>> = Mutex::new(None);

/// Records `eal` as the one tables are allocated from (called by [`Eal::init`]).
pub(super) fn register(eal: &Eal) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(eal.downgrade());
    }
}

/// `len` values, zeroed, in DPDK's memory, cache-line aligned.
pub struct HugeSlice<T: Zeroed> {
    ptr: NonNull<T>,
    len: usize,
    _eal: Eal,
}

// SAFETY: the slice owns its memory exclusively, like a Box<[T]>; DPDK's heap may be freed
// from any thread.
unsafe impl<T: Zeroed + Send> Send for HugeSlice<T> {}

impl<T: Zeroed> HugeSlice<T> {
    /// `None` when the EAL is not up (tests, the simulation) or its memory is exhausted: the
    /// caller then uses the ordinary heap.
    pub fn zeroed(len: usize) -> Option<HugeSlice<T>> {
        let eal = CURRENT
            .lock()
            .ok()?
            .as_ref()?
            .upgrade()
            .map(Eal::from_inner)?;
        let bytes = len.checked_mul(core::mem::size_of::<T>())?.max(1);
        let align = core::mem::align_of::<T>().max(64) as u32;
        // SAFETY: the EAL is initialised (we hold a handle); the name is a NUL-terminated
        // literal; any size and a power-of-two alignment are valid arguments.
        let p = unsafe {
            dpdk_sys::rte_zmalloc_socket(
                c"ct_table".as_ptr(),
                bytes,
                align,
                dpdk_sys::SOCKET_ID_ANY,
            )
        };
        Some(HugeSlice {
            ptr: NonNull::new(p.cast::<T>())?,
            len,
            _eal: eal,
        })
    }
}

impl<T: Zeroed> Deref for HugeSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` zeroed, aligned values of T (all-zero is a valid T by
        // `Zeroed`), owned by us until Drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroed> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroed> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        // SAFETY: allocated by rte_zmalloc_socket, freed once; the EAL is still up (we hold
        // a handle).
        unsafe { dpdk_sys::rte_free(self.ptr.as_ptr().cast()) };
    }
}

impl<T: Zeroed> std::fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HugeSlice({} x {} bytes)",
            self.len,
            core::mem::size_of::<T>()
        )
    }
}
