//! What control's unit tests share: the testbed configuration and a client's frames toward
//! the server through the box (the addresses are `dataplane::testing`'s).

use common::config::Config;
use dataplane::testing::{Envelope, BOX_IN, CLIENT, CLIENT_MAC, SERVER};

/// `config/testbed.yaml`, the configuration the testbed's addresses come from.
pub const TESTBED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/testbed.yaml");

pub fn testbed_config() -> Config {
    common::config::load(std::path::Path::new(TESTBED)).unwrap()
}

/// A client's frame toward the server, as it reaches the box's inside port.
pub const CLIENT_TO_SERVER: Envelope = Envelope {
    src_mac: CLIENT_MAC,
    dst_mac: BOX_IN,
    src: CLIENT,
    dst: SERVER,
    ttl: 64,
};
