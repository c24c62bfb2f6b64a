//! What serde reads from the YAML file, before validation.
//!
//! Values whose checks need a message naming the offending path (addresses, ports, durations,
//! counts) are read as plain strings or wide integers here and checked in `validate`, which
//! reports `path: message` with the line found by `locate`. Keywords (zones, protocols,
//! actions, auth methods) are enums, so a misspelling is caught by serde with its exact line
//! and column. Every struct denies unknown fields: a typo must never silently fall back to a
//! default on a firewall.

use core::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::types::{
    AuthMethod, Backend, HttpLogin, LoginScope, Protocol, SplicePoint, SynCookies, Zone,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub eal: Vec<String>,
    pub interfaces: RawPorts,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub workers: RawWorkers,
    #[serde(default)]
    pub flow_table: RawFlowTable,
    #[serde(default)]
    pub policy: Vec<RawRule>,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub proxy: RawProxy,
    #[serde(default)]
    pub capture: RawCapture,
}

/// `interfaces`: the list of ports, or the map of `inside:` and `outside:` it used to be.
/// The old form is read (and its contents ignored) only so that validation can reject it
/// with its line and a picture of the new one, where serde would only say "invalid type:
/// map, expected a sequence".
#[derive(Debug)]
pub(crate) enum RawPorts {
    List(Vec<RawInterface>),
    /// The keys of the map (`inside`, `outside`), those that are strings.
    OldMap(Vec<String>),
}

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawPorts, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPorts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of ports (`- name: inside`, `zone: inside`, `device: ...`)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPorts, A::Error> {
                let mut ports = Vec::new();
                while let Some(p) = seq.next_element()? {
                    ports.push(p);
                }
                Ok(RawPorts::List(ports))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPorts, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<serde_yaml::Value>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.extend(k.as_str().map(str::to_string));
                }
                Ok(RawPorts::OldMap(keys))
            }
            // `interfaces:` with nothing after it: validation says a port is needed.
            fn visit_unit<E: de::Error>(self) -> Result<RawPorts, E> {
                Ok(RawPorts::List(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterface {
    pub name: String,
    pub zone: Zone,
    pub device: String,
    pub mac: Option<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    pub mtu: Option<u64>,
    pub rx_queues: Option<u64>,
    pub tx_queues: Option<u64>,
    pub rx_descriptors: Option<u64>,
    pub tx_descriptors: Option<u64>,
    #[serde(default)]
    pub vlans: Vec<RawVlan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVlan {
    /// Wide, so that 0 and 4095 get validation's message rather than serde's.
    pub id: u64,
    pub zone: Option<Zone>,
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub to: String,
    pub via: String,
    /// `PORT` or `PORT.ID`, resolved against the interfaces by validation.
    pub interface: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkers {
    pub count: u64,
    #[serde(default)]
    pub lcores: Vec<u64>,
}

impl Default for RawWorkers {
    fn default() -> Self {
        RawWorkers {
            count: 1,
            lcores: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlowTable {
    pub capacity: Option<u64>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub syn_sent: Option<Scalar>,
    pub syn_recv: Option<Scalar>,
    pub established: Option<Scalar>,
    pub fin_wait: Option<Scalar>,
    pub close_wait: Option<Scalar>,
    pub last_ack: Option<Scalar>,
    pub time_wait: Option<Scalar>,
    pub close: Option<Scalar>,
    pub udp: Option<Scalar>,
    pub icmp: Option<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawAction {
    Deny,
    Pass,
    Proxy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<String>,
    #[serde(default)]
    pub zone: Zone,
    #[serde(default)]
    pub to_zone: Zone,
    #[serde(default)]
    pub protocol: Protocol,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub ports: Option<Vec<Scalar>>,
    pub action: RawAction,
    pub auth: Option<AuthMethod>,
    pub splice: Option<SplicePoint>,
    pub backend: Option<Backend>,
    pub login: Option<LoginScope>,
    pub http_login: Option<HttpLogin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    pub name: String,
    pub password_hash: Option<String>,
    /// Read only to reject it with a pointer to `cutthrough hash-password`.
    #[serde(default, deserialize_with = "present")]
    pub password: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub cache_timeout: Option<Scalar>,
    pub cache_idle: Option<Scalar>,
    pub virtual_http: Option<RawVirtualHttp>,
    pub radius: Option<RawRadius>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualHttp {
    pub address: String,
    pub port: Option<u64>,
    pub host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRadius {
    pub servers: Vec<RawRadiusServer>,
    pub timeout: Option<Scalar>,
    pub retries: Option<u64>,
    pub nas_identifier: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRadiusServer {
    /// `ADDRESS` or `ADDRESS:PORT`.
    pub address: String,
    pub secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    pub max_connections: Option<u64>,
    pub drain_timeout: Option<Scalar>,
    pub syn_cookies: Option<SynCookies>,
    pub client_mss: Option<u64>,
    pub server_options: Option<RawServerOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServerOptions {
    pub entries: Option<u64>,
    pub max_age: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapture {
    pub drops: Option<RawDropCapture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDropCapture {
    pub path: String,
    /// Bytes, or a number with a unit (`16MiB`).
    pub file_size: Option<Scalar>,
    pub files: Option<u64>,
    pub rate: Option<u64>,
    pub snaplen: Option<u64>,
}

/// True when the key is there at all, whatever its value (even empty).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// A YAML integer or string, kept as text: ports (`8080` or `"5201-5210"`) and durations
/// (`30` or `"30s"`) come in both forms and are parsed by `validate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
