//! Authentication on the client leg of a proxied connection, before the box connects to the
//! server and splices: byte-level state machines, no I/O, no threads, no clock (time comes in
//! as `now_ms`, any monotonic millisecond count).
//!
//! - [`LineAuth`] (`auth: line`): `Username: ` / `Password: ` prompts, three tries.
//! - [`HttpBasic`] (`auth: http-basic`): the first HTTP request's `Authorization: Basic` or
//!   `Proxy-Authorization: Basic` header; `401` without valid credentials.
//! - [`RateLimiter`]: failed attempts per client address, shared by both.
//! - [`AuthCache`]: successful authentications per client address and method, for the
//!   configured time (the PIX/ASA "uauth" cache).
//!
//! Every attempt costs exactly one argon2 verification ([`check_credentials`]), also for
//! unknown user names, so response times do not reveal which names exist. Verification takes
//! tens of milliseconds: the caller decides where that time is spent. Either it passes a check
//! to `feed`/`feed_with` (verified inline), or it uses `feed_deferred`, which hands out the
//! [`Credentials`] and waits for `resume` with the [`Verdict`] (the control plane verifies on
//! its own threads, `crate::verifier`).

mod attempt;
mod base64;
mod cache;
mod directory;
mod http;
mod line;
pub mod radius;
mod recent;

pub use attempt::{Credentials, Verdict};
pub use cache::{AuthCache, Clear, Login, Made, Scope, Used, DEFAULT_CACHE_CAPACITY};
pub use directory::Directory;
pub use http::{
    found, ok_text, percent_decode, percent_encode, Fingerprints, HttpBasic, HttpMode, HttpStep,
    MAX_HEAD, REALM,
};
pub use line::{
    LineAuth, LineOutcome, LineStep, LOGIN_INCORRECT, MAX_FAILURES, MAX_LINE, NOT_CHECKED,
    PROMPT_PASSWORD, PROMPT_USER, RATE_LIMITED, TOO_MANY_FAILURES,
};

use std::collections::{HashMap, VecDeque};

use recent::Recent;

use common::config::User;
use common::wire::Ipv4Addr;

/// A PHC string with the algorithm and parameters of `common::config::hash_password` (argon2id,
/// the crate defaults: m=19456, t=2, p=1) and a random salt and output, so no password is known
/// to match it. Unknown user names are verified against it, so they cost the same work as a
/// wrong password (for users hashed with the default parameters).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$a1XIlwK53vkHSqvU8ht9lQ$YB8rcDMJwXyvArHs3rp8SqpuaElowqpoFy0thXWpzu8";

/// Checks one login attempt against the configured users: `Some(name)` when `name` is a user
/// and `password` is theirs. Exactly one argon2 verification either way (an unknown or
/// non-UTF-8 name is verified against a dummy hash with the default parameters).
pub fn check_credentials(users: &[User], name: &[u8], password: &[u8]) -> Option<String> {
    match find_user(users, name) {
        Some(user) => user.verify(password).then(|| user.name.clone()),
        None => {
            std::hint::black_box(dummy_user().verify(password));
            None
        }
    }
}

fn find_user<'a>(users: &'a [User], name: &[u8]) -> Option<&'a User> {
    let name = std::str::from_utf8(name).ok()?;
    users.iter().find(|u| u.name == name)
}

fn dummy_user() -> User {
    User {
        name: String::new(),
        password_hash: DUMMY_HASH.to_owned(),
    }
}

/// Overwrites a buffer that held a password before it is reused or dropped (best effort).
fn wipe(buf: &mut Vec<u8>) {
    buf.fill(0);
    std::hint::black_box(&mut *buf);
    buf.clear();
}

