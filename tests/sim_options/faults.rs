//! Under faults.

use super::checks::matrix;
use super::*;

/// The seed bases of the tests under faults.
pub(crate) const FAULT_SEEDS: [u64; 3] = [1000, 2000, 3000];

pub(crate) fn under_hostile_faults(c: Case) -> Case {
    Case {
        faults: Faults::HOSTILE,
        bulk: FAULTY_BULK,
        ..c
    }
}

/// Defaults, timestamps off on either side, and the server at MSS 1220 (what needs no
/// split), × every rule under [`Faults::HOSTILE`], with `seed_base`.
fn under_faults(seed_base: u64) {
    let settings = [
        (Setting::Defaults, Peer::Client),
        (Setting::NoTimestamps, Peer::Client),
        (Setting::NoTimestamps, Peer::Server),
        (Setting::Mss(1220), Peer::Server),
    ];
    let cases: Vec<Case> = cases(&settings, seed_base)
        .into_iter()
        .filter(|c| !c.needs_split())
        .map(under_hostile_faults)
        .collect();
    matrix(&format!("under faults, seeds from {seed_base}"), &cases);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_1000() {
    under_faults(FAULT_SEEDS[0]);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_2000() {
    under_faults(FAULT_SEEDS[1]);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_3000() {
    under_faults(FAULT_SEEDS[2]);
}
