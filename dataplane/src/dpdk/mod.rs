//! The project's one unsafe boundary: safe types over the DPDK C API (`dpdk-sys`).
//!
//! Nothing outside this module may contain `unsafe` (but the CPU's prefetch, `crate::hint`,
//! which is not DPDK and exists in builds without it); everything here is a thin, checked
//! wrapper whose every `unsafe` block says, in a `// SAFETY:` line, why it is sound.
//!
//! # Ownership and lifetimes
//! - [`Eal`] is a cloneable handle on the initialised environment. `rte_eal_init` runs once per
//!   process ([`Eal::init`] fails the second time); `rte_eal_cleanup` runs when the last handle
//!   is dropped, on the main lcore, after every worker lcore has returned. [`Mempool`] and
//!   [`Port`] hold a handle, so the EAL outlives them.
//! - [`Mempool`] is a cloneable handle. The pool is freed when the last handle goes, and only
//!   if every mbuf is back in it; otherwise it (and the EAL) is deliberately leaked, so an
//!   [`Mbuf`] can never point into freed memory.
//! - [`Mbuf`] owns one packet buffer and frees it in `Drop`. Bursts are the worker loop's
//!   [`Burst<Mbuf, N>`](crate::packet::Burst) (a fixed array, no allocation per burst), whose
//!   slots DPDK fills and empties in place; what `tx_burst` did not send stays in the burst.
//! - [`Port`] is one ethdev, opened once per process. Configuration and start/stop need
//!   `&mut Port` and no outstanding queue handles. Once it is started, workers take an
//!   [`RxQueue`] / [`TxQueue`] handle each (sendable to their lcore, one owner per queue, as
//!   DPDK requires). Dropping the last of the port and its handles stops and closes the device.
//!
//! # Drivers
//! Poll-mode drivers are not linked in: DPDK's shared build loads every driver in its driver
//! directory (`/usr/lib/<triplet>/dpdk/pmds-<ABI>`) during `rte_eal_init`, so `--vdev=net_ring0`,
//! `net_null`, `net_af_packet`, `net_af_xdp`, `net_tap`, `net_pcap` work in any binary linked
//! through pkg-config `libdpdk` (the smoke test checks ring, null, af_packet and tap).
//!
//! # Telemetry and capture
//! [`telemetry::register`] adds commands to the EAL's telemetry socket, served by Rust
//! closures on DPDK's telemetry threads (they must read snapshots, never lcore state).
//! [`Pdump`] runs the primary's side of the pdump framework for `dpdk-dumpcap`.
//!
//! # Threads
//! [`Eal::launch_on_lcore`] and [`Eal::wait_all`] are for the main lcore, i.e. the thread that
//! called [`Eal::init`]. Mempools are multi-producer/multi-consumer and may be used from any
//! thread; queue handles are `Send` but not `Sync`.
//!
//! # What may panic
//! Only programmer errors: [`Port::rx_burst`] / [`Port::tx_burst`] on a queue that is not
//! configured or is held by a handle. A panic must never unwind into C: where panics unwind
//! (the test and dev profiles), one inside a closure launched on a worker lcore or inside a
//! telemetry callback is caught at the FFI boundary and turned into the return value -1; the
//! release profile aborts on panic (`panic = "abort"`), so there a panic ends the process
//! before it can reach C.
//!
//! # Lints
//! The workspace denies `unsafe_code`; this module allows it for itself (as `crate::hint` does
//! for the prefetch, and `dpdk-sys` for its generated bindings) and denies, here as well as in
//! the workspace, an `unsafe` block without a `// SAFETY:` line or with more than one unsafe
//! operation, so each justification covers exactly one call.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::multiple_unsafe_ops_per_block)]
#![deny(unsafe_op_in_unsafe_fn)]

mod capture;
mod eal;
mod mbuf;
mod memory;
mod mempool;
mod port;
mod queue;
pub mod telemetry;

use std::ffi::CStr;

pub use capture::Pdump;
pub use eal::{lcore_id, tsc, tsc_hz, Eal, WorkerLcores};
pub use mbuf::Mbuf;
pub use memory::{HugeSlice, Zeroed};
pub use mempool::Mempool;
pub use port::{Configured, Link, Port, PortInfo, PortStats, SYMMETRIC_RSS_KEY};
pub use queue::{RxQueue, TxQueue};

/// Everything that can go wrong at the DPDK boundary. Each variant names the operation and
/// what it was applied to; DPDK's own error text (`rte_strerror`) is carried along.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// `Eal::init` was called a second time in this process (DPDK allows one call, even after
    /// a failed one).
    #[error("rte_eal_init: already called in this process (DPDK allows one call per process)")]
    AlreadyInitialised,
    /// An EAL argument could not be passed to C.
    #[error("rte_eal_init: argument {arg:?} contains a NUL byte")]
    BadArgument { arg: String },
    /// A DPDK call failed with an errno.
    #[error("{op} on {target}: {text} (errno {errno})")]
    Call {
        op: &'static str,
        target: String,
        errno: i32,
        text: String,
    },
    /// `Port::by_name` found no such device.
    #[error(
        "no DPDK port named {name:?}: {text} (errno {errno}); \
         virtual devices must be given to the EAL as --vdev={name}"
    )]
    NoSuchPort {
        name: String,
        errno: i32,
        text: String,
    },
    /// The port is already open, or its queues are held by handles while it is reconfigured.
    #[error("port {port}: {why}")]
    PortBusy { port: String, why: &'static str },
    /// A request that cannot be satisfied with this port, pool or configuration.
    #[error("{target}: {why}")]
    InvalidConfig { target: String, why: String },
    /// An lcore operation called from the wrong thread or on the wrong lcore.
    #[error("{op} on lcore {lcore}: {why}")]
    Lcore {
        op: &'static str,
        lcore: u32,
        why: &'static str,
    },
    /// The mempool has no free mbuf.
    #[error("mempool exhausted: no free mbuf")]
    PoolExhausted,
    /// Bytes that do not fit one mbuf segment.
    #[error("{len} bytes do not fit one mbuf segment ({room} bytes of room)")]
    NoRoom { len: usize, room: usize },
}

impl DpdkError {
    /// A failed call, with `errno` as a positive number (DPDK returns `-errno` or sets
    /// `rte_errno`; both are normalised here).
    pub(crate) fn call(op: &'static str, target: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        DpdkError::Call {
            op,
            target: target.into(),
            errno,
            text: strerror(errno),
        }
    }

    /// The errno of a failed call, if this error carries one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::Call { errno, .. } | DpdkError::NoSuchPort { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// `rte_errno` of the calling thread (DPDK's per-lcore error variable).
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: ct_errno only reads the calling thread's thread-local rte_errno.
    unsafe { dpdk_sys::ct_errno() }
}

/// DPDK's text for an errno (the libc text, or DPDK's own for its codes above 1000).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a NUL-terminated string, either static
    // or in a thread-local buffer, valid until the next call on this thread; we copy it at once.
    let text = unsafe { dpdk_sys::rte_strerror(errno) };
    if text.is_null() {
        return format!("errno {errno}");
    }
    // SAFETY: non-null, NUL-terminated (see above), and not used after this statement.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}
