//! The control plane: the participating stack, authentication, policy, the splice procedure,
//! neighbours, management and statistics. Runs on the EAL main lcore.
#![deny(unsafe_code)]
pub mod auth;
pub mod client;
pub mod dropcap;
pub mod eal_args;
pub mod local;
pub mod ops;
pub mod plane;
pub mod proxy;
pub mod report;
pub mod run;
pub mod stats;
pub mod verifier;
