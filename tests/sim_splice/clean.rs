//! Clean network: each rule once, megabytes each way.

use super::*;

#[test]
fn none_splices_after_the_handshakes() {
    spliced(Kind::None, 1, Faults::NONE, 2 * MIB);
}

#[test]
fn line_splices_after_authentication() {
    spliced(Kind::Line, 2, Faults::NONE, 2 * MIB);
}

#[test]
fn http_basic_splices_after_the_request() {
    spliced(Kind::Http, 3, Faults::NONE, 2 * MIB);
}

/// 9001 (`splice: never`): the box relays everything itself; `full_proxy` is counted at the
/// close, nothing is spliced and not one segment takes the fast path.
#[test]
fn never_relays_everything_as_a_full_proxy() {
    full_proxy(4, Faults::NONE, 2 * MIB);
}
