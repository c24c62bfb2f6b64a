//! One proxied connection: its two legs, the application step (authentication or reading the
//! first request), the relay, and the drain that ends in a splice (patent Figs. 5 and 6).
//!
//! Phases: `Auth` (client leg only: prompts or the HTTP request, and the wait for the verdict
//! on a login attempt, during which the client is not read) → `Relay` (both legs, bytes
//! copied between the sockets) → `Draining` (new data from either peer is stripped before the
//! legs see it, so nothing new is acknowledged; what the box already acknowledged is relayed
//! and acknowledged by the other side) → spliced. `splice: never`, or option sets that cannot
//! be reconciled, stay in `Relay` for good: the conventional proxy.

use smoltcp::socket::tcp::State;
use smoltcp::time::Instant;

use common::config::{AuthMethod, Iface, Rule, SplicePoint};
use common::conn::Conn;
use common::flow::FlowKey;
use common::wire::ipv4::Ipv4Packet;
use common::wire::tcp::{flags, SynOptions, TcpOption, TcpPacket};

use crate::auth::{
    AuthCache, Credentials, Directory, Fingerprints, HttpBasic, LineAuth, RateLimiter, Verdict,
};
use crate::verifier::Verifier;

mod login;

pub(super) use login::verify;
pub use login::LoginSetup;

use super::announce;
use super::leg::Leg;
use super::splice::{self, Fallback, SpliceError};
use super::strip::strip_payload;

/// How long a drain may take before both legs are reset, unless `proxy.drain_timeout` says
/// otherwise: the configuration's default.
pub const DRAIN_TIMEOUT_MS: u64 = common::config::Proxy::DEFAULT_DRAIN_TIMEOUT.as_millis() as u64;
/// Segments with data kept per connection during its drain (see [`ProxyConn::hold`]); later
/// ones are only stripped, and their senders retransmit them.
pub const MAX_HELD: usize = 64;
/// The IP MTU the box announces where it knows nothing better.
pub const DEFAULT_MTU: usize = common::config::Interface::DEFAULT_MTU as usize;

enum App {
    /// Nothing to ask: connect to the server at once.
    Open,
    Line(LineAuth),
    /// An `http-basic` rule's first request (in-band, redirected, or passed on for a client
    /// logged in).
    Http(HttpBasic),
    /// The virtual HTTP origin: a login and a redirect back; never a server.
    Portal(HttpBasic),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Auth,
    Relay,
    Draining { since_ms: u64 },
}

/// What a turn of the connection came to.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    /// Ready to splice: install this object, drop the legs.
    Spliced(Box<Conn>),
    /// Over (closed by both sides, reset, refused or failed authentication).
    Closed,
    /// The drain did not finish in time: both legs were reset.
    DrainTimeout,
}

/// What a turn needs from the proxy.
pub struct Env<'a> {
    pub dir: &'a Directory,
    pub fingerprints: &'a Fingerprints,
    /// The policy in force (the virtual HTTP origin finds the rule of a login in it).
    pub policy: &'a [Rule],
    pub limiter: &'a mut RateLimiter,
    pub cache: &'a mut AuthCache,
    pub verifier: &'a mut Verifier<FlowKey>,
    pub now_ms: u64,
}

/// Events the proxy counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Events {
    pub auth_failed: bool,
    /// Sent to the virtual HTTP origin to log in.
    pub redirected: bool,
    /// A login made at the virtual HTTP origin.
    pub portal_login: bool,
    /// No directory server answered a login attempt.
    pub directory_down: bool,
    /// Kept as a full proxy, and why.
    pub fallback: Option<Fallback>,
    pub client_established: bool,
    /// The server's SYN-ACK options, for the cache of servers' options.
    pub server_options: Option<SynOptions>,
}

/// What the box knows of the peers' handshake options when a connection begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peers {
    /// The client's SYN.
    pub client: SynOptions,
    /// What the server announced last time, if remembered (`proxy.server_options`).
    pub server: Option<SynOptions>,
    /// `proxy.client_mss`.
    pub client_mss: u16,
}

