//! The participating stack: proxied connections from their SYN to their splice (or to their
//! end, for `splice: never`), and the short afterlife of a spliced connection's stragglers.
//!
//! Scaling: connections are found by quad in a hash map, and each has legs with one socket
//! each, so a packet costs the same with ten or ten thousand connections (see [`leg`]).
//! Timers: each connection remembers when its legs next want to run; a tick visits only the
//! connections that are due.
//!
//! Login attempts go to a [`Verifier`] (inline by default; `control::run` sets a pool of
//! threads): a connection whose attempt is queued waits, and the tick hands each finished
//! verdict to its connection and runs it.

pub mod announce;
pub mod conn;
pub mod cookie;
mod deferred;
pub mod leg;
mod portal;
pub mod server_options;
pub mod splice;
pub mod strip;
mod syn_cookies;
pub mod tap;
pub mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use smoltcp::time::Instant;

use crate::settings::Settings;
use common::config::{Action, AuthMethod, HttpLogin, Iface};
use common::conn::{Conn, ConnFlags, TcpState};
use common::flow::FlowKey;
use common::wire::ethernet::{EtherType, EthernetFrame};
use common::wire::ipv4::{Ipv4Packet, Protocol};
use common::wire::tcp::{SynOptions, TcpPacket};
use dataplane::contract::{Command, ToControl, Why};
use dataplane::packet::Packet;

use crate::auth::{AuthCache, Directory, Fingerprints, RateLimiter, Scope, Verdict};
use crate::local::LocalStack;
use crate::stats::Connections;
use crate::verifier::{self, Verifier};
use dataplane::contract::ControlIo;

use conn::{Env, LoginSetup, Outcome, Peers, ProxyConn};
use syn_cookies::Answered;

/// How long a spliced connection's late packets (queued toward control before the object was
/// installed) are still rewritten and sent on by control.
pub const AFTERLIFE_MS: u64 = 3_000;

struct Afterlife {
    worker: u16,
    until_ms: u64,
}

/// Counters beyond `connections` (DESIGN.md §9).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProxyCounters {
    pub stragglers_forwarded: u64,
    /// Connections whose quad a new SYN took over while control still held them (or their
    /// afterlife).
    pub superseded: u64,
    /// Segments whose data the drain stripped, sent on through the fast path at the splice.
    pub drain_resent: u64,
    /// Of those, not sent on (no mbuf, or the worker's ring was full): their senders
    /// retransmit them.
    pub drain_resend_failed: u64,
    pub unknown_dropped: u64,
    pub malformed: u64,
    pub install_failed: u64,
    pub active: u64,
    /// SYNs refused because `proxy.max_connections` connections were already held.
    pub max_connections_refused: u64,
    /// SYNs refused because [`MAX_EMBRYONIC`] handshakes were already pending.
    pub embryonic_refused: u64,
    /// Connections whose client never completed its handshake within [`EMBRYONIC_MS`].
    pub embryonic_timeout: u64,
    /// SYNs answered with a SYN cookie (`proxy.syn_cookies`), nothing kept.
    pub syn_cookies_sent: u64,
    /// ACKs that returned a valid cookie: connections built from them.
    pub syn_cookies_accepted: u64,
    /// ACKs without a flow toward a `proxy` rule whose cookie was not valid (a late segment
    /// of a finished connection, a cookie older than two periods, or a guess; or, never seen,
    /// a client leg that did not take the cookie as its ISN): dropped.
    pub syn_cookies_invalid: u64,
    /// Servers whose SYN-ACK options are remembered now (a gauge, `proxy.server_options`);
    /// connections that found their server there; SYN-ACKs that changed what was known.
    pub server_options_known: u64,
    pub server_options_hits: u64,
    pub server_options_changed: u64,
}

