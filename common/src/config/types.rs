//! The validated configuration as the rest of the box sees it: plain public fields, typed
//! addresses and durations, and the two questions asked of it at run time (which policy rule
//! matches a packet, does a password belong to a user).
//!
//! Nothing here is constructed from YAML directly: `schema` holds what serde reads and
//! `validate` turns it into these types, so every value here has passed its checks.

use core::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use super::ports::*;
use super::values::{Cidr, PortRange};
use crate::wire::Ipv4Addr;

/// `Display` for a keyword enum: each variant shows as the word the YAML spells it with.
macro_rules! keyword_display {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($ty::$variant => $word,)+
                })
            }
        }
    };
}

/// The whole configuration of one box, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Extra EAL arguments, appended after the ones the box derives from `interfaces` and
    /// `workers` (device arguments, lcores).
    pub eal: Vec<String>,
    /// The ports, in DPDK port order.
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub workers: Workers,
    pub flow_table: FlowTable,
    /// Ordered; the first matching rule wins and a packet matching none is denied.
    pub policy: Vec<Rule>,
    pub users: Vec<User>,
    pub auth: Auth,
    pub proxy: Proxy,
    pub capture: Capture,
}

/// A static route: traffic to `to` goes to the neighbour `via` on `interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub to: Cidr,
    pub via: Ipv4Addr,
    pub interface: Iface,
}

/// The poll-mode workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub count: u16,
    /// Explicit lcore ids, one per worker; empty means the EAL's choice.
    pub lcores: Vec<u32>,
}

/// The fast path's flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTable {
    /// Entries for the whole box (split across the workers' shards),
    /// [`FlowTable::MIN_CAPACITY`] at least.
    pub capacity: u32,
    pub timeouts: Timeouts,
}

impl FlowTable {
    pub const DEFAULT_CAPACITY: u32 = 1 << 16;
    /// The smallest table accepted, and the smallest shard a worker gets.
    pub const MIN_CAPACITY: u32 = 1024;
    /// The largest table accepted: 2^28 entries of 48 bytes and a tag are already 14 GiB.
    pub const MAX_CAPACITY: u32 = 1 << 28;
}

/// Idle timeouts by connection state, conntrack-like. Each is below 24 days because the fast
/// path keeps time as wrapping 32-bit milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub syn_sent: Duration,
    pub syn_recv: Duration,
    pub established: Duration,
    pub fin_wait: Duration,
    pub close_wait: Duration,
    pub last_ack: Duration,
    pub time_wait: Duration,
    pub close: Duration,
    pub udp: Duration,
    pub icmp: Duration,
}

impl Default for Timeouts {
    /// The Linux conntrack defaults, except `close_wait` (see there).
    fn default() -> Self {
        Timeouts {
            syn_sent: Duration::from_secs(120),
            syn_recv: Duration::from_secs(60),
            established: Duration::from_secs(5 * 24 * 3600),
            fin_wait: Duration::from_secs(120),
            // Unlike conntrack's 60 s: a half-closed connection (one FIN, acknowledged) may
            // keep sending the other way for as long as an established one, and the box does
            // not pick connections up mid-stream.
            close_wait: Duration::from_secs(5 * 24 * 3600),
            last_ack: Duration::from_secs(30),
            time_wait: Duration::from_secs(120),
            close: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            icmp: Duration::from_secs(30),
        }
    }
}

/// Settings of the authenticators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// How long a successful authentication is remembered for the client address (an
    /// absolute timeout: using the login does not extend it).
    pub cache_timeout: Duration,
    /// A login no connection has used for this long is forgotten earlier; `None`: never.
    pub cache_idle: Option<Duration>,
    /// Where `http-basic` rules ask for the password (unless a rule says `in-band`).
    pub virtual_http: Option<VirtualHttp>,
    /// The RADIUS directory of rules with `backend: radius` or `radius-then-local`.
    pub radius: Option<Radius>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            cache_timeout: Duration::from_secs(300),
            cache_idle: None,
            virtual_http: None,
            radius: None,
        }
    }
}

/// The virtual HTTP origin (`auth.virtual_http`): an address and port of the box where
/// browsers are sent to log in, so they hold the password for the box, never for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHttp {
    /// One of the box's own addresses.
    pub address: Ipv4Addr,
    pub port: u16,
    /// The name in the redirect URLs (it must resolve to `address`); the address if unset.
    pub host: Option<String>,
}