pub struct ProxyConn {
    pub key: FlowKey,
    pub worker: u16,
    pub client_side: Iface,
    app: App,
    phase: Phase,
    client: Leg,
    server: Option<Leg>,
    peers: Peers,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Keep proxying: `splice: never`, or options that cannot be reconciled.
    full_proxy: bool,
    /// `after-request` where the application step does not read the request itself: the
    /// drain waits for the client's first data to be relayed.
    await_request: bool,
    closing: bool,
    reported_established: bool,
    client_finished: bool,
    server_finished: bool,
    /// A login attempt is with the verifier threads.
    verifying: bool,
    /// Its verdict, delivered by the proxy for the next turn.
    verdict: Option<Verdict>,
    /// An attempt that waits for its address's verifications before its own (see
    /// [`RateLimiter::must_wait`]); the proxy submits it later.
    deferred: Option<Credentials>,
    pub events: Events,
    /// Counted as a finished full proxy.
    pub counted: bool,
    /// Whole frames of the segments whose data the drain stripped, with the port they came
    /// in on: once the object is installed they go through the fast path at once, instead of
    /// waiting for their senders' retransmission timeouts (200 ms at least, on Linux).
    pub held: Vec<(Iface, Vec<u8>)>,
    /// Their payload bytes, client→server and server→client.
    held_bytes: [u64; 2],
    /// The oldest TSval among them, client→server and server→client.
    held_tsval: [Option<u32>; 2],
    /// `proxy.drain_timeout` when the connection began.
    drain_timeout_ms: u64,
    /// The server's SYN-ACK options were reported (see [`Events::server_options`]).
    server_learnt: bool,
    /// The name of the login attempt being verified (for its accounting line).
    attempting: Option<String>,
    /// The fingerprint of its credentials (kept with the login it makes).
    attempt_fp: u64,
    login: LoginSetup,
}