/// Proxied connections whose client leg has not completed its handshake, at most. A SYN
/// flood toward a `proxy` rule costs two legs (their buffers) per SYN; beyond this the SYN is
/// refused (its placeholder removed, counted) and a real client's retransmission gets in
/// when the pending ones time out.
pub const MAX_EMBRYONIC: usize = 256;
/// How long a client may take to complete its handshake with the box.
pub const EMBRYONIC_MS: u64 = 10_000;

pub struct Proxy {
    settings: Arc<Settings>,
    conns: HashMap<FlowKey, ProxyConn>,
    /// When each connection's legs next want a turn (ms).
    due: timers::Timers,
    afterlife: HashMap<FlowKey, Afterlife>,
    /// The afterlives in the order they end (all last [`AFTERLIFE_MS`]), so a tick ends the
    /// expired ones without visiting the others.
    afterlife_order: std::collections::VecDeque<(u64, FlowKey)>,
    /// Connections still in the client's handshake, with when they began.
    embryonic: HashMap<FlowKey, u64>,
    cookies: cookie::CookieJar,
    /// What servers' SYN-ACKs announced (`proxy.server_options`).
    servers: server_options::ServerOptions,
    /// What the workers were last told (see `Rings::syn_cookies`).
    cookies_signalled: bool,
    limiter: RateLimiter,
    cache: AuthCache,
    /// The context's users and directory, shared with the verifier threads' jobs.
    dir: Directory,
    /// The key of the logins' credential fingerprints.
    fingerprints: Fingerprints,
    verifier: Verifier<FlowKey>,
    /// Connections whose login attempt waits for its address's verifications (see
    /// `RateLimiter::must_wait`), oldest first; entries of connections gone are skipped.
    deferred: std::collections::VecDeque<FlowKey>,
    pub connections: Connections,
    pub counters: ProxyCounters,
    out: Vec<(bool, Vec<u8>)>,
}

impl Proxy {
    pub fn new(settings: Arc<Settings>) -> Proxy {
        let dir = Directory::new(&settings.config, None);
        Proxy {
            conns: HashMap::new(),
            due: timers::Timers::default(),
            afterlife: HashMap::new(),
            afterlife_order: std::collections::VecDeque::new(),
            embryonic: HashMap::new(),
            cookies: cookie::CookieJar::default(),
            servers: server_options::ServerOptions::new(&settings.config.proxy.server_options),
            cookies_signalled: false,
            limiter: RateLimiter::default(),
            cache: AuthCache::from_config(&settings.config.auth),
            dir,
            fingerprints: Fingerprints::default(),
            verifier: Verifier::inline(verifier::directory_check()),
            deferred: std::collections::VecDeque::new(),
            connections: Connections::default(),
            counters: ProxyCounters::default(),
            out: Vec::new(),
            settings,
        }
    }

    pub fn active(&self) -> usize {
        self.conns.len()
    }

    /// When the earliest connection timer is due (ms, the proxy's clock).
    pub fn next_due(&self) -> Option<u64> {
        self.due.next()
    }

    /// Connections in the participating stack by phase (see [`ProxyConn::phase_name`]).
    pub fn phases(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let mut m = std::collections::BTreeMap::new();
        for c in self.conns.values() {
            *m.entry(c.phase_name()).or_insert(0) += 1;
        }
        m
    }