impl VirtualHttp {
    /// HTTP's port (RFC 9110 §4.2.1): the port when none is given, and the one a URL leaves
    /// out.
    pub const DEFAULT_PORT: u16 = 80;

    /// `host[:port]` as it appears in a URL.
    pub fn authority(&self) -> String {
        let host = self
            .host
            .clone()
            .unwrap_or_else(|| self.address.to_string());
        if self.port == Self::DEFAULT_PORT {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A RADIUS directory (`auth.radius`): servers asked in order, each `retries + 1` times at
/// most, `timeout` apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Radius {
    pub servers: Vec<RadiusServer>,
    pub timeout: Duration,
    /// Retransmissions to a server that does not answer, before the next one is asked.
    pub retries: u32,
    /// The `NAS-Identifier` the requests carry (FreeRADIUS logs it).
    pub nas_identifier: String,
}

impl Radius {
    pub const DEFAULT_PORT: u16 = 1812;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const DEFAULT_RETRIES: u32 = 2;
    pub const DEFAULT_NAS_IDENTIFIER: &'static str = "cutthrough";
}

/// One RADIUS server and the secret the box shares with it.
#[derive(Clone, PartialEq, Eq)]
pub struct RadiusServer {
    pub address: Ipv4Addr,
    pub port: u16,
    pub secret: String,
}

impl fmt::Debug for RadiusServer {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusServer")
            .field("address", &self.address)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Limits of the participating stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxy {
    /// Connections the participating stack holds at once (authenticating, relaying,
    /// draining, or fully proxied): each costs two TCP legs with their buffers. A SYN to a
    /// `proxy` rule beyond this is refused (its placeholder removed, counted); the client's
    /// retransmission gets in once others have been spliced or closed.
    pub max_connections: u32,
    /// How long a drain may wait for both sides to go quiet before both legs are reset.
    pub drain_timeout: Duration,
    /// When a SYN to a `proxy` rule is answered with a SYN cookie instead of a new
    /// connection.
    pub syn_cookies: SynCookies,
    /// The most MSS the box announces to a client before it knows what the server accepts
    /// (it answers the client first for `line` and `http-basic`, and with a SYN cookie): the
    /// figure firewalls commonly clamp to, so a server behind a VPN or PPPoE path rarely
    /// accepts less than the client was told.
    pub client_mss: u16,
    /// What the box remembers of each server's SYN-ACK options, so later connections to it
    /// are told what fits from the start.
    pub server_options: ServerOptionsCache,
}

/// The bounded cache of servers' handshake options (`proxy.server_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptionsCache {
    /// Servers remembered at most (the least recently learnt is forgotten first); 0 turns
    /// the cache off.
    pub entries: u32,
    /// How long what a server's SYN-ACK said is trusted.
    pub max_age: Duration,
}

/// The smallest MSS `proxy.client_mss` may be (RFC 9293's default for IPv4).
pub const MIN_CLIENT_MSS: u16 = crate::wire::tcp::DEFAULT_MSS;
/// The most servers `proxy.server_options.entries` may remember.
pub const MAX_SERVER_OPTIONS: u64 = 1_000_000;

/// SYN cookies for `proxy` rules: the SYN-ACK's sequence number encodes the handshake, so the
/// box keeps nothing for a SYN and builds the connection when the client's ACK proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SynCookies {
    /// Only while the handshakes pending with the box fill their table (a SYN flood), like
    /// Linux's `tcp_syncookies = 1`.
    #[default]
    Auto,
    /// For every SYN to a `proxy` rule.
    Always,
    /// Never: beyond the pending-handshake table SYNs are refused (counted).
    Never,
}

/// The most connections `proxy.max_connections` may allow.
pub const MAX_PROXIED: u64 = 1_000_000;

impl Proxy {
    /// How long a drain may take before both legs are reset.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            max_connections: 16_384,
            drain_timeout: Proxy::DEFAULT_DRAIN_TIMEOUT,
            syn_cookies: SynCookies::Auto,
            client_mss: 1380,
            server_options: ServerOptionsCache {
                entries: 4096,
                max_age: Duration::from_secs(600),
            },
        }
    }
}

/// Packet captures the box writes itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    /// Dropped packets to a pcapng ring; `None`: not captured (and nothing spent on it).
    pub drops: Option<DropCapture>,
}

