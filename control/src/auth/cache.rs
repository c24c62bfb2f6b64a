//! The authentication cache (the PIX/ASA "uauth" cache): a successful authentication is
//! remembered per client address and [`Scope`] for a fixed time from the moment it happened
//! (an absolute timeout, `auth.cache_timeout`; using the entry does not extend it), and
//! forgotten earlier if no connection uses it for `auth.cache_idle`, so later connections
//! from that address to a rule of the same scope skip the prompt: every `login: shared` rule
//! shares one login per address, whatever its method; a `login: rule` rule has its own. An operator lists the
//! logins and ends them (`show uauth` / `clear uauth`: [`AuthCache::logins`],
//! [`AuthCache::clear`]).

use std::time::Duration;

use common::config::{Auth, AuthMethod, Backend, LoginScope, Rule, User};
use common::wire::Ipv4Addr;

use super::recent::Recent;

/// Entries kept at most, by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 65_536;

/// Which logins a rule takes, and under which key its own logins are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One login per address for every `login: shared` rule.
    Shared,
    /// The logins of the rule of this name (`login: rule`).
    Rule(String),
}

impl Scope {
    pub fn of(rule: &Rule) -> Scope {
        match (rule.login.scope, &rule.name) {
            (LoginScope::Rule, Some(name)) => Scope::Rule(name.clone()),
            _ => Scope::Shared,
        }
    }
}

/// What a login records of how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub user: String,
    pub method: AuthMethod,
    /// The rule it was made at (its label).
    pub rule: String,
    pub backend: Backend,
    /// Of the credentials (see `Fingerprints`): headers carrying them are removed later.
    pub fingerprint: u64,
}

/// A login a connection is using.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub user: String,
    pub fingerprint: u64,
}

type Key = (Ipv4Addr, Scope);

#[derive(Debug, Clone)]
struct Entry {
    made: Made,
    at_ms: u64,
    /// When a connection last used it (or it was made).
    used_ms: u64,
    /// Connections that skipped the prompt because of it.
    connections: u64,
}

/// One login as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Login {
    pub user: String,
    pub client: String,
    pub method: String,
    /// The rule the login was made at, and the logins' key: `shared` or the rule's name.
    pub rule: String,
    pub scope: String,
    pub backend: String,
    /// Milliseconds since the login, and since a connection last used it.
    pub since_ms: u64,
    pub idle_ms: u64,
    /// Connections that used it without a prompt.
    pub connections: u64,
}

/// Which logins [`AuthCache::clear`] ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clear {
    Client(Ipv4Addr),
    User(String),
    All,
}

/// Successful authentications by (client address, scope). Bounded: when full, remembering
/// a new key evicts the entry remembered longest ago. `now_ms` must not decrease across calls.
#[derive(Debug, Clone)]
pub struct AuthCache {
    timeout_ms: u64,
    /// `auth.cache_idle` (0: no idle timeout).
    idle_ms: u64,
    /// Oldest remembered first: the eviction and purge order.
    entries: Recent<Key, Entry>,
}

impl AuthCache {
    /// A cache whose entries last `timeout_ms`, with the default capacity
    /// ([`DEFAULT_CACHE_CAPACITY`]). A zero timeout remembers nothing.
    pub fn new(timeout_ms: u64) -> Self {
        AuthCache::with_capacity(timeout_ms, DEFAULT_CACHE_CAPACITY)
    }

    /// A cache whose entries last `timeout_ms` and of at most `capacity` entries (at least 1).
    pub fn with_capacity(timeout_ms: u64, capacity: usize) -> Self {
        AuthCache {
            timeout_ms,
            idle_ms: 0,
            entries: Recent::new(capacity),
        }
    }

    /// A cache with the configured timeouts (`auth.cache_timeout`, `auth.cache_idle`) and
    /// the default capacity.
    pub fn from_config(auth: &Auth) -> Self {
        let mut c = AuthCache::new(0);
        c.set_timeouts(auth);
        c
    }

    /// Applies new timeouts (a reload) to every login at once, those already made included.
    pub fn set_timeouts(&mut self, auth: &Auth) {
        self.timeout_ms = duration_ms(auth.cache_timeout);
        self.idle_ms = auth.cache_idle.map_or(0, duration_ms);
    }

    /// Remembers that `client` logged in at `now_ms` as `made` says (replacing and restarting
    /// an earlier login of the same address and scope).
    pub fn remember(&mut self, client: Ipv4Addr, scope: Scope, made: Made, now_ms: u64) {
        if self.timeout_ms == 0 {
            return;
        }
        self.entries.insert(
            (client, scope),
            Entry {
                made,
                at_ms: now_ms,
                used_ms: now_ms,
                connections: 0,
            },
        );
    }

