//! Same seed, same run, whatever else runs in the process: two simulations of one seed, on
//! two threads taking turns step by step (the second started well after the first, so their
//! virtual clocks differ all along), record the same trace of frames.
//!
//! A proxied transfer is the case that needs it: the box's legs stamp their segments with
//! TSvals of their own control plane's clock, the hosts echo them in every segment they send
//! the box (the trace records them), and after the splice the fast path rewrites the
//! timestamps by offsets taken from the legs'. A clock shared by the process would give the
//! later simulation the earlier one's time.

mod sim;

use std::sync::{Arc, Condvar, Mutex};

use sim::{Faults, Sim};

const KIB: usize = 1024;
/// `proxy` with auth `none`, spliced after the handshake (`config/testbed.yaml`).
const PROXY_PORT: u16 = 9000;
const MAX_STEPS: u64 = 200_000;
/// One-way latency of each link.
const LATENCY_MS: u64 = 2;
/// Steps the first simulation takes before the second starts.
const HEAD_START: u64 = 20;

/// Two threads taking turns: `turn` is whose it is, `done` who has finished (the other then
/// runs on alone).
struct Baton {
    state: Mutex<(usize, [bool; 2])>,
    cv: Condvar,
}

impl Baton {
    fn new() -> Baton {
        Baton {
            state: Mutex::new((0, [false; 2])),
            cv: Condvar::new(),
        }
    }

    fn wait_for(&self, me: usize) {
        let mut s = self.state.lock().unwrap();
        while s.0 != me && !s.1[1 - me] {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn pass(&self, me: usize) {
        self.state.lock().unwrap().0 = 1 - me;
        self.cv.notify_all();
        self.wait_for(me);
    }

    fn done(&self, me: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1[me] = true;
        s.0 = 1 - me;
        self.cv.notify_all();
    }
}

/// Marks its thread done however it ends, so a failing simulation never leaves the other
/// waiting for its turn.
struct Finish<'a>(&'a Baton, usize);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.done(self.1);
    }
}

/// A proxied transfer of `seed`, with `after_step(steps)` called after every step; returns
/// every trace entry, in full, and the steps taken.
fn proxied_transfer(seed: u64, mut after_step: impl FnMut(u64)) -> (Vec<String>, u64) {
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    // Latency spreads the transfer over many steps (without, it settles in a handful).
    sim.latency_ms = LATENCY_MS;
    // smoltcp can lose a FIN sent with data in flight (see `tests/sim`).
    sim.close_after_acked = true;
    let t = sim.transfer(PROXY_PORT, 256 * KIB, 256 * KIB);
    while !sim.transfer_done(&t) {
        assert!(
            sim.steps < MAX_STEPS,
            "seed {seed}: stuck\n{}",
            sim.report()
        );
        sim.step();
        after_step(sim.steps);
    }
    sim.check_transfer(&t);
    let c = sim.proxy_connections();
    assert_eq!(
        (c.proxied, c.spliced),
        (1, 1),
        "seed {seed}\n{}",
        sim.report()
    );
    let trace = sim.trace.iter().map(|e| format!("{e:?}")).collect();
    (trace, sim.steps)
}

#[test]
fn interleaved_simulations_of_one_seed_record_the_same_trace() {
    let seed = 17;
    let baton = Arc::new(Baton::new());
    let first = {
        let baton = Arc::clone(&baton);
        std::thread::spawn(move || {
            let _finish = Finish(&baton, 0);
            proxied_transfer(seed, |steps| {
                if steps >= HEAD_START {
                    baton.pass(0);
                }
            })
        })
    };
    let second = {
        let baton = Arc::clone(&baton);
        std::thread::spawn(move || {
            let _finish = Finish(&baton, 1);
            baton.wait_for(1);
            proxied_transfer(seed, |_| baton.pass(1))
        })
    };
    let ((a, steps), (b, _)) = (first.join().unwrap(), second.join().unwrap());
    assert!(
        steps > 2 * HEAD_START,
        "seed {seed}: {steps} steps: the runs hardly overlap"
    );
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!(
            "seed {seed}: the traces part at frame {i} of {}:\n  first:  {}\n  second: {}",
            a.len(),
            a[i],
            b[i]
        );
    }
    assert_eq!(a.len(), b.len(), "seed {seed}: one trace is longer");
}