/// Failed attempts allowed per client address and window, by default.
pub const DEFAULT_MAX_FAILURES: usize = 5;
/// The window, by default.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;
/// Client addresses tracked at most, by default.
pub const DEFAULT_MAX_CLIENTS: usize = 4096;
/// Failed login attempts per client address, shared by the `line` and `http-basic`
/// authenticators: an address with `max_failures` failures within the last `window_ms`
/// (a sliding window) is limited, and its attempts are refused without a password check until
/// the oldest of those failures leaves the window. A success does not clear earlier failures.
///
/// At most `max_clients` addresses are tracked; a new one evicts the address whose last
/// failure is the oldest. Memory: `max_clients` × `max_failures` timestamps at most.
///
/// Attempts handed to the verifier threads are counted until their verdict is in
/// ([`begin_attempt`](Self::begin_attempt), [`end_attempt`](Self::end_attempt)): a further
/// attempt that would exceed the budget with them waits ([`must_wait`](Self::must_wait))
/// instead of being verified or refused, so a client cannot have more guesses verified than
/// the limit by opening many connections at once, and a browser's parallel logins (each with
/// the same credentials) are verified in turn.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    max_failures: usize,
    window_ms: u64,
    /// Per address, the times of its most recent failures, oldest first, at most
    /// `max_failures`; the address updated longest ago first (the eviction and purge order).
    clients: Recent<Ipv4Addr, VecDeque<u64>>,
    /// Attempts being verified, per address (no entry at zero): as many entries as
    /// verifications pending at most.
    in_flight: HashMap<Ipv4Addr, u32>,
}

impl Default for RateLimiter {
    /// 5 failures per 60 s, 4096 addresses.
    fn default() -> Self {
        RateLimiter::new(DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_MS, DEFAULT_MAX_CLIENTS)
    }
}

impl RateLimiter {
    /// `max_failures == 0` disables limiting; `max_clients` is at least 1.
    pub fn new(max_failures: usize, window_ms: u64, max_clients: usize) -> Self {
        RateLimiter {
            max_failures,
            window_ms,
            clients: Recent::new(max_clients),
            in_flight: HashMap::new(),
        }
    }

    /// Whether an attempt from `client` must be refused now.
    pub fn is_limited(&self, client: Ipv4Addr, now_ms: u64) -> bool {
        self.retry_after_ms(client, now_ms).is_some()
    }

    /// While `client` is limited: how long until its next attempt is allowed (at least 1).
    pub fn retry_after_ms(&self, client: Ipv4Addr, now_ms: u64) -> Option<u64> {
        if self.max_failures == 0 {
            return None;
        }
        let failures = self.clients.get(&client);
        if let Some(f) = failures.filter(|f| f.len() >= self.max_failures) {
            let age = now_ms.saturating_sub(*f.front()?);
            if age < self.window_ms {
                return Some(self.window_ms - age);
            }
        }
        None
    }

