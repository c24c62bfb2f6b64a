//! The RADIUS client of the login verifier threads (`auth.radius`): one PAP Access-Request
//! per login (RFC 2865), with a Message-Authenticator (RFC 3579), to the configured servers in
//! order. The codec is [`packet`] (pure); this module owns the sockets and the waiting.
//!
//! Rules a caller relies on:
//! - [`RadiusClient::authenticate`] blocks the calling thread, at most servers × (retries + 1)
//!   × timeout (plus the microseconds of building packets), and never panics. It is meant for
//!   the verifier threads (`crate::verifier`), never the control lcore.
//! - Several threads may call it at once: each call opens its own UDP socket per server,
//!   `connect`ed to that server, so the kernel hands a call only its own server's datagrams
//!   and answers never cross between calls. A fresh random identifier and Request
//!   Authenticator per server asked (OsRng) make a stale or forged answer fail the checks.
//! - A server is asked `retries + 1` times, each send the identical datagram (so the server's
//!   duplicate detection answers from its cache), waiting `timeout` after each; a datagram
//!   that fails [`packet::check_response`] is counted and ignored, and the wait goes on until
//!   that try's timeout without a new send. An ICMP port unreachable (`ConnectionRefused` on
//!   the connected socket) moves on to the next server at once.
//! - The first server that answers decides: Access-Accept → [`RadiusAnswer::Accept`];
//!   Access-Reject, and Access-Challenge (PAP has nothing to answer it with) →
//!   [`RadiusAnswer::Reject`]. A reject is final: the next server is asked only when one is
//!   silent.
//! - A user name that is empty or longer than 253 bytes, or a password longer than 128 bytes,
//!   cannot be sent: `Reject` at once, and no counter moves (no directory was asked; the
//!   caller counts the failed login).
//! - The client's own copies of the password (the request datagram holds it hidden) are
//!   zeroed when the call returns, on every path.
//!
//! Counters ([`RadiusCounters`], one list in `radius_counters!`): `requests` counts
//! Access-Requests built (one per server asked), `retransmissions` the re-sends, `timeouts`
//! the tries that ended without a valid answer, `bad_responses` the datagrams ignored,
//! `accepts` and `rejects` the answers used, `unavailable` the calls no server answered.

pub mod packet;

use std::io::ErrorKind;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use common::config::{Radius, RadiusServer};

use packet::{Authenticator, Code, MAX_ATTRIBUTE_VALUE, MAX_PACKET, MAX_PASSWORD};

/// What a directory said about one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusAnswer {
    Accept,
    Reject,
    /// No server gave a valid answer (all silent, unreachable or answering garbage).
    NoAnswer,
}

