//! The checks of what the links carried (timestamps, MSS) and of the fast path's edit
//! counters, and the runner of a matrix of cases.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;

use super::connection::{assert_fast_path, finish, splice, start, AtSplice, Run};
use super::*;

/// Up to `max` of `v`, one a line, and how many there were.
fn listing(v: &[String], max: usize) -> String {
    let mut s: String = v.iter().take(max).map(|x| format!("    {x}\n")).collect();
    if v.len() > max {
        let _ = writeln!(s, "    ... and {} more", v.len() - max);
    }
    s
}

/// `a` is at or after `b` in 32-bit serial arithmetic.
fn at_or_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The timestamps every segment toward `peer` carried (see the module docs); returns the
/// violations.
fn timestamp_violations(run: &Run, peer: Peer) -> Vec<String> {
    let (to, from) = peer.hops();
    let negotiated = run.timestamps(peer);
    // Inserted: the box makes the TSval (the other side has none), so the links' reordering
    // upstream cannot move it back.
    let inserted = negotiated && !run.timestamps(peer.other());
    let clean = run.case.faults == Faults::NONE;
    let ordered = clean || inserted;
    let exact_echo = clean || inserted;
    let tap = run.tap.borrow();
    let mut v = Vec::new();
    // The TSvals `peer` sent so far, and the latest.
    let mut sent = HashSet::new();
    let mut latest: Option<u32> = None;
    // The last TSval toward `peer`, and whether the fast path sent it.
    let mut prev: Option<(u32, bool)> = None;
    for s in tap.iter().filter(|s| run.owns(s)) {
        if s.hop == from {
            if let Some((val, _)) = s.info.ts {
                sent.insert(val);
                latest = Some(latest.map_or(val, |l| if at_or_after(val, l) { val } else { l }));
            }
            continue;
        }
        if s.hop != to {
            continue;
        }
        let Some((val, ecr)) = s.info.ts else {
            if negotiated && !s.rst() {
                v.push(format!("no timestamp option: {s}"));
            }
            continue;
        };
        if !negotiated {
            // The box's SYN to the server may offer them; nothing after it may carry them.
            let offer = s.syn() && !s.info.flags.contains('.');
            if !offer {
                v.push(format!("a timestamp option it did not negotiate: {s}"));
            }
            continue;
        }
        if ordered {
            if let Some((p, p_fwd)) = prev {
                if !at_or_after(val, p) {
                    let from = if p_fwd {
                        "the fast path"
                    } else {
                        "the box's leg"
                    };
                    v.push(format!(
                        "TSval {val} below the previous {p} (sent by {from}): {s}"
                    ));
                }
            }
        }
        if s.forwarded() && !s.syn() {
            let ok = if exact_echo {
                sent.contains(&ecr)
            } else {
                latest.is_some_and(|l| at_or_after(l, ecr))
            };
            if !ok {
                v.push(format!(
                    "TSecr {ecr} is not a TSval the {} sent (latest {latest:?}): {s}",
                    peer.name()
                ));
            }
        }
        prev = Some((val, s.forwarded()));
    }
    v
}

/// Segments toward `peer` larger than the MSS it announced.
fn mss_violations(run: &Run, peer: Peer) -> Vec<String> {
    let (to, _) = peer.hops();
    let mss = usize::from(run.mss_of(peer));
    run.tap
        .borrow()
        .iter()
        .filter(|s| s.hop == to && run.owns(s) && s.info.len + s.opts_len > mss)
        .map(|s| {
            format!(
                "{} bytes of data and options, the {} accepts {mss}: {s}",
                s.info.len + s.opts_len,
                peer.name()
            )
        })
        .collect()
}

/// Segments the fast path forwarded toward the client and toward the server.
fn forwarded_toward(run: &Run) -> [usize; 2] {
    let tap = run.tap.borrow();
    [Peer::Client, Peer::Server].map(|p| {
        let to = p.hops().0;
        tap.iter()
            .filter(|s| s.hop == to && s.forwarded() && run.owns(s))
            .count()
    })
}

/// The fast path's own counters for option edits and splits, all workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EditCounters {
    pub(crate) ts_inserted: u64,
    pub(crate) ts_removed: u64,
    pub(crate) ts_insert_failed: u64,
    pub(crate) segments_split: u64,
    pub(crate) split_pieces: u64,
    pub(crate) split_failed: u64,
}

impl EditCounters {
    /// What moved since `before`.
    fn since(&self, before: &EditCounters) -> EditCounters {
        EditCounters {
            ts_inserted: self.ts_inserted - before.ts_inserted,
            ts_removed: self.ts_removed - before.ts_removed,
            ts_insert_failed: self.ts_insert_failed - before.ts_insert_failed,
            segments_split: self.segments_split - before.segments_split,
            split_pieces: self.split_pieces - before.split_pieces,
            split_failed: self.split_failed - before.split_failed,
        }
    }
}

