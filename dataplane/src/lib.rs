//! The fast path: poll-mode workers that own sharded flow tables, inspect every packet
//! statefully and rewrite spliced flows by their deltas.
//!
//! `unsafe` is denied (the workspace's lints) everywhere but in two modules that allow it for
//! themselves, each `unsafe` block with a `// SAFETY:` line and one unsafe operation:
//! `dpdk`, the one boundary to DPDK's C API, and [`hint`], the CPU's prefetch instruction
//! (the worker's, with or without DPDK).
//!
//! The `dpdk` feature (on by default) builds `dpdk` and `dpdk_port` over `dpdk-sys`;
//! without it the worker runs on the in-memory ports of [`port`] only (the simulation's), and
//! nothing needs libdpdk.

pub mod context;
pub mod contract;
pub mod datagram;
#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod dpdk_port;
pub mod flow_table;
pub mod hint;
pub mod iface;
pub mod live;
pub mod packet;
pub mod port;
pub mod rate;
pub mod route;
pub mod steer;
pub mod tel_value;
pub mod testing;
pub mod track;
pub mod verdict;
pub mod worker;