/// A size- and rate-limited pcapng ring of dropped packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCapture {
    /// The first file of the ring; the others are `PATH.1` .. `PATH.(files-1)`.
    pub path: PathBuf,
    /// A file is closed and the next one of the ring begun before it would exceed this.
    pub file_size: u64,
    /// Files in the ring: the oldest is overwritten.
    pub files: u32,
    /// Packets per second for the whole box, shared evenly by the workers.
    pub rate: u32,
    /// Bytes kept of each frame (the original length is recorded too).
    pub snaplen: u32,
}

impl DropCapture {
    pub const DEFAULT_FILE_SIZE: u64 = 16 << 20;
    pub const DEFAULT_FILES: u32 = 4;
    pub const DEFAULT_RATE: u32 = 100;
    pub const DEFAULT_SNAPLEN: u32 = 256;
    /// The smallest file accepted.
    pub const MIN_FILE_SIZE: u64 = 64 << 10;
    /// Room a file needs beyond one frame of `snaplen` bytes: the section and interface
    /// headers and one packet block's own fields and options fit in far less.
    pub const FILE_OVERHEAD: u64 = 4 << 10;
    pub const MAX_FILES: u32 = 1000;
    /// Above this the control lcore would spend its time writing drops.
    pub const MAX_RATE: u32 = 100_000;

    /// The path of file `i` of the ring.
    pub fn file(&self, i: u32) -> PathBuf {
        if i == 0 {
            self.path.clone()
        } else {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        }
    }
}

/// What a port or VLAN is part of, for the policy (`zone`, `to_zone` of a rule); `any`
/// only in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    Inside,
    Outside,
    #[default]
    Any,
}

impl Zone {
    /// Whether a rule written for `self` applies to a packet that arrived in `packet`.
    pub fn matches(self, packet: Zone) -> bool {
        self == Zone::Any || self == packet
    }
}

keyword_display!(Zone {
    Inside => "inside",
    Outside => "outside",
    Any => "any",
});

/// The IP protocol a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    #[default]
    Any,
}

impl Protocol {
    /// The IP protocol number, or `None` for `any`.
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::Tcp => Some(6),
            Protocol::Udp => Some(17),
            Protocol::Icmp => Some(1),
            Protocol::Any => None,
        }
    }

    /// Whether a rule written for `self` applies to IP protocol number `proto`.
    pub fn matches(self, proto: u8) -> bool {
        match self.number() {
            Some(n) => n == proto,
            None => true,
        }
    }

    /// Whether the protocol has ports a rule may match on.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

keyword_display!(Protocol {
    Tcp => "tcp",
    Udp => "udp",
    Icmp => "icmp",
    Any => "any",
});

/// How a proxied connection's user is authenticated before the splice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// No authentication.
    None,
    /// The box prompts `Username: ` and `Password: ` before any application data.
    Line,
    /// HTTP Basic credentials: at the virtual HTTP origin, or in the first request (in-band).
    HttpBasic,
}

keyword_display!(AuthMethod {
    None => "none",
    Line => "line",
    HttpBasic => "http-basic",
});

/// When a proxied connection is handed to the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplicePoint {
    /// As soon as authentication succeeded.
    AfterAuth,
    /// After the first request has been read and forwarded to the server.
    AfterRequest,
    /// Never: the connection stays fully proxied (the conventional proxy).
    Never,
}

impl SplicePoint {
    /// The splice point a proxy rule gets when it names none: a request-based authenticator
    /// has to read the request anyway, the others can splice right after authenticating.
    pub fn default_for(auth: AuthMethod) -> SplicePoint {
        match auth {
            AuthMethod::HttpBasic => SplicePoint::AfterRequest,
            AuthMethod::None | AuthMethod::Line => SplicePoint::AfterAuth,
        }
    }
}

keyword_display!(SplicePoint {
    AfterAuth => "after-auth",
    AfterRequest => "after-request",
    Never => "never",
});

/// What happens to a connection (TCP: its SYN) that matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Deny,
    Pass,
    Proxy {
        auth: AuthMethod,
        splice: SplicePoint,
    },
}

/// One policy rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: Option<String>,
    /// The zone the packet arrives from (its ingress port's).
    pub zone: Zone,
    /// The zone it leaves into (the port its route goes out of).
    pub to_zone: Zone,
    pub protocol: Protocol,
    pub source: Cidr,
    pub destination: Cidr,
    /// Destination ports; empty matches every port (and packets without ports).
    pub ports: Vec<PortRange>,
    pub action: Action,
    /// How the logins of a `proxy` rule with authentication are checked and shared.
    pub login: RuleLogin,
}