/// Declares each counter once: the atomic in [`RadiusCounters`], the field of
/// [`RadiusStats`] (and so its JSON key) and the snapshot.
macro_rules! radius_counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Counters, shared (`Arc`) between the verifier threads and the statistics.
        #[derive(Debug, Default)]
        pub struct RadiusCounters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A copy of [`RadiusCounters`] at one moment (`connections.radius` in the stats).
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        pub struct RadiusStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl RadiusCounters {
            pub fn snapshot(&self) -> RadiusStats {
                RadiusStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

radius_counters! {
    /// Access-Requests built: one per server asked per login.
    requests,
    /// Re-sends of a request to a server that had not answered within the timeout.
    retransmissions,
    /// Access-Accepts used.
    accepts,
    /// Access-Rejects (and Access-Challenges) used.
    rejects,
    /// Tries that ended with no valid answer within the timeout.
    timeouts,
    /// Datagrams ignored: malformed, wrong identifier or code, or an authenticator that does
    /// not check (a wrong shared secret on one side, or a forgery).
    bad_responses,
    /// Logins no server answered ([`RadiusAnswer::NoAnswer`]).
    unavailable,
}

/// The longest wait for one try, whatever the configuration says.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The RADIUS client of one `auth.radius` configuration. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct RadiusClient {
    settings: Radius,
    counters: Arc<RadiusCounters>,
}

/// How asking one server ended.
enum Asked {
    Answered(Code),
    /// Silent for every try, unreachable, or the request could not be sent: ask the next.
    Silent,
}

impl RadiusClient {
    pub fn new(cfg: &Radius) -> RadiusClient {
        RadiusClient {
            settings: cfg.clone(),
            counters: Arc::default(),
        }
    }

    /// The configuration the client was built from (a reload keeps the client, and its
    /// counters, when this did not change).
    pub fn settings(&self) -> &Radius {
        &self.settings
    }

    pub fn counters(&self) -> &Arc<RadiusCounters> {
        &self.counters
    }

    /// Asks the servers in order about `name` and `password` (rules in the module docs).
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> RadiusAnswer {
        if name.is_empty() || name.len() > MAX_ATTRIBUTE_VALUE || password.len() > MAX_PASSWORD {
            return RadiusAnswer::Reject;
        }
        for server in &self.settings.servers {
            match self.ask(server, name, password) {
                Asked::Answered(Code::Accept) => {
                    bump(&self.counters.accepts);
                    return RadiusAnswer::Accept;
                }
                Asked::Answered(Code::Reject | Code::Challenge) => {
                    bump(&self.counters.rejects);
                    return RadiusAnswer::Reject;
                }
                Asked::Silent => {}
            }
        }
        bump(&self.counters.unavailable);
        log::warn!(
            "radius: no answer from any of {} server(s)",
            self.settings.servers.len()
        );
        RadiusAnswer::NoAnswer
    }

    fn ask(&self, server: &RadiusServer, name: &[u8], password: &[u8]) -> Asked {
        let to = SocketAddrV4::new(server.address.into(), server.port);
        let mut random = [0u8; 1 + packet::BLOCK];
        if let Err(e) = OsRng.try_fill_bytes(&mut random) {
            log::warn!("radius {to}: no random bytes for the request: {e}");
            return Asked::Silent;
        }
        let id = random[0];
        let mut authenticator: Authenticator = [0; packet::BLOCK];
        authenticator.copy_from_slice(&random[1..]);
        let secret = server.secret.as_bytes();
        let request = match packet::encode_access_request(
            id,
            &authenticator,
            name,
            password,
            secret,
            self.settings.nas_identifier.as_bytes(),
        ) {
            Ok(p) => Wiped(p),
            Err(e) => {
                log::warn!("radius {to}: cannot build the request: {e}");
                return Asked::Silent;
            }
        };
        let socket = match UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.connect(to).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("radius {to}: cannot open a socket: {e}");
                return Asked::Silent;
            }
        };
        bump(&self.counters.requests);
        let mut buf = [0u8; MAX_PACKET];
        for attempt in 0..=self.settings.retries {
            if attempt > 0 {
                bump(&self.counters.retransmissions);
            }
            if let Err(e) = socket.send(&request.0) {
                log_socket_error(to, "send", &e);
                return Asked::Silent;
            }
            // Clamped so no configured value can overflow the clock (the config allows 60 s).
            let deadline = Instant::now() + self.settings.timeout.min(MAX_TIMEOUT);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    bump(&self.counters.timeouts);
                    log::debug!("radius {to}: no answer within {:?}", self.settings.timeout);
                    break;
                }
                if let Err(e) = socket.set_read_timeout(Some(left)) {
                    log_socket_error(to, "set a read timeout", &e);
                    return Asked::Silent;
                }
                match socket.recv(&mut buf) {
                    Ok(n) => match packet::check_response(&buf[..n], id, &authenticator, secret) {
                        Ok(code) => return Asked::Answered(code),
                        Err(why) => {
                            bump(&self.counters.bad_responses);
                            log::debug!("radius {to}: ignored a response: {why}");
                        }
                    },
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        log_socket_error(to, "receive", &e);
                        return Asked::Silent;
                    }
                }
            }
        }
        Asked::Silent
    }
}

fn log_socket_error(to: SocketAddrV4, what: &str, e: &std::io::Error) {
    if e.kind() == ErrorKind::ConnectionRefused {
        // ICMP port unreachable: nothing listens there, the next server is asked at once.
        log::debug!("radius {to}: port unreachable");
    } else {
        log::warn!("radius {to}: cannot {what}: {e}");
    }
}

/// A buffer that held a password (the request holds it hidden: with the secret, that is the
/// password), zeroed when dropped so it does not linger in freed heap memory.
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the compiler from dropping the stores to memory about to be freed.
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests;
