//! Everything the data plane and the control plane must agree on, with no DPDK and no threads:
//! typed views over packet bytes, checksums, sequence arithmetic, flow keys and their symmetric
//! hash, the connection object and its rewrite, and the configuration schema. No `unsafe`
//! (the workspace's lints deny it).

pub mod checksum;
pub mod config;
pub mod conn;
pub mod flow;
pub mod rewrite;
pub mod seq;
pub mod wire;
