//! Hints to the CPU that change no result, only when memory arrives: the prefetch the worker
//! issues for a burst's flow-table lines (DPDK's `rte_prefetch0`).
//!
//! This is not DPDK, so it is here and not in `crate::dpdk`: the worker and the flow-table
//! benchmark prefetch in a build without DPDK too (the simulation runs the same worker). Std
//! has no safe prefetch on stable Rust (`core::intrinsics::prefetch_read_data` is unstable, and
//! `core::arch`'s `_mm_prefetch` takes a raw pointer, so it stays `unsafe` to call), and a plain
//! read instead of a prefetch would stall the loop on the miss the prefetch is there to hide.
//! So this module, like `crate::dpdk`, allows `unsafe` for itself, under the same rules: one
//! unsafe operation per block, each with a `// SAFETY:` line, behind a safe function.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::multiple_unsafe_ops_per_block)]

/// Asks the CPU to bring the cache line holding `r` into every cache level (`prefetcht0`,
/// DPDK's `rte_prefetch0`) ahead of use: the worker calls it for the flow-table lines of a
/// whole burst before touching any of them, so the misses overlap. A no-op on targets other
/// than x86_64.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, reads nothing into the program and
    // writes nothing; the address comes from a live reference in any case.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// [`prefetch`] for every cache line `r` spans: its first and its last byte's (the same line
/// for an object that fits in one; the flow table's 48-byte slots straddle two half the
/// time).
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    prefetch(r);
    let last = (r as *const T)
        .cast::<u8>()
        .wrapping_add(core::mem::size_of::<T>().saturating_sub(1));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `prefetch`; the address is the last byte of the live object `r`.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(last.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = last;
}

#[cfg(test)]
mod tests {
    use super::{prefetch, prefetch_all};

    #[test]
    fn prefetch_changes_nothing() {
        let v = [7u64; 16];
        prefetch(&v);
        prefetch(&v[15]);
        prefetch_all(&v);
        prefetch_all(&());
        assert_eq!(v, [7u64; 16]);
    }
}