    /// Whether a new attempt from `client` must wait for the verdicts of its attempts being
    /// verified: its failures in the window plus those attempts use up `max_failures`. The
    /// waiting attempt is verified once a verdict leaves room (or answered unchecked if the
    /// address is limited by then), so an address never has more guesses verified than the
    /// limit allows, however many connections it opens at once, and a browser's parallel
    /// logins are not refused, only queued behind each other's verification.
    pub fn must_wait(&self, client: Ipv4Addr, now_ms: u64) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let in_flight = self.in_flight.get(&client).copied().unwrap_or(0) as usize;
        if in_flight == 0 {
            return false;
        }
        let recent = self.clients.get(&client).map_or(0, |failures| {
            failures
                .iter()
                .filter(|&&f| now_ms.saturating_sub(f) < self.window_ms)
                .count()
        });
        recent + in_flight >= self.max_failures
    }

    /// An attempt from `client` went to be verified elsewhere: it counts as a failure until
    /// [`end_attempt`](Self::end_attempt).
    pub fn begin_attempt(&mut self, client: Ipv4Addr) {
        if self.max_failures > 0 {
            *self.in_flight.entry(client).or_insert(0) += 1;
        }
    }

    /// Its verdict is in (a failure is then recorded as usual).
    pub fn end_attempt(&mut self, client: Ipv4Addr) {
        if let Some(n) = self.in_flight.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&client);
            }
        }
    }

    /// Records a failed attempt (a wrong password or an unknown user) from `client`.
    pub fn record_failure(&mut self, client: Ipv4Addr, now_ms: u64) {
        if self.max_failures == 0 {
            return;
        }
        let max = self.max_failures;
        let failures = self.clients.update(client, || VecDeque::with_capacity(max));
        failures.push_back(now_ms);
        while failures.len() > max {
            failures.pop_front();
        }
    }

    /// Forgets addresses whose last failure has left the window (`now_ms` non-decreasing
    /// across calls).
    pub fn purge(&mut self, now_ms: u64) {
        let window_ms = self.window_ms;
        self.clients.purge_while(|failures| {
            let last = failures.back().copied().unwrap_or(0);
            now_ms.saturating_sub(last) >= window_ms
        });
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! One real argon2 hash for all the auth tests (argon2 is slow in test builds), and a
    //! credential check that counts its verifications.
    use std::cell::Cell;
    use std::sync::OnceLock;

    use common::config::{hash_password, User};

    pub const ALICE_PASSWORD: &[u8] = b"s3cret pass:word";

    /// `alice` with [`ALICE_PASSWORD`] and `bob` with the same hash.
    pub fn users() -> &'static [User] {
        static USERS: OnceLock<Vec<User>> = OnceLock::new();
        USERS.get_or_init(|| {
            let hash = hash_password(ALICE_PASSWORD).expect("hash");
            vec![
                User {
                    name: "alice".into(),
                    password_hash: hash.clone(),
                },
                User {
                    name: "bob".into(),
                    password_hash: hash,
                },
            ]
        })
    }

    /// A cheap stand-in for `check_credentials` with the same answers for [`users`], counting
    /// the verifications it would have made.
    pub struct Counting {
        pub calls: Cell<u32>,
    }

    impl Counting {
        pub fn new() -> Self {
            Counting {
                calls: Cell::new(0),
            }
        }
        pub fn check(&self, name: &[u8], password: &[u8]) -> Option<String> {
            self.calls.set(self.calls.get() + 1);
            let known = matches!(name, b"alice" | b"bob");
            (known && password == ALICE_PASSWORD).then(|| String::from_utf8(name.to_vec()).unwrap())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use argon2::PasswordHash;

    const C1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const C2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn real_check_against_configured_users() {
        // Three verifications in all: right password, wrong password, unknown user.
        let users = users();
        assert_eq!(
            check_credentials(users, b"alice", ALICE_PASSWORD).as_deref(),
            Some("alice")
        );
        assert_eq!(check_credentials(users, b"alice", b"wrong"), None);
        assert_eq!(check_credentials(users, b"mallory", ALICE_PASSWORD), None);
    }

    #[test]
    fn unknown_users_take_the_dummy_hash_with_default_parameters() {
        assert!(find_user(users(), b"mallory").is_none());
        assert!(find_user(users(), b"\xffalice").is_none());
        assert!(find_user(users(), b"alice").is_some());
        // Same algorithm, version and cost parameters as a freshly configured password.
        let dummy = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        let real = PasswordHash::new(&users()[0].password_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(
            dummy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "output length"
        );
    }

    #[test]
    fn limiter_sliding_window() {
        let mut l = RateLimiter::new(3, 1000, 16);
        assert!(!l.is_limited(C1, 0));
        l.record_failure(C1, 0);
        l.record_failure(C1, 100);
        assert!(!l.is_limited(C1, 150));
        l.record_failure(C1, 200);
        assert!(l.is_limited(C1, 200));
        assert_eq!(l.retry_after_ms(C1, 200), Some(800));
        assert!(!l.is_limited(C2, 200), "per address");
        assert!(l.is_limited(C1, 999));
        // The failure at 0 leaves the window; two remain.
        assert!(!l.is_limited(C1, 1000));
        l.record_failure(C1, 1000);
        assert!(l.is_limited(C1, 1000));
        assert_eq!(l.retry_after_ms(C1, 1050), Some(50));
        assert!(!l.is_limited(C1, 1100));
    }

    #[test]
    fn limiter_disabled_with_zero() {
        let mut l = RateLimiter::new(0, 1000, 16);
        for t in 0..10 {
            l.record_failure(C1, t);
        }
        assert!(!l.is_limited(C1, 10));
        assert!(l.is_empty());
    }

    #[test]
    fn limiter_memory_is_bounded_oldest_evicted() {
        let mut l = RateLimiter::new(2, 10_000, 3);
        let a = |i: u8| Ipv4Addr::new(198, 18, 1, i);
        l.record_failure(a(1), 0);
        l.record_failure(a(1), 1);
        l.record_failure(a(2), 2);
        l.record_failure(a(3), 3);
        // a(1) was updated first: it goes when a fourth address arrives...
        l.record_failure(a(2), 4);
        l.record_failure(a(4), 5);
        assert_eq!(l.len(), 3);
        assert!(!l.is_limited(a(1), 6), "evicted");
        assert!(l.is_limited(a(2), 6));
        // ...and a(3), now the oldest, with the next one.
        l.record_failure(a(5), 7);
        assert_eq!(l.len(), 3);
        assert!(l.clients.get(&a(3)).is_none());
        assert!(l.is_limited(a(2), 7));
        assert!(l.clients.is_consistent());
        for i in 10..200 {
            l.record_failure(a(i), 8 + u64::from(i));
            assert!(l.len() <= 3);
            assert!(l.clients.get(&a(i)).unwrap().len() <= 2);
        }
        assert!(l.clients.is_consistent());
    }

    #[test]
    fn attempts_being_verified_make_further_ones_wait() {
        let mut l = RateLimiter::new(3, 1000, 16);
        // No failure yet: up to the limit in flight, then the next one waits.
        assert!(!l.must_wait(C1, 0), "nothing in flight");
        l.begin_attempt(C1);
        l.begin_attempt(C1);
        assert!(!l.must_wait(C1, 0));
        l.begin_attempt(C1);
        assert!(l.must_wait(C1, 0), "three in flight use the budget");
        assert!(!l.is_limited(C1, 0), "waiting is not being limited");
        assert!(!l.must_wait(C2, 0), "per address");
        // One verdict in, a failure: one failure + two in flight still use it up.
        l.end_attempt(C1);
        l.record_failure(C1, 10);
        assert!(l.must_wait(C1, 10));
        // The other two succeed: room again.
        l.end_attempt(C1);
        assert!(!l.must_wait(C1, 10));
        l.end_attempt(C1);
        assert!(!l.must_wait(C1, 10), "nothing in flight");
        l.begin_attempt(C1);
        assert!(!l.must_wait(C1, 10), "one failure + one in flight");
        l.begin_attempt(C1);
        assert!(l.must_wait(C1, 10));
        // A failure that left the window no longer counts.
        assert!(!l.must_wait(C1, 1010));
        l.end_attempt(C1);
        l.end_attempt(C1);
        assert!(l.in_flight.is_empty());
        // Unbalanced ends and a disabled limiter are harmless.
        l.end_attempt(C2);
        let mut off = RateLimiter::new(0, 1000, 16);
        for _ in 0..5 {
            off.begin_attempt(C1);
        }
        assert!(!off.must_wait(C1, 0) && !off.is_limited(C1, 0));
        assert!(off.in_flight.is_empty());
    }

    #[test]
    fn limiter_purge() {
        let mut l = RateLimiter::new(2, 1000, 16);
        l.record_failure(C1, 0);
        l.record_failure(C2, 500);
        l.purge(999);
        assert_eq!(l.len(), 2);
        l.purge(1000);
        assert_eq!(l.len(), 1);
        l.record_failure(C2, 1400);
        l.purge(1500);
        assert_eq!(l.len(), 1, "C2's last failure is recent");
        l.purge(2400);
        assert!(l.is_empty());
        assert!(l.clients.is_consistent());
    }
}