    /// The user `client` logged in as in `scope`, if that is less than the timeout ago
    /// (and, with an idle timeout, a connection used it less than that ago).
    pub fn lookup(&self, client: Ipv4Addr, scope: &Scope, now_ms: u64) -> Option<&str> {
        let e = self.entries.get(&(client, scope.clone()))?;
        self.live(e, now_ms).then_some(e.made.user.as_str())
    }

    /// The login `client` has in `scope` now, without counting it as used.
    pub fn peek(&self, client: Ipv4Addr, scope: &Scope, now_ms: u64) -> Option<Used> {
        let e = self.entries.get(&(client, scope.clone()))?;
        self.live(e, now_ms).then(|| Used {
            user: e.made.user.clone(),
            fingerprint: e.made.fingerprint,
        })
    }

    /// [`AuthCache::lookup`] for a connection that skips the prompt because of the login:
    /// counted, and the login's idle time starts again.
    pub fn use_login(&mut self, client: Ipv4Addr, scope: &Scope, now_ms: u64) -> Option<Used> {
        let (timeout_ms, idle_ms) = (self.timeout_ms, self.idle_ms);
        let e = self.entries.get_mut(&(client, scope.clone()))?;
        if !live(timeout_ms, idle_ms, e, now_ms) {
            return None;
        }
        e.used_ms = now_ms;
        e.connections += 1;
        Some(Used {
            user: e.made.user.clone(),
            fingerprint: e.made.fingerprint,
        })
    }

    /// The live logins, oldest first.
    pub fn logins(&self, now_ms: u64) -> Vec<Login> {
        self.entries
            .iter()
            .filter(|(_, e)| self.live(e, now_ms))
            .map(|((client, scope), e)| Login {
                user: e.made.user.clone(),
                client: client.to_string(),
                method: e.made.method.to_string(),
                rule: e.made.rule.clone(),
                scope: match scope {
                    Scope::Shared => "shared".to_owned(),
                    Scope::Rule(name) => name.clone(),
                },
                backend: e.made.backend.to_string(),
                since_ms: now_ms.saturating_sub(e.at_ms),
                idle_ms: now_ms.saturating_sub(e.used_ms),
                connections: e.connections,
            })
            .collect()
    }

    /// Ends the logins `which` names; returns how many live ones it ended.
    pub fn clear(&mut self, which: &Clear, now_ms: u64) -> usize {
        let (timeout_ms, idle_ms) = (self.timeout_ms, self.idle_ms);
        let mut ended = 0;
        let mut keep = |(addr, _): &Key, e: &Entry| {
            let hit = match which {
                Clear::Client(c) => addr == c,
                Clear::User(u) => e.made.user == *u,
                Clear::All => true,
            };
            ended += usize::from(hit && live(timeout_ms, idle_ms, e, now_ms));
            !hit
        };
        self.entries.retain(&mut keep);
        ended
    }

    /// Drops the entries past their absolute timeout (call it from a timer). An entry that
    /// went idle before stays until then, unused and unlisted (its absolute timeout bounds
    /// it, and this stays a walk over expired entries only).
    pub fn purge(&mut self, now_ms: u64) {
        let timeout_ms = self.timeout_ms;
        self.entries
            .purge_while(|e| now_ms.saturating_sub(e.at_ms) >= timeout_ms);
    }

    /// Forgets every entry of `client` (e.g. on an operator's request).
    pub fn forget_client(&mut self, client: Ipv4Addr) {
        self.retain(|(addr, _), _| *addr != client);
    }

    /// Forgets the logins checked against local users no longer configured (after a
    /// configuration reload). A directory's logins stay: the box cannot tell whether their
    /// users still exist.
    pub fn retain_users(&mut self, users: &[User]) {
        self.retain(|_, made| {
            made.backend != Backend::Local || users.iter().any(|u| u.name == made.user)
        });
    }

    fn retain(&mut self, mut keep: impl FnMut(&Key, &Made) -> bool) {
        self.entries.retain(|key, e| keep(key, &e.made));
    }

    pub fn idle_ms(&self) -> u64 {
        self.idle_ms
    }

    /// Entries held (expired ones included until `purge`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn live(&self, e: &Entry, now_ms: u64) -> bool {
        live(self.timeout_ms, self.idle_ms, e, now_ms)
    }
}