impl Rule {
    /// The rule's name in listings and log lines: its `name`, or its position (`#3`).
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("#{index}"))
    }
}

/// Where a rule's logins are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The users of the configuration file.
    #[default]
    Local,
    /// The RADIUS servers of `auth.radius`; no answer from any is a refusal ("authentication
    /// unavailable").
    Radius,
    /// RADIUS, and the local users only while no RADIUS server answers (a reject is final).
    RadiusThenLocal,
}

impl Backend {
    pub fn uses_local(self) -> bool {
        matches!(self, Backend::Local | Backend::RadiusThenLocal)
    }

    pub fn uses_radius(self) -> bool {
        matches!(self, Backend::Radius | Backend::RadiusThenLocal)
    }
}

keyword_display!(Backend {
    Local => "local",
    Radius => "radius",
    RadiusThenLocal => "radius-then-local",
});

/// Which logins a rule takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginScope {
    /// A login made at any `shared` rule (the ASA's uauth: one login per client address).
    #[default]
    Shared,
    /// Only a login made at this rule (which needs a `name`, the login's key).
    Rule,
}

/// Where an `http-basic` rule asks for the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpLogin {
    /// At the box's virtual HTTP origin (`auth.virtual_http`), after a redirect.
    #[default]
    Virtual,
    /// As if the server asked: the browser then sends the password to the server with
    /// every later request.
    InBand,
}

/// The login settings of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RuleLogin {
    pub backend: Backend,
    pub scope: LoginScope,
    pub http: HttpLogin,
}

/// What the policy looks at in the first packet of a flow (for TCP: its SYN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// The zone it arrived from, and the zone its route leaves into.
    pub from: Zone,
    pub to: Zone,
    /// The IP protocol number.
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The destination port, for TCP and UDP (not in a later fragment).
    pub dport: Option<u16>,
}

impl Rule {
    /// Whether this rule applies to `t`.
    pub fn matches(&self, t: &Traffic) -> bool {
        self.zone.matches(t.from)
            && self.to_zone.matches(t.to)
            && self.protocol.matches(t.protocol)
            && self.source.contains(t.src)
            && self.destination.contains(t.dst)
            && (self.ports.is_empty()
                || t.dport
                    .is_some_and(|p| self.ports.iter().any(|r| r.contains(p))))
    }
}

/// The first rule of `policy` matching `t`, with its index; `None` means it is denied.
pub fn first_match<'a>(policy: &'a [Rule], t: &Traffic) -> Option<(usize, &'a Rule)> {
    policy.iter().enumerate().find(|(_, r)| r.matches(t))
}

impl Config {
    /// The user called `name`, if configured.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// A user the `line` and `http-basic` authenticators accept.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// An argon2 PHC string (`$argon2id$v=19$...`), checked at load time.
    pub password_hash: String,
}

impl fmt::Debug for User {
    // Hashes stay out of logs: they are offline-crackable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl User {
    /// Whether `password` is this user's password. Takes as long as the hash's parameters say
    /// (tens of milliseconds with the defaults): call it off the fast path.
    pub fn verify(&self, password: &[u8]) -> bool {
        use argon2::{Argon2, PasswordHash, PasswordVerifier};
        match PasswordHash::new(&self.password_hash) {
            Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
            Err(_) => false,
        }
    }
}

/// Hashes a password the way `cutthrough hash-password` does: argon2id with the crate's
/// default (OWASP-recommended) parameters and a random salt, as a PHC string.
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{rand_core::OsRng, SaltString};
    use argon2::{Argon2, PasswordHasher};
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_and_zone_matching() {
        assert!(Protocol::Any.matches(47));
        assert!(Protocol::Tcp.matches(6));
        assert!(!Protocol::Tcp.matches(17));
        assert!(Zone::Any.matches(Zone::Inside));
        assert!(Zone::Inside.matches(Zone::Inside));
        assert!(!Zone::Inside.matches(Zone::Outside));
    }

    #[test]
    fn device_names() {
        assert_eq!(
            Device::Vdev("net_af_packet0,iface=ct-in0".into()).name(),
            "net_af_packet0"
        );
        assert_eq!(Device::Pci("0000:03:00.0".into()).name(), "0000:03:00.0");
    }
}
