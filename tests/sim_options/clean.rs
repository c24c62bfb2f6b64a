//! Clean network.

use super::checks::{matrix, matrix_of};
use super::faults::{under_hostile_faults, FAULT_SEEDS};
use super::*;

#[test]
fn peers_with_default_options_are_spliced_under_every_rule() {
    matrix_of("defaults", &[(Setting::Defaults, Peer::Client)], 100);
}

/// The box offers the server timestamps only if the client's leg has them, so neither leg
/// has them here (and `Xlate::TS_SERVER_ONLY` is not reached): nothing toward either side
/// may carry the option.
#[test]
fn a_client_without_timestamps_is_spliced_without_them() {
    matrix_of(
        "client timestamps off",
        &[(Setting::NoTimestamps, Peer::Client)],
        200,
    );
}

/// `Xlate::TS_CLIENT_ONLY`: the client's option is removed on the way to the server, and
/// every segment to the client gets one (the box's clock continuing its leg's TSvals, the
/// client's latest TSval echoed).
#[test]
fn a_server_without_timestamps_loses_them_and_the_client_gets_them_inserted() {
    matrix_of(
        "server timestamps off",
        &[(Setting::NoTimestamps, Peer::Server)],
        300,
    );
}

/// `setting` on the client, then on the server.
fn on_either_side(setting: Setting) -> [(Setting, Peer); 2] {
    [(setting, Peer::Client), (setting, Peer::Server)]
}

#[test]
fn a_small_receive_buffer_on_either_side_is_spliced() {
    let settings = on_either_side(Setting::SmallReceiveBuffer);
    matrix_of("16 KiB receive buffer", &settings, 400);
}

#[test]
fn a_peer_without_window_scaling_on_either_side_is_spliced() {
    let settings = on_either_side(Setting::NoWindowScaling);
    matrix_of("window scaling off", &settings, 500);
}

/// The MSS settings of the matrix.
const MSS_SETTINGS: [u16; 4] = [536, 1220, 1360, 1400];

/// Every MSS of [`MSS_SETTINGS`] on the `on` host, every rule.
fn mss_matrix(name: &str, on: Peer, seed_base: u64) {
    let settings = MSS_SETTINGS.map(|m| (Setting::Mss(m), on));
    matrix_of(name, &settings, seed_base);
}

#[test]
fn a_client_never_gets_more_than_the_mss_it_announced() {
    mss_matrix("client MSS", Peer::Client, 600);
}

/// With `none` the box reaches the server before it answers the client, so the client is
/// told what the server accepts; a server at 1400 accepts more than the 1380 a client
/// answered first (`line`, `http-basic`) is told.
#[test]
fn a_server_never_gets_more_than_the_mss_it_announced() {
    mss_matrix("server MSS", Peer::Server, 700);
}

/// `line` and `http-basic` answer the client before the box reaches the server, telling it
/// `min(its MSS, proxy.client_mss = 1380)`; a server not yet in the cache of servers' options
/// that accepts 536, 1220 or 1360 then needs the client's larger segments split by the fast
/// path (`Conn::split_mss`). On a clean network, then the server at 1220 under faults with
/// the seeds of the tests in `faults`. Every check of the other cases, the MSS toward the server
/// included, and the splice itself (not a fallback).
#[test]
fn a_server_accepting_less_than_the_client_was_told_gets_split_segments() {
    let small = [
        (Setting::Mss(536), Peer::Server),
        (Setting::Mss(1220), Peer::Server),
        (Setting::Mss(1360), Peer::Server),
    ];
    let mut all: Vec<Case> = cases(&small, 700)
        .into_iter()
        .filter(|c| c.needs_split())
        .collect();
    for seed_base in FAULT_SEEDS {
        all.extend(
            cases(&[(Setting::Mss(1220), Peer::Server)], seed_base + 30)
                .into_iter()
                .filter(|c| c.needs_split())
                .map(under_hostile_faults),
        );
    }
    matrix("server MSS below what the client was told", &all);
}
