//! What each server's SYN-ACK announced (MSS, timestamps, SACK, window scale), remembered
//! for a while so the box can tell a client what fits before it has reached the server:
//! with `line` and `http-basic` (and SYN cookies) the client is answered first.
//!
//! Bounded in entries and age (`proxy.server_options`): a full cache forgets the server
//! learnt longest ago, and an entry older than `max_age` is not trusted. A server's options
//! may change (a reconfigured host, another backend behind the same address): each SYN-ACK
//! replaces what was known, and a connection told too much is still spliced (the fast path
//! splits what does not fit, or the connection is kept as a full proxy, counted).

use std::collections::{HashMap, VecDeque};

use common::config::ServerOptionsCache;
use common::wire::tcp::SynOptions;
use common::wire::Ipv4Addr;

/// A server: its address and port.
pub type ServerKey = (Ipv4Addr, u16);

/// The bounded cache.
#[derive(Debug)]
pub struct ServerOptions {
    known: HashMap<ServerKey, (SynOptions, u64)>,
    /// Servers in the order they were learnt, with when; a server learnt again has a later
    /// entry and its earlier ones are skipped.
    order: VecDeque<(ServerKey, u64)>,
    entries: usize,
    max_age_ms: u64,
    /// Lookups that found a server, and SYN-ACKs that changed what was known.
    pub hits: u64,
    pub changed: u64,
}

impl ServerOptions {
    pub fn new(cfg: &ServerOptionsCache) -> ServerOptions {
        ServerOptions {
            known: HashMap::new(),
            order: VecDeque::new(),
            entries: cfg.entries as usize,
            max_age_ms: cfg.max_age.as_millis() as u64,
            hits: 0,
            changed: 0,
        }
    }

    /// A reload may change the bounds; what is known stays (trimmed to the new size).
    pub fn reconfigure(&mut self, cfg: &ServerOptionsCache) {
        self.entries = cfg.entries as usize;
        self.max_age_ms = cfg.max_age.as_millis() as u64;
        self.trim();
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// What `server` announced, if learnt within `max_age`.
    pub fn lookup(&mut self, server: ServerKey, now_ms: u64) -> Option<SynOptions> {
        let (opts, at) = self.known.get(&server)?;
        if now_ms.saturating_sub(*at) > self.max_age_ms {
            return None;
        }
        self.hits += 1;
        Some(*opts)
    }

    /// Remembers `opts`, the options of a SYN-ACK from `server` (what it offered: its TSval
    /// and TSecr are not kept, so a server sending timestamps is not "changed" by each new
    /// clock value).
    pub fn learn(&mut self, server: ServerKey, mut opts: SynOptions, now_ms: u64) {
        if self.entries == 0 {
            return;
        }
        opts.timestamps = opts.timestamps.map(|_| (0, 0));
        if let Some((old, _)) = self.known.insert(server, (opts, now_ms)) {
            if old != opts {
                self.changed += 1;
            }
        }
        self.order.push_back((server, now_ms));
        self.trim();
    }

    /// Forgets the servers learnt longest ago beyond `entries`, and drops order entries that
    /// a later learning made stale (so the queue stays within twice the bound).
    fn trim(&mut self) {
        while self.known.len() > self.entries || self.order.len() > 2 * self.entries.max(1) {
            let Some((server, at)) = self.order.pop_front() else {
                break;
            };
            if self.known.get(&server).is_some_and(|(_, t)| *t == at) {
                self.known.remove(&server);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(entries: u32, max_age_s: u64) -> ServerOptionsCache {
        ServerOptionsCache {
            entries,
            max_age: Duration::from_secs(max_age_s),
        }
    }

    fn opts(mss: u16, ts: bool) -> SynOptions {
        SynOptions {
            mss: Some(mss),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: ts.then_some((0, 0)),
        }
    }

    fn server(i: u16) -> ServerKey {
        (Ipv4Addr::new(198, 19, 0, 2), i)
    }

    #[test]
    fn a_learnt_server_is_found_until_it_is_too_old() {
        let mut c = ServerOptions::new(&cfg(8, 10));
        assert_eq!(c.lookup(server(1), 0), None);
        c.learn(server(1), opts(1400, false), 1_000);
        assert_eq!(c.lookup(server(1), 11_000), Some(opts(1400, false)));
        assert_eq!(c.lookup(server(1), 11_001), None, "older than max_age");
        assert_eq!(
            c.lookup(server(2), 1_000),
            None,
            "another port is another server"
        );
        assert_eq!(c.hits, 1);
    }

    #[test]
    fn a_new_syn_ack_replaces_what_was_known() {
        let mut c = ServerOptions::new(&cfg(8, 10));
        c.learn(server(1), opts(1460, true), 0);
        c.learn(server(1), opts(1220, false), 5);
        assert_eq!(c.lookup(server(1), 6), Some(opts(1220, false)));
        assert_eq!(c.changed, 1);
        c.learn(server(1), opts(1220, false), 7);
        assert_eq!(c.changed, 1, "the same options again change nothing");
    }

    #[test]
    fn a_new_tsval_is_no_change() {
        let mut c = ServerOptions::new(&cfg(8, 10));
        c.learn(server(1), opts(1460, true), 0);
        let mut again = opts(1460, true);
        again.timestamps = Some((123_456, 789));
        c.learn(server(1), again, 5);
        assert_eq!(c.changed, 0);
        assert!(c
            .lookup(server(1), 6)
            .is_some_and(|o| o.timestamps.is_some()));
    }

    #[test]
    fn a_full_cache_forgets_the_server_learnt_longest_ago() {
        let mut c = ServerOptions::new(&cfg(3, 600));
        for i in 0..3 {
            c.learn(server(i), opts(1400, true), u64::from(i));
        }
        // Server 0 learnt again: now server 1 is the oldest.
        c.learn(server(0), opts(1400, true), 10);
        c.learn(server(3), opts(1400, true), 11);
        assert_eq!(c.len(), 3);
        assert!(c.lookup(server(1), 12).is_none());
        for i in [0, 2, 3] {
            assert!(c.lookup(server(i), 12).is_some(), "server {i}");
        }
    }

    #[test]
    fn relearning_one_server_keeps_the_queue_bounded() {
        let mut c = ServerOptions::new(&cfg(4, 600));
        for t in 0..10_000 {
            c.learn(server(1), opts(1400, t % 2 == 0), t);
        }
        assert_eq!(c.len(), 1);
        assert!(c.order.len() <= 8, "{}", c.order.len());
        assert_eq!(c.lookup(server(1), 10_000), Some(opts(1400, false)));
    }

    #[test]
    fn zero_entries_turns_it_off() {
        let mut c = ServerOptions::new(&cfg(0, 600));
        c.learn(server(1), opts(1400, true), 0);
        assert!(c.is_empty());
        let mut c = ServerOptions::new(&cfg(4, 600));
        for i in 0..4 {
            c.learn(server(i), opts(1400, true), 0);
        }
        c.reconfigure(&cfg(2, 600));
        assert_eq!(c.len(), 2);
    }
}