pub(crate) fn edit_counters(sim: &Sim) -> EditCounters {
    let mut e = EditCounters::default();
    for w in sim.workers() {
        let c = &w.counters;
        e.ts_inserted += c.ts_inserted;
        e.ts_removed += c.ts_removed;
        e.ts_insert_failed += c.ts_insert_failed;
        e.segments_split += c.segments_split;
        e.split_pieces += c.split_pieces;
        e.split_failed += c.split_failed;
    }
    e
}

/// The wire checks (timestamps both ways, MSS both ways) and the edit counters (what moved
/// since the connection was opened).
pub(crate) fn assert_wire(run: &Run, at: &AtSplice) -> EditCounters {
    let what = run.what();
    let mut failures = String::new();
    for peer in [Peer::Client, Peer::Server] {
        let ts = timestamp_violations(run, peer);
        if !ts.is_empty() {
            let _ = write!(
                failures,
                "  timestamps toward the {} ({} segments):\n{}",
                peer.name(),
                ts.len(),
                listing(&ts, 5)
            );
        }
        let mss = mss_violations(run, peer);
        if !mss.is_empty() {
            let _ = write!(
                failures,
                "  MSS toward the {} ({} segments; it announced {}, the box told the {} {}):\n{}",
                peer.name(),
                mss.len(),
                run.mss_of(peer),
                peer.other().name(),
                run.box_mss_to(peer.other()),
                listing(&mss, 5)
            );
        }
    }
    // The fast path carried the bulk both ways (and the TTL tells its segments from the
    // legs': the checks above depend on it).
    let forwarded = forwarded_toward(run);
    if forwarded.contains(&0) {
        let _ = writeln!(
            failures,
            "  segments with the fast path's TTL toward (client, server): {forwarded:?}"
        );
    }
    let e = edit_counters(&run.sim).since(&run.edits_before);
    let one_leg = at.conn.xlate() != 0;
    let split = at.conn.split_mss() != 0;
    let counted = one_leg == (e.ts_inserted > 0)
        && one_leg == (e.ts_removed > 0)
        && e.ts_insert_failed == 0
        && (split || e.segments_split == 0)
        && e.split_failed == 0;
    if !counted {
        let _ = writeln!(
            failures,
            "  counters {e:?} for xlate {:#x}, split_mss {}",
            at.conn.xlate(),
            at.conn.split_mss()
        );
    }
    assert!(
        failures.is_empty(),
        "{what}: on the wire:\n{failures}object {:?}",
        at.conn
    );
    e
}

/// One connection of the matrix with every check; a line for the table.
fn spliced(case: Case) -> String {
    let mut run = start(case);
    let at = splice(&mut run);
    finish(&mut run);
    assert_fast_path(&run, &at);
    let e = assert_wire(&run, &at);
    if case.faults != Faults::NONE {
        run.sim.assert_hostile(&run.what());
    }
    let mut s = format!(
        "MSS c {}→{} s {}→{}",
        run.mss_of(Peer::Client),
        run.box_mss_to(Peer::Client),
        run.mss_of(Peer::Server),
        run.box_mss_to(Peer::Server)
    );
    let [to_client, to_server] = forwarded_toward(&run);
    let _ = write!(s, ", fast path →c {to_client} →s {to_server}");
    let ts = |p| if run.timestamps(p) { "ts" } else { "-" };
    let _ = write!(
        s,
        ", legs {}/{}, shifts {:?}/{:?}",
        ts(Peer::Client),
        ts(Peer::Server),
        at.conn.wscale_in(),
        at.conn.wscale_out()
    );
    if e.ts_inserted + e.ts_removed > 0 {
        let _ = write!(
            s,
            ", ts inserted {} removed {}",
            e.ts_inserted, e.ts_removed
        );
    }
    if at.conn.split_mss() != 0 {
        let _ = write!(
            s,
            ", split at {}: {} segments into {} pieces",
            u16::from(at.conn.split_mss()) * 8,
            e.segments_split,
            e.split_pieces
        );
    }
    let _ = write!(s, "; {} ms virtual", run.sim.now - sim::START_MS);
    s
}

/// Runs every case (each in its own simulation), prints the table, and fails listing every
/// failing case.
pub(crate) fn matrix(title: &str, cases: &[Case]) {
    let mut table = String::new();
    let mut failed = Vec::new();
    for &case in cases {
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| spliced(case)));
        match r {
            Ok(line) => {
                let _ = writeln!(table, "  ok    {:<52} {line}", case.label());
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let first = msg.lines().next().unwrap_or("").to_string();
                let _ = writeln!(table, "  FAIL  {:<52} {first}", case.label());
                failed.push(msg);
            }
        }
    }
    eprintln!("{title}: {} cases\n{table}", cases.len());
    assert!(
        failed.is_empty(),
        "{title}: {} of {} cases failed:\n\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
}

/// The cases of `settings` × every rule that do not need segments split.
pub(crate) fn matrix_of(title: &str, settings: &[(Setting, Peer)], seed_base: u64) {
    let cases: Vec<Case> = cases(settings, seed_base)
        .into_iter()
        .filter(|c| !c.needs_split())
        .collect();
    matrix(title, &cases);
}