impl ProxyConn {
    /// A connection from the client's SYN (already parsed) matching a `proxy` rule. With
    /// `client`, the client answered a SYN cookie: that is its client leg, through the
    /// handshake but for the client's ACK (see [`Leg::client_leg_answered`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: FlowKey,
        worker: u16,
        client_side: Iface,
        method: AuthMethod,
        splice: SplicePoint,
        peers: Peers,
        login: LoginSetup,
        client: Option<Leg>,
        now: Instant,
    ) -> ProxyConn {
        let seed = u64::from(key.symmetric_hash()) ^ now.total_millis() as u64;
        let ts = peers.client.timestamps.is_some();
        // With nothing to ask, the server is contacted first and its options offered to the
        // client (the SYN-ACK waits); otherwise the client is answered at once, told what
        // fits a server the box remembers, or the configured clamp. An HTTP client logged in
        // is not asked, but its request is read all the same: the box's credentials are
        // taken out of it.
        let fingerprints = login.fingerprints.clone();
        let app = match (method, &login.cached) {
            (AuthMethod::None, _) | (AuthMethod::Line, Some(_)) => App::Open,
            (AuthMethod::Line, None) => App::Line(LineAuth::new(key.src)),
            // The mode is settled when the request comes (see `http_input`).
            (AuthMethod::HttpBasic, _) => App::Http(HttpBasic::with_mode(
                login::http_mode(&login, None, &key),
                fingerprints,
            )),
        };
        let open = matches!(app, App::Open);
        // `after-request`: an HTTP login reads the request head itself (and relays it);
        // otherwise the drain waits for the client's first data. `after-auth` drains as
        // soon as the login is done (`none`: both handshakes); `never` is a full proxy.
        let await_request = splice == SplicePoint::AfterRequest && !matches!(app, App::Http(_));
        let client = client.unwrap_or_else(|| {
            let mut leg = Leg::client_leg(key.dst, key.dport, DEFAULT_MTU, ts, open, seed, now);
            leg.announce =
                announce::to_client(&peers.client, peers.server.as_ref(), peers.client_mss);
            leg
        });
        let mut c = ProxyConn {
            key,
            worker,
            client_side,
            app,
            phase: if open { Phase::Relay } else { Phase::Auth },
            client,
            server: None,
            peers,
            to_server: Vec::new(),
            to_client: Vec::new(),
            full_proxy: splice == SplicePoint::Never,
            await_request,
            closing: false,
            reported_established: false,
            client_finished: false,
            server_finished: false,
            verifying: false,
            verdict: None,
            deferred: None,
            events: Events::default(),
            counted: false,
            held: Vec::new(),
            held_bytes: [0; 2],
            held_tsval: [None; 2],
            drain_timeout_ms: DRAIN_TIMEOUT_MS,
            server_learnt: false,
            attempting: None,
            attempt_fp: 0,
            login,
        };
        if open {
            c.connect_server(ts, now);
        }
        c
    }

    /// A connection to the box's virtual HTTP origin: the client leg only, answered at once.
    pub fn portal(
        key: FlowKey,
        worker: u16,
        client_side: Iface,
        peers: Peers,
        fingerprints: Fingerprints,
        now: Instant,
    ) -> Self {
        let mut login = LoginSetup::none();
        login.fingerprints = fingerprints;
        let mut c = ProxyConn::new(
            key,
            worker,
            client_side,
            AuthMethod::HttpBasic,
            SplicePoint::Never,
            peers,
            login,
            None,
            now,
        );
        c.app = App::Portal(HttpBasic::new());
        c.await_request = false;
        c
    }

    /// It serves the virtual HTTP origin (no server leg, no flow in the workers).
    pub fn is_portal(&self) -> bool {
        matches!(self.app, App::Portal(_))
    }

    /// How long its drain may take (`proxy.drain_timeout`).
    pub fn with_drain_timeout(mut self, ms: u64) -> ProxyConn {
        self.drain_timeout_ms = ms;
        self
    }

    /// It ran as a conventional proxy to its end (`splice: never`, or a fallback).
    pub fn full_proxy_ended(&self) -> bool {
        self.full_proxy
            && self
                .server
                .as_ref()
                .is_some_and(|s| closed_or_waiting(s.state()))
            && closed_or_waiting(self.client.state())
    }

    /// Its phase for flow listings: `auth` (the client leg only), `proxied` (both legs,
    /// relaying), `draining` (on its way to the splice) or `full_proxy` (never spliced).
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Auth => "auth",
            Phase::Draining { .. } => "draining",
            Phase::Relay if self.full_proxy => "full_proxy",
            Phase::Relay => "proxied",
        }
    }

    fn connect_server(&mut self, timestamps: bool, now: Instant) {
        // The leg never sends the server more than the client accepts either.
        let mss = self.peers.client.mss.unwrap_or(announce::DEFAULT_MSS);
        let mtu = usize::from(mss) + usize::from(announce::IP_TCP_HEADERS);
        let seed = u64::from(self.key.symmetric_hash()).rotate_left(17) ^ now.total_millis() as u64;
        let mut leg = Leg::server_leg(
            self.key.src,
            self.key.sport,
            self.key.dst,
            self.key.dport,
            mtu.min(DEFAULT_MTU),
            timestamps,
            seed,
            now,
        );
        leg.announce = announce::to_server(&self.peers.client, self.peers.server.as_ref());
        self.server = Some(leg);
    }

    /// Keeps a copy of `frame` (arrived on `port`, its IP datagram at `ip`) when the drain is
    /// about to strip it: a segment with payload or FIN and no SYN or RST, up to
    /// [`MAX_HELD`] of them. Returns whether it was kept.
    pub fn hold(&mut self, port: Iface, frame: &[u8], ip: std::ops::Range<usize>) -> bool {
        if !matches!(self.phase, Phase::Draining { .. }) || self.held.len() >= MAX_HELD {
            return false;
        }
        let Some(datagram) = frame.get(ip) else {
            return false;
        };
        let Ok(p) = Ipv4Packet::new_checked(datagram) else {
            return false;
        };
        let Ok(t) = TcpPacket::new_checked(p.payload()) else {
            return false;
        };
        let fin = t.flags() & flags::FIN != 0;
        if (t.payload().is_empty() && !fin) || t.flags() & (flags::SYN | flags::RST) != 0 {
            return false;
        }
        // No more than the receiving peer's window: sent on at once after the splice, more
        // would arrive as a burst it has to drop (a client with a small receive buffer), and
        // its sender would wait for a retransmission timeout.
        let from_client = port == self.client_side;
        let receiver = if from_client {
            self.server.as_ref().map(|s| &s.tap)
        } else {
            Some(&self.client.tap)
        };
        let window = receiver.map_or(0, |r| r.peer_window_bytes());
        let d = usize::from(!from_client);
        let len = t.payload().len() as u64;
        if self.held_bytes[d] + len > window {
            return false;
        }
        self.held_bytes[d] += len;
        let tsval = t.option_iter().find_map(|o| match o {
            Ok((_, TcpOption::Timestamps { tsval, .. })) => Some(tsval),
            _ => None,
        });
        self.held_tsval[d] = splice::oldest(self.held_tsval[d], tsval);
        self.held.push((port, frame.to_vec()));
        true
    }

    /// A packet from the client (`from_client`) or the server, as an IP datagram.
    pub fn input(&mut self, from_client: bool, mut ip: Vec<u8>) {
        if let Phase::Draining { .. } = self.phase {
            // A FIN is held back like data: the leg never sees it, the sender retransmits it
            // (or the held copy goes on at once) through the fast path after the splice.
            strip_payload(&mut ip);
        }
        if from_client {
            self.client.input(ip);
        } else if let Some(s) = &mut self.server {
            s.input(ip);
        }
    }

    /// Runs both legs and the application step; `out` collects (from_client_leg, IP packet).
    pub fn step(&mut self, env: &mut Env<'_>, out: &mut Vec<(bool, Vec<u8>)>) -> Outcome {
        let now = Instant::from_millis(env.now_ms as i64);
        self.limit_windows();
        for _ in 0..4 {
            out.extend(self.client.poll(now).map(|p| (true, p)));
            if let Some(s) = &mut self.server {
                out.extend(s.poll(now).map(|p| (false, p)));
            }
            let before = out.len();
            match self.app_step(env, now) {
                Outcome::Continue => {}
                other => {
                    out.extend(self.client.poll(now).map(|p| (true, p)));
                    if let Some(s) = &mut self.server {
                        out.extend(s.poll(now).map(|p| (false, p)));
                    }
                    return other;
                }
            }
            // Run the legs again only if the step gave them something to send.
            let c_pending = self.client.socket().send_queue();
            let s_pending = self.server.as_mut().map_or(0, |s| s.socket().send_queue());
            if out.len() == before && c_pending == 0 && s_pending == 0 {
                break;
            }
        }
        Outcome::Continue
    }

    /// Once both legs are up, each offers its peer no more window than the other peer
    /// offers: what a peer sends right after the splice then fits the other's receive buffer
    /// (it would otherwise send a flight as large as the box's buffers, which a peer with a
    /// small one drops). The window a peer has seen cannot be lowered later (a sender takes
    /// a smaller window only with an acknowledgement of new data), so the limit holds from
    /// the start; a peer waiting on a closed window probes it and learns the new one.
    fn limit_windows(&mut self) {
        let Some(server) = &mut self.server else {
            return;
        };
        let bytes = |l: &Leg| {
            let (peer_shift, _) = l.tap.shifts();
            (u32::from(l.tap.peer_window) << peer_shift).max(1)
        };
        server.window_limit = Some(bytes(&self.client));
        self.client.window_limit = Some(bytes(server));
    }

    /// When the legs next need a turn without input.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        let c = self.client.poll_at(now);
        let s = self.server.as_mut().and_then(|s| s.poll_at(now));
        // The drain's deadline (the check is `now - since > drain_timeout_ms`).
        let d = match self.phase {
            Phase::Draining { since_ms } => Some(Instant::from_millis(
                (since_ms + self.drain_timeout_ms + 1) as i64,
            )),
            _ => None,
        };
        [c, s, d].into_iter().flatten().min()
    }

    fn app_step(&mut self, env: &mut Env<'_>, now: Instant) -> Outcome {
        let cstate = self.client.state();
        if !self.reported_established && cstate == State::Established {
            self.reported_established = true;
            self.events.client_established = true;
        }
        // A leg whose peer closed in order (its FIN received, ours acknowledged) is finished:
        // nothing its peer does later (a RST answering a late duplicate) ends the other leg.
        self.client_finished |= finished(&self.client);
        // A client that reset or vanished ends it.
        if !self.client_finished
            && (self.client.tap.peer_rst || (cstate == State::Closed && self.reported_established))
        {
            log::debug!(
                "{}: client leg ended ({cstate}, rst {})",
                self.key,
                self.client.tap.peer_rst
            );
            if let Some(s) = &mut self.server {
                s.socket().abort();
            }
            return Outcome::Closed;
        }
        if let Some(s) = &mut self.server {
            self.server_finished |= finished(s);
            let st = s.state();
            // Reset, refused, never answered, or timed out (`LEG_TIMEOUT_SECS`): a server leg
            // that is closed without having finished in order has failed.
            if !self.server_finished && (s.tap.peer_rst || st == State::Closed) {
                log::debug!(
                    "{}: server leg failed ({st}, rst {})",
                    self.key,
                    s.tap.peer_rst
                );
                self.client.socket().abort();
                return Outcome::Closed;
            }
            // The server answered: offer the client what the server accepts.
            if st != State::SynSent
                && st != State::Closed
                && self.client.state() == State::SynReceived
            {
                let server = s.tap.peer_syn;
                self.client.unpause(announce::to_client(
                    &self.peers.client,
                    server.as_ref(),
                    self.peers.client_mss,
                ));
            }
            if !self.server_learnt {
                if let Some(o) = s.tap.peer_syn {
                    self.server_learnt = true;
                    self.events.server_options = Some(o);
                }
            }
        }

        if self.phase == Phase::Auth {
            match self.auth_step(env, now) {
                Outcome::Continue => {}
                o => return o,
            }
        }
        self.flush_pending();
        if self.phase != Phase::Auth {
            self.relay();
        }
        if let Some(o) = self.close_step() {
            return o;
        }
        self.splice_step(env)
    }

    /// Timestamps are offered to the server only if the client leg has them.
    fn client_ts(&self) -> bool {
        self.client.tap.timestamps()
    }

    fn flush_pending(&mut self) {
        if !self.to_client.is_empty() && self.client.socket().can_send() {
            let n = self
                .client
                .socket()
                .send_slice(&self.to_client)
                .unwrap_or(0);
            self.to_client.drain(..n);
        }
        if self.to_client.is_empty() && self.closing && self.client.socket().may_send() {
            self.client.socket().close();
        }
        if let Some(s) = &mut self.server {
            if !self.to_server.is_empty() && s.socket().can_send() {
                let n = s.socket().send_slice(&self.to_server).unwrap_or(0);
                self.to_server.drain(..n);
            }
        }
    }

    /// Copies what each side's socket received into the other's send buffer.
    fn relay(&mut self) {
        let Some(server) = &mut self.server else {
            return;
        };
        if !self.to_server.is_empty() {
            return;
        }
        if copy(&mut self.client, server) > 0 {
            self.await_request = false;
        }
        copy(server, &mut self.client);
        // Half-close: a FIN from one side, once its data is relayed, is passed on.
        pass_fin(&mut self.client, server, self.client_finished);
        pass_fin(server, &mut self.client, self.server_finished);
    }

    fn close_step(&mut self) -> Option<Outcome> {
        // Not TIME-WAIT: that leg must still acknowledge a retransmitted FIN (its ACK may have
        // been lost); smoltcp closes it after its TIME-WAIT (10 s).
        let done = |s: State| s == State::Closed;
        let c = self.client.state();
        // A client that sent its password and closed still gets its answer.
        let answer_due = self.verifying || self.verdict.is_some();
        if self.server.is_none() && !answer_due {
            // The client left during authentication.
            if self.client.tap.peer_fin && !self.closing {
                self.closing = true;
                self.client.socket().close();
            }
            if self.closing && done(c) {
                return Some(Outcome::Closed);
            }
        }
        if let Some(s) = &self.server {
            if done(c) && done(s.state()) && (self.client.tap.peer_fin || self.closing) {
                return Some(Outcome::Closed);
            }
        }
        None
    }

    fn splice_step(&mut self, env: &mut Env<'_>) -> Outcome {
        if self.full_proxy || self.closing {
            return Outcome::Continue;
        }
        let Some(server) = &mut self.server else {
            return Outcome::Continue;
        };
        let established =
            self.client.state() == State::Established && server.state() == State::Established;
        if !established || !self.to_server.is_empty() || !self.to_client.is_empty() {
            return Outcome::Continue;
        }
        match self.phase {
            Phase::Relay if self.await_request => Outcome::Continue,
            Phase::Relay => {
                // The request (or what followed the login) is in the server leg: drain now.
                // Waiting for the server to acknowledge it first would let a client that keeps
                // sending hold the connection in the proxy for good; the drain's quiet
                // condition includes the server's acknowledgement anyway.
                self.phase = Phase::Draining {
                    since_ms: env.now_ms,
                };
                Outcome::Continue
            }
            Phase::Draining { since_ms } => {
                let quiet = self.client.socket().send_queue() == 0
                    && self.client.socket().recv_queue() == 0
                    && server.socket().send_queue() == 0
                    && server.socket().recv_queue() == 0;
                if quiet {
                    match splice::compute(
                        &self.key,
                        &self.client.tap,
                        &server.tap,
                        env.now_ms as u32,
                        self.held_tsval,
                    ) {
                        Ok(conn) => return Outcome::Spliced(Box::new(conn)),
                        Err(SpliceError::NotQuiet | SpliceError::NoHandshake) => {}
                        Err(SpliceError::Fallback(cause)) => {
                            log::info!("{}: kept as a full proxy: {}", self.key, cause.describe());
                            self.events.fallback = Some(cause);
                            self.full_proxy = true;
                            self.phase = Phase::Relay;
                            self.held = Vec::new();
                            return Outcome::Continue;
                        }
                    }
                }
                if env.now_ms.saturating_sub(since_ms) > self.drain_timeout_ms {
                    self.client.socket().abort();
                    server.socket().abort();
                    return Outcome::DrainTimeout;
                }
                Outcome::Continue
            }
            Phase::Auth => Outcome::Continue,
        }
    }
}

