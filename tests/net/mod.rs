//! The shared harness of the end-to-end tests on the namespace testbed (DESIGN.md §7.3, §9).
//!
//! Include it from a test file with `mod net;`. Every network test starts with
//!
//! ```ignore
//! net::require_root();
//! let _lock = net::lock();
//! let _testbed = net::Testbed::up("af_packet");
//! let the_box = net::BoxProcess::start("af_packet");
//! ```
//!
//! and drops them in the reverse order (the box is killed, then the testbed torn down, then
//! the lock released), on success and on panic alike. [`box_on_testbed`] does all of that
//! (and makes a temp dir) for a test with one box on a port set.
//!
//! Every external command runs with a hard timeout (`timeout -k 2 SECS`, and a Rust-side
//! deadline as a backstop), and every loop here is bounded in count and in time. Commands write
//! their output to files, never to pipes, so a stray grandchild holding a pipe open cannot hang
//! a test. Only the addresses inside the testbed's namespaces (198.18.0.0/15) are used.
//!
//! Its parts: [`process`] (commands with deadlines, background processes, the lock, temp dirs),
//! [`testbed`] (the testbed and the box on it), [`helpers`] (files, stats JSON, servers),
//! [`faults`] (wire faults) and [`streams`] (seeded traffic checked at both ends). Everything is
//! re-exported here, so tests name it `net::X`.
#![allow(dead_code)]

use std::time::Duration;

mod box_cli;
mod faults;
mod helpers;
mod process;
mod streams;
mod testbed;

// Each test binary uses only some of the parts.
#[allow(unused_imports)]
pub use box_cli::*;
#[allow(unused_imports)]
pub use faults::*;
#[allow(unused_imports)]
pub use helpers::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use streams::*;
#[allow(unused_imports)]
pub use testbed::*;

/// The package root: `config/`, `scripts/` are relative to it.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The box.
pub const BIN: &str = env!("CARGO_BIN_EXE_cutthrough");

/// The namespaces and addresses of the testbed contract (DESIGN.md §9).
pub const INSIDE: &str = "ct-inside";
pub const OUTSIDE: &str = "ct-outside";
pub const CLIENT_ADDR: &str = "198.18.0.1";
pub const SERVER_ADDR: &str = "198.19.0.2";
pub const BOX_INSIDE_ADDR: &str = "198.18.0.254";
pub const BOX_OUTSIDE_ADDR: &str = "198.19.0.254";

/// How long the box may take to answer its first ping.
pub const BOX_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the box may take to stop after SIGTERM before it is killed.
pub const BOX_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The traffic helper of the fault and hostile-input tests (`tests/net/traffic.py`: seeded
/// streams both ways with SHA-256 at both ends; see its docstring).
pub const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/traffic.py");
/// The raw-frame helper of the hostile-input tests (`tests/net/frames.py`).
pub const FRAMES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/frames.py");
/// The NFQUEUE fault injector (`scripts/nfq_faults.py`).
pub const NFQ_FAULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nfq_faults.py");