fn live(timeout_ms: u64, idle_ms: u64, e: &Entry, now_ms: u64) -> bool {
    now_ms.saturating_sub(e.at_ms) < timeout_ms
        && (idle_ms == 0 || now_ms.saturating_sub(e.used_ms) < idle_ms)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const C2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A rule of its own per method, so logins of one method do not serve the other.
    fn s(m: AuthMethod) -> Scope {
        Scope::Rule(m.to_string())
    }

    fn made(user: &str) -> Made {
        Made {
            user: user.to_owned(),
            method: AuthMethod::Line,
            rule: "r".to_owned(),
            backend: Backend::Local,
            fingerprint: 7,
        }
    }

    #[test]
    fn hit_and_expiry() {
        let mut c = AuthCache::with_capacity(1000, 16);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 0), None);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 100);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 100), Some("alice"));
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 1099), Some("alice"));
        assert_eq!(c.lookup(C2, &s(AuthMethod::Line), 500), None, "per address");
        // Absolute: the lookups did not extend it.
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 1100), None);
        assert_eq!(c.len(), 1);
        c.purge(1100);
        assert!(c.is_empty());
        assert!(c.entries.is_consistent());
    }

    #[test]
    fn rule_scopes_are_separate() {
        let mut c = AuthCache::with_capacity(1000, 16);
        c.remember(C1, s(AuthMethod::HttpBasic), made("alice"), 0);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 1), None);
        assert_eq!(c.lookup(C1, &s(AuthMethod::HttpBasic), 1), Some("alice"));
        c.remember(C1, s(AuthMethod::Line), made("bob"), 2);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 3), Some("bob"));
        assert_eq!(c.lookup(C1, &s(AuthMethod::HttpBasic), 3), Some("alice"));
    }

    #[test]
    fn remember_again_replaces_and_restarts() {
        let mut c = AuthCache::with_capacity(1000, 16);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        c.remember(C1, s(AuthMethod::Line), made("bob"), 900);
        assert_eq!(c.len(), 1);
        assert!(c.entries.is_consistent());
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 1500), Some("bob"));
        c.purge(1500);
        assert_eq!(c.len(), 1);
        c.purge(1900);
        assert!(c.is_empty());
    }

    #[test]
    fn purge_stops_at_the_first_live_entry() {
        let mut c = AuthCache::with_capacity(1000, 16);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        c.remember(C2, s(AuthMethod::Line), made("bob"), 500);
        c.purge(1000);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 1000), None);
        assert_eq!(c.lookup(C2, &s(AuthMethod::Line), 1000), Some("bob"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn eviction_of_the_oldest() {
        let mut c = AuthCache::with_capacity(1_000_000, 3);
        let a = |i: u8| Ipv4Addr::new(198, 18, 2, i);
        c.remember(a(1), s(AuthMethod::Line), made("u1"), 1);
        c.remember(a(2), s(AuthMethod::Line), made("u2"), 2);
        c.remember(a(3), s(AuthMethod::Line), made("u3"), 3);
        c.remember(a(1), s(AuthMethod::Line), made("u1"), 4); // refreshed: now the newest
        c.remember(a(4), s(AuthMethod::Line), made("u4"), 5);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.lookup(a(2), &s(AuthMethod::Line), 6),
            None,
            "oldest evicted"
        );
        assert_eq!(c.lookup(a(1), &s(AuthMethod::Line), 6), Some("u1"));
        assert_eq!(c.lookup(a(3), &s(AuthMethod::Line), 6), Some("u3"));
        assert_eq!(c.lookup(a(4), &s(AuthMethod::Line), 6), Some("u4"));
        for i in 10..=255 {
            c.remember(a(i), s(AuthMethod::HttpBasic), made("x"), 10 + u64::from(i));
            assert!(c.len() <= 3);
        }
        assert!(c.entries.is_consistent());
        assert_eq!(c.lookup(a(255), &s(AuthMethod::HttpBasic), 300), Some("x"));
    }

    #[test]
    fn forget_and_retain_users() {
        let mut c = AuthCache::with_capacity(1000, 16);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        c.remember(C1, s(AuthMethod::HttpBasic), made("alice"), 0);
        c.remember(C2, s(AuthMethod::Line), made("bob"), 0);
        c.forget_client(C1);
        assert_eq!(c.len(), 1);
        c.retain_users(&[User {
            name: "alice".into(),
            password_hash: String::new(),
        }]);
        assert!(c.is_empty());
        assert!(c.entries.is_consistent());
    }

    #[test]
    fn from_config_and_zero_timeout() {
        let c = AuthCache::from_config(&Auth::default());
        assert_eq!(c.timeout_ms(), 300_000);
        let mut c = AuthCache::with_capacity(0, 16);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 0), None);
        assert!(c.is_empty());
    }

    #[test]
    fn idle_logins_expire_and_use_restarts_the_idle_time() {
        let mut c = AuthCache::with_capacity(10_000, 16);
        c.set_timeouts(&Auth {
            cache_timeout: Duration::from_millis(10_000),
            cache_idle: Some(Duration::from_millis(1_000)),
            ..Auth::default()
        });
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        assert_eq!(
            c.use_login(C1, &s(AuthMethod::Line), 900)
                .map(|u| u.user)
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            c.lookup(C1, &s(AuthMethod::Line), 1_800),
            Some("alice"),
            "used at 900"
        );
        assert_eq!(
            c.lookup(C1, &s(AuthMethod::Line), 1_900),
            None,
            "idle for 1 s"
        );
        assert!(c.logins(1_900).is_empty(), "an idle login is not listed");
        assert_eq!(c.use_login(C1, &s(AuthMethod::Line), 1_900), None);
    }

    #[test]
    fn logins_are_listed_and_cleared_by_client_user_or_all() {
        let mut c = AuthCache::with_capacity(10_000, 16);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        c.remember(C1, s(AuthMethod::HttpBasic), made("alice"), 10);
        c.remember(C2, s(AuthMethod::Line), made("bob"), 20);
        c.use_login(C2, &s(AuthMethod::Line), 50);
        let l = c.logins(100);
        assert_eq!(l.len(), 3);
        assert_eq!(
            (
                l[2].user.as_str(),
                l[2].client.as_str(),
                l[2].method.as_str(),
                l[2].scope.as_str()
            ),
            ("bob", "198.18.0.2", "line", "line")
        );
        assert_eq!((l[2].since_ms, l[2].idle_ms, l[2].connections), (80, 50, 1));
        assert_eq!(c.clear(&Clear::Client(C1), 100), 2);
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 100), None);
        assert_eq!(c.clear(&Clear::User("alice".into()), 100), 0);
        assert_eq!(c.clear(&Clear::User("bob".into()), 100), 1);
        c.remember(C1, s(AuthMethod::Line), made("alice"), 200);
        assert_eq!(c.clear(&Clear::All, 200), 1);
        assert!(c.is_empty() && c.entries.is_consistent());
    }

    #[test]
    fn a_reload_applies_new_timeouts_to_logins_already_made() {
        let mut c = AuthCache::from_config(&Auth::default());
        c.remember(C1, s(AuthMethod::Line), made("alice"), 0);
        assert!(c.lookup(C1, &s(AuthMethod::Line), 60_000).is_some());
        c.set_timeouts(&Auth {
            cache_timeout: Duration::from_secs(30),
            cache_idle: None,
            ..Auth::default()
        });
        assert_eq!(c.lookup(C1, &s(AuthMethod::Line), 60_000), None);
    }

    #[test]
    fn a_shared_login_serves_every_shared_rule_and_keeps_its_fingerprint() {
        let mut c = AuthCache::with_capacity(10_000, 16);
        let mut m = made("alice");
        m.method = AuthMethod::HttpBasic;
        m.fingerprint = 42;
        c.remember(C1, Scope::Shared, m, 0);
        let used = c.use_login(C1, &Scope::Shared, 5).expect("shared login");
        assert_eq!((used.user.as_str(), used.fingerprint), ("alice", 42));
        assert_eq!(
            c.lookup(C1, &Scope::Rule("ssh".into()), 5),
            None,
            "a rule's own"
        );
        assert_eq!(c.lookup(C2, &Scope::Shared, 5), None);
        let l = c.logins(10);
        assert_eq!(
            (l[0].scope.as_str(), l[0].method.as_str()),
            ("shared", "http-basic")
        );
    }

    #[test]
    fn a_reload_keeps_directory_logins_of_users_not_in_the_file() {
        let mut c = AuthCache::with_capacity(10_000, 16);
        let mut r = made("carol");
        r.backend = Backend::Radius;
        c.remember(C1, Scope::Shared, r, 0);
        c.remember(C2, Scope::Shared, made("dave"), 0);
        c.retain_users(&[]);
        assert_eq!(c.lookup(C1, &Scope::Shared, 1), Some("carol"));
        assert_eq!(c.lookup(C2, &Scope::Shared, 1), None, "local user gone");
    }
}