/// The leg's peer closed in order: its FIN received and the box's acknowledged, no RST.
fn finished(leg: &Leg) -> bool {
    leg.tap.peer_fin && !leg.tap.peer_rst && matches!(leg.state(), State::TimeWait | State::Closed)
}

/// Closes `to` once `from` has received the peer's FIN and all its data went across.
fn pass_fin(from: &mut Leg, to: &mut Leg, from_finished: bool) {
    let f = from.socket();
    let fin_seen = match f.state() {
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait => true,
        // The leg may finish in order before `to` is idle (and then be reset by its peer
        // answering a late duplicate).
        State::Closed => from_finished,
        _ => false,
    };
    // Only once `to` has everything acknowledged, so its FIN travels alone: smoltcp 0.14 can
    // lose a FIN sent with data in flight for good (a fast retransmit with only the FIN
    // outstanding clears the retransmission timer; see tests/sim_forward.rs).
    let t = to.socket();
    if fin_seen && f.recv_queue() == 0 && t.may_send() && t.send_queue() == 0 {
        t.close();
    }
}

/// Both FINs exchanged (TIME-WAIT still answers a retransmitted FIN) or reset.
fn closed_or_waiting(s: State) -> bool {
    matches!(s, State::Closed | State::TimeWait)
}

/// Moves as many bytes as fit from `from`'s receive buffer to `to`'s send buffer; returns
/// how many.
fn copy(from: &mut Leg, to: &mut Leg) -> usize {
    let t = to.socket();
    if !t.may_send() {
        return 0;
    }
    let room = t.send_capacity() - t.send_queue();
    if room == 0 {
        return 0;
    }
    from.socket()
        .recv(|data| {
            let n = data.len().min(room);
            let sent = to.socket().send_slice(&data[..n]).unwrap_or(0);
            (sent, sent)
        })
        .unwrap_or(0)
}