    /// The phase of the connection of `key` (either orientation), if control holds it.
    pub fn phase_of(&self, key: &FlowKey) -> Option<&'static str> {
        self.conns
            .get(key)
            .or_else(|| self.conns.get(&key.reversed()))
            .map(|c| c.phase_name())
    }

    /// The policy and users in force.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// A reload: new connections use `settings`' policy and users; connections already here
    /// keep their method and splice point. Cached logins of users no longer configured go.
    pub fn set_settings(&mut self, settings: Arc<Settings>) {
        self.cache.retain_users(&settings.config.users);
        self.cache.set_timeouts(&settings.config.auth);
        self.servers
            .reconfigure(&settings.config.proxy.server_options);
        self.dir = Directory::new(&settings.config, Some(&self.dir));
        self.settings = settings;
    }

    /// Where login attempts are verified from now on (the previous verifier is shut down).
    pub fn set_verifier(&mut self, verifier: Verifier<FlowKey>) {
        self.verifier = verifier;
    }

    /// Stops the verifier threads (at exit).
    pub fn shutdown_verifier(&mut self) {
        self.verifier.shutdown();
    }

    /// Waits until every pending verdict is ready for the next tick, at most `timeout`: for
    /// tests that run the pool and must not depend on how fast its threads are.
    pub fn wait_verdicts(&self, timeout: Duration) -> bool {
        self.verifier.wait_ready(timeout)
    }

    /// A packet a worker handed over because of a `proxy` rule.
    pub fn on_packet<P: Packet>(
        &mut self,
        msg: ToControl<P>,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        if let Some(parsed) = self.parse_counted(msg.pkt.data()) {
            self.packet(msg, parsed, now_ms, local, io);
        }
        self.signal_cookies(io);
    }

    /// [`on_packet`](Self::on_packet) with what [`parse`] read of it.
    fn packet<P: Packet>(
        &mut self,
        msg: ToControl<P>,
        (key, ip_off, syn): Parsed,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        if matches!(msg.why, Why::ProxySyn { .. }) && syn.is_some() {
            // A new connection on a quad whose predecessor may still be here (a client
            // reusing its port within the afterlife, or before a finished full proxy's legs
            // left TIME-WAIT). What is left of the old one goes; treating the SYN as one of
            // its stragglers would bounce it between worker and control until the afterlife
            // ended.
            let in_afterlife = self.afterlife.remove(&key).is_some();
            if self.forget(key).is_some() || in_afterlife {
                self.counters.superseded += 1;
            }
        }
        let ckey = if self.conns.contains_key(&key) || self.afterlife.contains_key(&key) {
            Some((key, true))
        } else if self.conns.contains_key(&key.reversed())
            || self.afterlife.contains_key(&key.reversed())
        {
            Some((key.reversed(), false))
        } else {
            None
        };
        let Some((ckey, from_client)) = ckey else {
            match (msg.why, syn) {
                (Why::ProxySyn { placeholder, .. }, Some(opts)) if self.cookie_time() => {
                    if placeholder {
                        io.command(msg.worker, Command::Remove(key));
                    }
                    self.send_cookie(key, &msg, ip_off, &opts, now_ms, local, io);
                    return;
                }
                (
                    Why::ProxySyn {
                        rule,
                        action,
                        placeholder,
                    },
                    Some(opts),
                ) => {
                    let how = (rule, action);
                    if !self.open(key, how, msg.worker, msg.iface, opts, None, now_ms, io) {
                        return;
                    }
                    if !placeholder {
                        // The worker saw cookies on when this SYN came: the connection's
                        // later segments must follow it to control all the same.
                        let mut p = Conn::new_pass(&key, 0);
                        p.set_flag(ConnFlags::PROXIED, true);
                        io.command(msg.worker, Command::Install(p));
                    }
                }
                (Why::ProxyAck { rule, action }, None) => {
                    let ip = &msg.pkt.data()[ip_off.clone()];
                    let Some((answered, opts)) = self.check_cookie(key, ip, now_ms) else {
                        self.counters.syn_cookies_invalid += 1;
                        return;
                    };
                    let answered = Some(answered);
                    let how = (rule, action);
                    if !self.open(key, how, msg.worker, msg.iface, opts, answered, now_ms, io) {
                        return;
                    }
                    self.counters.syn_cookies_accepted += 1;
                }
                _ => {
                    self.counters.unknown_dropped += 1;
                    return;
                }
            }
            // The SYN (or the ACK of the cookie) itself goes to the new client leg.
            let ip = msg.pkt.data()[ip_off.clone()].to_vec();
            self.feed(key, true, ip, now_ms, local, io);
            return;
        };
        if let Some(a) = self.afterlife.get(&ckey) {
            if matches!(msg.why, Why::ProxyAck { .. }) {
                // The worker has no object for it (it ended): sent back, it would return.
                self.counters.unknown_dropped += 1;
                return;
            }
            // Queued toward control before the object was installed: back to the worker,
            // which now tracks and rewrites it like every later packet.
            if io.reinject(a.worker, msg.iface, msg.pkt) {
                self.counters.stragglers_forwarded += 1;
            }
            return;
        }
        if let Some(c) = self.conns.get_mut(&ckey) {
            c.hold(msg.iface, msg.pkt.data(), ip_off.clone());
        }
        let ip = msg.pkt.data()[ip_off.clone()].to_vec();
        self.feed(ckey, from_client, ip, now_ms, local, io);
    }

    /// Whether one more connection fits (`embryonic`: one still in its handshake, which
    /// must also fit under [`MAX_EMBRYONIC`]); a refusal is counted.
    fn has_room(&mut self, embryonic: bool) -> bool {
        if self.conns.len() >= self.settings.config.proxy.max_connections as usize {
            self.counters.max_connections_refused += 1;
            false
        } else if embryonic && self.embryonic.len() >= MAX_EMBRYONIC {
            self.counters.embryonic_refused += 1;
            false
        } else {
            true
        }
    }

    /// [`parse`], counting a frame it cannot read as malformed.
    fn parse_counted(&mut self, frame: &[u8]) -> Option<Parsed> {
        let parsed = parse(frame);
        if parsed.is_none() {
            self.counters.malformed += 1;
        }
        parsed
    }

    /// Opens a connection for the SYN on `key` or, with `answered`, for the ACK of its cookie.
    #[allow(clippy::too_many_arguments)]
    fn open<P>(
        &mut self,
        key: FlowKey,
        (rule, action): (u16, Action),
        worker: u16,
        port: Iface,
        syn: SynOptions,
        answered: Option<Answered>,
        now_ms: u64,
        io: &mut impl ControlIo<P>,
    ) -> bool {
        // The action comes with the SYN, from the policy the worker applied: after a reload
        // control's policy may be newer than a worker's for a moment, and rule indices differ.
        let Action::Proxy { auth, splice } = action else {
            self.counters.unknown_dropped += 1;
            io.command(worker, Command::Remove(key));
            return false;
        };
        // A SYN answered with a cookie has finished its handshake: it is not embryonic.
        if !self.has_room(answered.is_none()) {
            io.command(worker, Command::Remove(key));
            return false;
        }
        let Some(login) = self.login_setup(usize::from(rule), auth, key.src, now_ms) else {
            // The worker's policy is older or newer than control's (a reload): the client's
            // retransmitted SYN meets the same policy on both.
            self.counters.unknown_dropped += 1;
            io.command(worker, Command::Remove(key));
            return false;
        };
        let now = Instant::from_millis(now_ms as i64);
        let drain_ms = self.settings.config.proxy.drain_timeout.as_millis() as u64;
        let client_mss = self.settings.config.proxy.client_mss;
        let client = match answered {
            None => None,
            Some(a) => {
                let ts = syn.timestamps.is_some();
                let rebuilt =
                    cookie::rebuilt_syn(&key, a.isn, a.window, &syn, syn.timestamps.map(|t| t.0));
                let mtu = conn::DEFAULT_MTU;
                // What the cookie's SYN-ACK announced (see `send_cookie`).
                let announce = announce::to_client(&syn, None, client_mss);
                let leg = leg::Leg::client_leg_answered(
                    key.dst, key.dport, mtu, ts, a.cookie, rebuilt, announce, now,
                );
                if leg.is_none() {
                    self.counters.syn_cookies_invalid += 1;
                    return false;
                }
                leg
            }
        };
        let peers = Peers {
            client: syn,
            server: self.servers.lookup((key.dst, key.dport), now_ms),
            client_mss,
        };
        let c = ProxyConn::new(key, worker, port, auth, splice, peers, login, client, now)
            .with_drain_timeout(drain_ms);
        self.connections.proxied += 1;
        self.conns.insert(key, c);
        self.embryonic.insert(key, now_ms);
        true
    }

    /// How the connection of a SYN that matched rule `index` with `auth` logs in; `None` if
    /// that rule is not the one the worker applied. A login the client has in the rule's
    /// scope is used (and counted) here.
    fn login_setup(
        &mut self,
        index: usize,
        auth: AuthMethod,
        client: common::wire::Ipv4Addr,
        now_ms: u64,
    ) -> Option<LoginSetup> {
        if auth == AuthMethod::None {
            return Some(LoginSetup::none());
        }
        let config = &self.settings.config;
        let rule = config
            .policy
            .get(index)
            .filter(|r| matches!(r.action, Action::Proxy { auth: a, .. } if a == auth))?;
        let label = rule.label(index);
        let scope = Scope::of(rule);
        let portal = match (&config.auth.virtual_http, auth, rule.login.http) {
            (Some(v), AuthMethod::HttpBasic, HttpLogin::Virtual) => {
                let mut url = format!("http://{}/login?rule=", v.authority());
                crate::auth::percent_encode(label.as_bytes(), &mut url);
                url.push('&');
                Some(url)
            }
            _ => None,
        };
        Some(LoginSetup {
            rule: label,
            login: rule.login,
            // An HTTP request is judged when it comes (a browser opens connections early).
            cached: match auth {
                AuthMethod::Line => self.cache.use_login(client, &scope, now_ms),
                _ => None,
            },
            scope,
            portal,
            fingerprints: self.fingerprints.clone(),
        })
    }

    fn feed<P: Packet>(
        &mut self,
        key: FlowKey,
        from_client: bool,
        ip: Vec<u8>,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        if let Some(c) = self.conns.get_mut(&key) {
            c.input(from_client, ip);
            self.turn(key, now_ms, local, io);
        }
    }

    /// Runs one connection and sends what its legs produced.
    fn turn<P: Packet>(
        &mut self,
        key: FlowKey,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        let mut env = Env {
            dir: &self.dir,
            fingerprints: &self.fingerprints,
            policy: &self.settings.config.policy,
            limiter: &mut self.limiter,
            cache: &mut self.cache,
            verifier: &mut self.verifier,
            now_ms,
        };
        self.out.clear();
        // An attempt is deferred in a turn and waits (the connection reads no input) until
        // `submit_deferred` takes it: queued once.
        let had_deferred = c.has_deferred();
        let outcome = c.step(&mut env, &mut self.out);
        let ev = std::mem::take(&mut c.events);
        if c.has_deferred() && !had_deferred {
            self.deferred.push_back(key);
        }
        // A full proxy counts once its both legs are done, not when TIME-WAIT lets it go.
        if !c.counted && c.full_proxy_ended() {
            c.counted = true;
            self.connections.full_proxy += 1;
        }
        let (worker, client_side, portal) = (c.worker, c.client_side, c.is_portal());
        // The server leg leaves by the server's route; without one (the client's SYN was
        // routed, so only a reload could take it away) back where the client came from.
        let server_side = local.egress(key.dst).unwrap_or(client_side);
        let now = Instant::from_millis(now_ms as i64);
        let next = c.poll_at(now).map(|t| t.total_millis() as u64);
        for (from_client_leg, ip) in self.out.drain(..) {
            let side = if from_client_leg {
                client_side
            } else {
                server_side
            };
            local.send_ip(side, &ip, now_ms as u32, io);
        }
        self.count_events(key, &ev, now_ms);
        if ev.client_established && portal {
            self.embryonic.remove(&key);
        } else if ev.client_established {
            self.embryonic.remove(&key);
            // Confirm the placeholder, so it outlives the SYN-SENT timeout.
            let mut p = Conn::new_pass(&key, 0);
            p.set_state(TcpState::Established);
            p.set_flag(ConnFlags::PROXIED, true);
            io.command(worker, Command::Install(p));
        }
        match outcome {
            Outcome::Continue => match next {
                Some(t) => self.due.set(key, t),
                None => self.due.clear(&key),
            },
            Outcome::Spliced(conn) => self.install(key, worker, *conn, now_ms, io),
            Outcome::Closed => {
                self.forget(key);
                if !portal {
                    io.command(worker, Command::Remove(key));
                }
            }
            Outcome::DrainTimeout => {
                log::warn!("{key}: drain timed out, both legs reset");
                self.connections.drain_timeout += 1;
                self.forget(key);
                io.command(worker, Command::Remove(key));
            }
        }
    }

    /// What a turn of connection `key` reported, into the counters and the servers' options.
    fn count_events(&mut self, key: FlowKey, ev: &conn::Events, now_ms: u64) {
        let c = &mut self.connections;
        c.auth_failed += u64::from(ev.auth_failed);
        c.auth_redirected += u64::from(ev.redirected);
        c.portal_logins += u64::from(ev.portal_login);
        c.auth_unavailable += u64::from(ev.directory_down);
        if let Some(cause) = ev.fallback {
            c.fallback += 1;
            c.fallback_causes.count(cause);
        }
        if let Some(o) = ev.server_options {
            self.servers.learn((key.dst, key.dport), o, now_ms);
        }
        self.sync_auth_counters();
    }

    /// Hands a spliced connection's object to its worker, then the segments its drain held
    /// back; the connection's legs go.
    fn install<P: Packet>(
        &mut self,
        key: FlowKey,
        worker: u16,
        conn: Conn,
        now_ms: u64,
        io: &mut impl ControlIo<P>,
    ) {
        log::info!(
            "{key}: spliced, delta1 {} delta2 {} timestamps {} window shifts in {:?} out {:?}",
            conn.delta1,
            conn.delta2,
            conn.flags() & ConnFlags::TIMESTAMPS != 0,
            conn.wscale_in(),
            conn.wscale_out()
        );
        if io.command(worker, Command::Install(conn)) {
            self.connections.spliced += 1;
            let until_ms = now_ms + AFTERLIFE_MS;
            self.afterlife.insert(key, Afterlife { worker, until_ms });
            self.afterlife_order.push_back((until_ms, key));
            // Behind the object on the worker's rings: the data the drain stripped goes on
            // now, rewritten (one that overtakes the object comes back as a straggler of the
            // afterlife and is handed back again).
            let held = self
                .conns
                .get_mut(&key)
                .map(|c| std::mem::take(&mut c.held))
                .unwrap_or_default();
            for (side, frame) in held {
                let sent = io
                    .alloc(&frame)
                    .is_some_and(|p| io.reinject(worker, side, p));
                if sent {
                    self.counters.drain_resent += 1;
                } else {
                    self.counters.drain_resend_failed += 1;
                }
            }
        } else {
            self.counters.install_failed += 1;
            io.command(worker, Command::Remove(key));
        }
        self.forget(key);
    }

    fn forget(&mut self, key: FlowKey) -> Option<ProxyConn> {
        self.due.clear(&key);
        self.embryonic.remove(&key);
        self.verifier.cancel(&key);
        self.conns.remove(&key)
    }

    /// Answers the logins whose verdicts came in since the last call: the control loop calls
    /// it every poll, so a login waits for its verification and nothing else (not the next
    /// 10 ms tick). Costs a comparison when nothing is being verified.
    pub fn poll_verdicts<P: Packet>(
        &mut self,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        if self.verifier.pending() > 0 {
            self.collect_verdicts(now_ms, local, io);
            self.submit_deferred(now_ms, local, io);
            self.sync_auth_counters();
        }
    }

    /// Hands the finished verdicts to their connections and runs them; never blocks.
    fn collect_verdicts<P: Packet>(
        &mut self,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        while let Some(c) = self.verifier.collect() {
            self.limiter.end_attempt(c.key.src);
            let conn = if c.live {
                self.conns.get_mut(&c.key)
            } else {
                None
            };
            match conn {
                Some(conn) => {
                    conn.deliver(c.verdict);
                    self.turn(c.key, now_ms, local, io);
                }
                // Its connection went (a reset right after the password, say): the failure
                // still counts against the address.
                None if c.verdict == Verdict::Refused => {
                    self.limiter.record_failure(c.key.src, now_ms)
                }
                None => {}
            }
        }
    }

    /// The verifier's counters into `connections`.
    fn sync_auth_counters(&mut self) {
        let v = &self.verifier.counters;
        self.connections.auth_verified = v.verified;
        self.connections.auth_queue_full = v.queue_full;
        self.connections.auth_discarded = v.discarded;
        self.connections.auth_pending = self.verifier.pending() as u64;
        self.connections.radius = self.dir.radius_stats();
    }

    /// The live logins (`cutthrough auth list`).
    pub fn logins(&self, now_ms: u64) -> Vec<crate::auth::Login> {
        self.cache.logins(now_ms)
    }

    /// Ends logins (`cutthrough auth clear`): later connections from those clients are asked
    /// again. Returns how many it ended.
    pub fn clear_logins(&mut self, which: &crate::auth::Clear, now_ms: u64) -> usize {
        let n = self.cache.clear(which, now_ms);
        log::info!("logins ended by the operator ({which:?}): {n}");
        n
    }

    /// Runs the connections whose timers are due and ends expired afterlives.
    pub fn tick<P: Packet>(
        &mut self,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        self.collect_verdicts(now_ms, local, io);
        self.submit_deferred(now_ms, local, io);
        let mut due = Vec::new();
        while let Some(key) = self.due.pop_due(now_ms) {
            due.push(key);
        }
        let stale: Vec<FlowKey> = self
            .embryonic
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(**t) > EMBRYONIC_MS)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            if let Some(c) = self.forget(key) {
                self.counters.embryonic_timeout += 1;
                io.command(c.worker, Command::Remove(key));
            }
        }
        for key in due {
            self.turn(key, now_ms, local, io);
        }
        while let Some(&(until, key)) = self.afterlife_order.front() {
            if until > now_ms {
                break;
            }
            self.afterlife_order.pop_front();
            // A later afterlife of the same quad (spliced again) has its own entry behind.
            if self
                .afterlife
                .get(&key)
                .is_some_and(|a| a.until_ms <= now_ms)
            {
                self.afterlife.remove(&key);
            }
        }
        self.cache.purge(now_ms);
        self.counters.active = self.conns.len() as u64;
        self.counters.server_options_known = self.servers.len() as u64;
        self.counters.server_options_hits = self.servers.hits;
        self.counters.server_options_changed = self.servers.changed;
        self.sync_auth_counters();
        self.signal_cookies(io);
    }
}

/// A frame's quad, where its IP packet is in it and, for a SYN, its options.
type Parsed = (FlowKey, std::ops::Range<usize>, Option<SynOptions>);

/// The quad, the offset of the IP header and, for a SYN, its options.
fn parse(frame: &[u8]) -> Option<Parsed> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let off = eth.header_len();
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != Protocol::TCP {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let key = FlowKey::new(ip.src(), tcp.src_port(), ip.dst(), tcp.dst_port());
    let syn =
        (tcp.syn() && !tcp.ack()).then(|| SynOptions::parse(tcp.options()).unwrap_or_default());
    // Only as much as the IP datagram says (Ethernet padding off).
    Some((key, off..off + usize::from(ip.total_len()), syn))
}
