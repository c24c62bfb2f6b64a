//! The control plane: the participating stack, authentication, policy, the splice procedure,
//! neighbours, management and statistics. Runs on the EAL main lcore.
#![deny(unsafe_code)]
pub mod local;
