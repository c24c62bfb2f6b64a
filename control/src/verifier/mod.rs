//! Where login attempts are verified. One argon2 verification takes ~25 ms: on the control
//! lcore it would stall every other connection's handshakes, drains and splices, so the box
//! verifies on a small pool of threads ([`VerifierPool`]), and a connection waits in the
//! application step until the control loop's tick collects its verdict.
//!
//! Two modes, behind one interface ([`Verifier`]):
//! - **pool** (`control::run`): [`Verifier::submit`] queues the attempt and returns at once;
//!   [`Verifier::collect`] hands back finished verdicts without blocking.
//! - **inline** (the default of `Proxy::new`, so of the simulation and the unit tests):
//!   [`Verifier::submit`] checks at once and returns the verdict. The connection goes through
//!   the same deferred path (credentials out, verdict in) within the same turn, so a
//!   simulation stays deterministic: its packets do not depend on when a thread runs.
//!   Making the simulation wait for a pool instead would tie it to thread scheduling (or to a
//!   wait in every step), for no coverage the pool's own tests and the pool-mode simulation
//!   tests (`tests/sim_splice/verifier.rs`, which wait explicitly with
//!   [`Verifier::wait_ready`]) lack.
//!
//! Each queued attempt carries a ticket; a connection that goes away is [`cancel`]led, and a
//! verdict whose ticket no longer matches (the connection gone, or its quad reused) comes
//! back from [`collect`] marked not live: the caller still owes the client address its
//! failure (the rate limiter must not be dodged by resetting), but there is no one to answer.
//!
//! The threads are not pinned: they inherit the CPU set of the thread that starts them (the
//! EAL main lcore's, under `control::run`), so they share the control lcore's core and never
//! take time from a worker's poll loop; the OS time-slices them with the control loop.
//!
//! [`cancel`]: Verifier::cancel
//! [`collect`]: Verifier::collect

mod pool;

pub use pool::{Against, CheckFn, Full, VerifierPool};

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Credentials, Directory, Verdict};

/// Verifier threads `control::run` starts.
pub const DEFAULT_THREADS: usize = 1;
/// Threads for attempts that ask a directory, when one is configured: a RADIUS exchange
/// mostly waits (up to servers × tries × timeout when the directory is down), so these
/// attempts have threads of their own and a directory outage never delays the local
/// users' logins behind it.
pub const DIRECTORY_THREADS: usize = 4;
/// Attempts pending at most (queued, being verified, or answered and not yet collected): at
/// ~25 ms each on one thread, the last one waits under two seconds.
pub const DEFAULT_CAPACITY: usize = 64;

/// The real check: one argon2 verification against the users, or the RADIUS directory, as
/// the rule's backend says.
pub fn directory_check() -> CheckFn {
    Arc::new(|dir: &Directory, backend, name: &[u8], password: &[u8]| {
        dir.check(backend, name, password)
    })
}

/// What [`Verifier::submit`] did with an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Checked at once (inline mode).
    Done(Verdict),
    /// Queued: the verdict comes from [`Verifier::collect`].
    Queued,
    /// Refused unverified: too many attempts pending (counted in `queue_full`).
    Full,
}

/// A verdict from the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected<K> {
    pub key: K,
    pub verdict: Verdict,
    /// The attempt's connection still waits for it (not cancelled, not superseded).
    pub live: bool,
}

/// Counters of the verifications (the `auth_*` keys of `connections` in the statistics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VerifierCounters {
    /// Verifications done (inline, or collected from the pool).
    pub verified: u64,
    /// Attempts refused unverified because `capacity` were pending.
    pub queue_full: u64,
    /// Verdicts whose connection had gone.
    pub discarded: u64,
}

enum Mode<K> {
    Inline(CheckFn),
    Pool {
        local: VerifierPool<(K, u64)>,
        /// For backends that ask a directory (none: they share `local`).
        directory: Option<VerifierPool<(K, u64)>>,
    },
}

/// Verifies login attempts for connections identified by `K`, inline or on threads.
pub struct Verifier<K> {
    mode: Mode<K>,
    /// Connections waiting for a verdict, with the ticket of their attempt.
    waiting: HashMap<K, u64>,
    next_ticket: u64,
    pub counters: VerifierCounters,
}

