//! The fast path: poll-mode workers that own sharded flow tables, inspect every packet
//! statefully and rewrite spliced flows by their deltas.
#![deny(unsafe_code)]

pub mod context;
pub mod dpdk;
pub mod dpdk_port;
pub mod flow_table;
pub mod live;
pub mod packet;
pub mod port;
pub mod rate;
pub mod ring;
pub mod route;
pub mod testing;
pub mod track;
pub mod verdict;
pub mod worker;
