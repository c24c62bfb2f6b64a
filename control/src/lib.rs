//! The control plane: the participating stack, authentication, policy, the splice procedure,
//! neighbours, management and statistics. Runs on the EAL main lcore. No `unsafe` (the
//! workspace's lints deny it).
//!
//! Without the `dpdk` feature everything but `run` (which brings the box up on DPDK ports)
//! is built: the simulation drives the rest.
pub mod auth;
pub mod client;
pub mod dropcap;
pub mod eal_args;
pub mod local;
pub mod ops;
pub mod plane;
pub mod proxy;
pub mod report;
#[cfg(feature = "dpdk")]
pub mod run;
pub mod settings;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod verifier;