impl<K: Copy + Eq + Hash + Send + 'static> Verifier<K> {
    /// Verifies in `submit`, on the caller's thread.
    pub fn inline(check: CheckFn) -> Self {
        Verifier::with_mode(Mode::Inline(check))
    }

    /// Verifies on `threads` threads, at most `capacity` attempts pending, and attempts that
    /// ask a directory on `directory_threads` threads of their own (0: on the same ones).
    pub fn pool(
        threads: usize,
        directory_threads: usize,
        capacity: usize,
        check: CheckFn,
    ) -> std::io::Result<Self> {
        let local = VerifierPool::start(threads, capacity, Arc::clone(&check))?;
        let directory = match directory_threads {
            0 => None,
            n => Some(VerifierPool::start(n, capacity, check)?),
        };
        Ok(Verifier::with_mode(Mode::Pool { local, directory }))
    }

    fn with_mode(mode: Mode<K>) -> Self {
        Verifier {
            mode,
            waiting: HashMap::new(),
            next_ticket: 0,
            counters: VerifierCounters::default(),
        }
    }

    /// Verifier threads (0: inline).
    pub fn threads(&self) -> usize {
        match &self.mode {
            Mode::Inline(_) => 0,
            Mode::Pool { local, directory } => {
                local.threads() + directory.as_ref().map_or(0, |d| d.threads())
            }
        }
    }

    /// An attempt of connection `key`. Never blocks on a verification in pool mode; a
    /// connection has one attempt pending at most (a second replaces the first).
    pub fn submit(&mut self, key: K, against: &Against, credentials: Credentials) -> Submitted {
        match &mut self.mode {
            Mode::Inline(check) => {
                self.counters.verified += 1;
                let (name, password) = (&credentials.name, &credentials.password);
                Submitted::Done(check(&against.dir, against.backend, name, password))
            }
            Mode::Pool { local, directory } => {
                let pool = match directory {
                    Some(d) if against.backend.uses_radius() => d,
                    _ => local,
                };
                let ticket = self.next_ticket;
                match pool.submit((key, ticket), against.clone(), credentials) {
                    Ok(()) => {
                        self.next_ticket += 1;
                        self.waiting.insert(key, ticket);
                        Submitted::Queued
                    }
                    Err(Full) => {
                        self.counters.queue_full += 1;
                        Submitted::Full
                    }
                }
            }
        }
    }

    /// Connection `key` is gone: its verdict, when it comes, is not live.
    pub fn cancel(&mut self, key: &K) {
        self.waiting.remove(key);
    }

    /// Whether connection `key` waits for a verdict.
    pub fn is_waiting(&self, key: &K) -> bool {
        self.waiting.contains_key(key)
    }

    /// A finished verdict, if one is ready; never blocks.
    pub fn collect(&mut self) -> Option<Collected<K>> {
        let Mode::Pool { local, directory } = &mut self.mode else {
            return None;
        };
        let ((key, ticket), verdict) = local
            .try_collect()
            .or_else(|| directory.as_mut()?.try_collect())?;
        self.counters.verified += 1;
        let live = self.waiting.get(&key) == Some(&ticket);
        if live {
            self.waiting.remove(&key);
        } else {
            self.counters.discarded += 1;
        }
        Some(Collected { key, verdict, live })
    }

    /// Attempts submitted and not collected (a gauge).
    pub fn pending(&self) -> usize {
        match &self.mode {
            Mode::Inline(_) => 0,
            Mode::Pool { local, directory } => {
                local.pending() + directory.as_ref().map_or(0, |d| d.pending())
            }
        }
    }

    /// Waits until every pending verdict is ready to collect, at most `timeout` (tests).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        match &self.mode {
            Mode::Inline(_) => true,
            Mode::Pool { local, directory } => {
                local.wait_ready(timeout)
                    && directory.as_ref().is_none_or(|d| d.wait_ready(timeout))
            }
        }
    }

    /// Stops and joins the threads (pool mode); pending verdicts are lost.
    pub fn shutdown(&mut self) {
        if let Mode::Pool { local, directory } = &mut self.mode {
            local.shutdown();
            if let Some(d) = directory {
                d.shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use crossbeam::channel;

    fn users() -> Against {
        Against {
            dir: Directory::local(&[]),
            backend: common::config::Backend::Local,
        }
    }

    fn creds(name: &str, password: &str) -> Credentials {
        Credentials::new(name.into(), password.into())
    }

    /// Accepts `alice` with `pw`.
    fn check() -> CheckFn {
        Arc::new(|_: &Directory, _, n: &[u8], p: &[u8]| {
            Verdict::from((n == b"alice" && p == b"pw").then(|| "alice".to_string()))
        })
    }

    /// [`check`], each call waiting for a token from the returned sender.
    fn gated() -> (CheckFn, channel::Sender<()>) {
        let (release, gate) = channel::unbounded::<()>();
        let gate = Mutex::new(gate);
        let inner = check();
        let f: CheckFn = Arc::new(move |d: &Directory, b, n: &[u8], p: &[u8]| {
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
            inner(d, b, n, p)
        });
        (f, release)
    }

    /// Submits a local login under `key`, which the pool must queue.
    fn queue(v: &mut Verifier<u16>, key: u16, name: &str, password: &str) {
        let got = v.submit(key, &users(), creds(name, password));
        assert_eq!(got, Submitted::Queued, "key {key}");
    }

    fn next(v: &mut Verifier<u16>) -> Collected<u16> {
        assert!(v.wait_ready(Duration::from_secs(30)));
        v.collect().expect("a verdict")
    }

    #[test]
    fn inline_answers_at_once() {
        let mut v = Verifier::<u16>::inline(check());
        assert_eq!(
            v.submit(1, &users(), creds("alice", "pw")),
            Submitted::Done(Verdict::Accepted("alice".into()))
        );
        assert_eq!(
            v.submit(1, &users(), creds("alice", "no")),
            Submitted::Done(Verdict::Refused)
        );
        assert_eq!((v.pending(), v.threads(), v.counters.verified), (0, 0, 2));
        assert!(v.collect().is_none());
        assert!(!v.is_waiting(&1));
    }

    #[test]
    fn pool_verdicts_reach_their_connections() {
        let mut v = Verifier::<u16>::pool(1, 0, 4, check()).unwrap();
        queue(&mut v, 7, "alice", "no");
        queue(&mut v, 8, "alice", "pw");
        assert!(v.is_waiting(&7) && v.is_waiting(&8));
        let mut got = vec![next(&mut v), next(&mut v)];
        got.sort_by_key(|c| c.key);
        assert_eq!(
            got,
            [
                Collected {
                    key: 7,
                    verdict: Verdict::Refused,
                    live: true
                },
                Collected {
                    key: 8,
                    verdict: Verdict::Accepted("alice".into()),
                    live: true
                }
            ]
        );
        assert_eq!((v.pending(), v.counters.verified), (0, 2));
        assert!(!v.is_waiting(&7));
    }

    #[test]
    fn a_cancelled_connection_gets_no_verdict() {
        let (check, release) = gated();
        let mut v = Verifier::<u16>::pool(1, 0, 4, check).unwrap();
        queue(&mut v, 7, "alice", "no");
        v.cancel(&7);
        release.send(()).unwrap();
        let c = next(&mut v);
        assert_eq!((c.key, c.live), (7, false));
        assert_eq!(
            c.verdict,
            Verdict::Refused,
            "still reported: the limiter needs it"
        );
        assert_eq!(v.counters.discarded, 1);
    }

    #[test]
    fn a_reused_key_does_not_take_its_predecessors_verdict() {
        let (check, release) = gated();
        let mut v = Verifier::<u16>::pool(1, 0, 4, check).unwrap();
        queue(&mut v, 7, "alice", "pw");
        // The connection goes; a new one on the same key submits its own attempt.
        v.cancel(&7);
        queue(&mut v, 7, "alice", "no");
        release.send(()).unwrap();
        release.send(()).unwrap();
        let first = next(&mut v);
        assert_eq!(
            (first.verdict, first.live),
            (Verdict::Accepted("alice".into()), false)
        );
        let second = next(&mut v);
        assert_eq!((second.verdict, second.live), (Verdict::Refused, true));
        assert_eq!(v.counters.discarded, 1);
    }

    #[test]
    fn a_full_pool_refuses_and_counts() {
        let (check, release) = gated();
        let mut v = Verifier::<u16>::pool(1, 0, 1, check).unwrap();
        queue(&mut v, 1, "alice", "pw");
        assert_eq!(v.submit(2, &users(), creds("alice", "pw")), Submitted::Full);
        assert!(!v.is_waiting(&2));
        assert_eq!((v.pending(), v.counters.queue_full), (1, 1));
        release.send(()).unwrap();
        assert!(next(&mut v).live);
        v.shutdown();
        assert_eq!(v.threads(), 0);
    }

    /// While every directory thread waits on a silent directory, a local login is verified
    /// at once: the two kinds never queue behind each other.
    #[test]
    fn a_directory_outage_does_not_hold_up_local_logins() {
        use common::config::Backend;
        let (release, gate) = channel::unbounded::<()>();
        let gate = Mutex::new(gate);
        let check: CheckFn = Arc::new(move |_: &Directory, backend, n: &[u8], _: &[u8]| {
            if backend.uses_radius() {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
                return Verdict::NoDirectory;
            }
            Verdict::from((n == b"alice").then(|| "alice".to_string()))
        });
        let mut v = Verifier::<u16>::pool(1, 1, 8, check).unwrap();
        assert_eq!(v.threads(), 2);
        let radius = Against {
            dir: Directory::local(&[]),
            backend: Backend::Radius,
        };
        assert_eq!(v.submit(1, &radius, creds("carol", "x")), Submitted::Queued);
        assert_eq!(v.submit(2, &radius, creds("dave", "x")), Submitted::Queued);
        queue(&mut v, 3, "alice", "pw");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let local = loop {
            if let Some(c) = v.collect() {
                break c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the local login waited"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(
            (local.key, local.verdict),
            (3, Verdict::Accepted("alice".into()))
        );
        assert_eq!(v.pending(), 2, "both directory attempts still wait");
        release.send(()).unwrap();
        release.send(()).unwrap();
        let mut rest = [next(&mut v), next(&mut v)];
        rest.sort_by_key(|c| c.key);
        assert!(rest
            .iter()
            .all(|c| c.verdict == Verdict::NoDirectory && c.live));
        assert_eq!(v.pending(), 0);
    }
}
