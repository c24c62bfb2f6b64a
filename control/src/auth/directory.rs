//! Where a login attempt is checked, per rule (`backend`): the configuration's users
//! (argon2), a RADIUS directory, or RADIUS with the local users while no RADIUS server
//! answers. Called on the verifier threads only (a RADIUS exchange waits for the network).

use std::sync::Arc;

use common::config::{Backend, Config, User};

use super::radius::{RadiusAnswer, RadiusClient, RadiusStats};
use super::{check_credentials, Verdict};

/// What the verifier threads check attempts against: cheap to clone (shared parts).
#[derive(Clone)]
pub struct Directory {
    /// The users of the configuration in force when the attempt was made.
    pub users: Arc<[User]>,
    /// `auth.radius`, if configured.
    pub radius: Option<Arc<RadiusClient>>,
}

impl Directory {
    /// The directory of `config`. The RADIUS client of `previous` is kept (with its counters)
    /// when `auth.radius` did not change.
    pub fn new(config: &Config, previous: Option<&Directory>) -> Directory {
        let radius = config.auth.radius.as_ref().map(|cfg| {
            previous
                .and_then(|p| p.radius.as_ref())
                .filter(|r| r.settings() == cfg)
                .cloned()
                .unwrap_or_else(|| Arc::new(RadiusClient::new(cfg)))
        });
        Directory {
            users: Arc::from(config.users.as_slice()),
            radius,
        }
    }

    /// Local users only.
    pub fn local(users: &[User]) -> Directory {
        Directory {
            users: Arc::from(users),
            radius: None,
        }
    }

    /// Checks one attempt with `backend`; `local` is the check of the local users
    /// ([`check_credentials`], or a stand-in in tests).
    pub fn check_with(
        &self,
        backend: Backend,
        local: impl Fn(&[User], &[u8], &[u8]) -> Option<String>,
        name: &[u8],
        password: &[u8],
    ) -> Verdict {
        let radius = match (backend, &self.radius) {
            (Backend::Local, _) => return Verdict::from(local(&self.users, name, password)),
            (_, Some(r)) => r.authenticate(name, password),
            // Configured away by a reload while the attempt waited.
            (_, None) => RadiusAnswer::NoAnswer,
        };
        match (radius, backend) {
            (RadiusAnswer::Accept, _) => match std::str::from_utf8(name) {
                Ok(n) => Verdict::Accepted(n.to_owned()),
                // The name is listed and logged: a directory may accept bytes the box
                // cannot show.
                Err(_) => Verdict::Refused,
            },
            (RadiusAnswer::Reject, _) => Verdict::Refused,
            (RadiusAnswer::NoAnswer, Backend::RadiusThenLocal) => {
                Verdict::from(local(&self.users, name, password))
            }
            (RadiusAnswer::NoAnswer, _) => Verdict::NoDirectory,
        }
    }

    /// [`Directory::check_with`] the configuration's users.
    pub fn check(&self, backend: Backend, name: &[u8], password: &[u8]) -> Verdict {
        self.check_with(backend, check_credentials, name, password)
    }

    /// The RADIUS client's counters, if there is one.
    pub fn radius_stats(&self) -> Option<RadiusStats> {
        self.radius.as_ref().map(|r| r.counters().snapshot())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use common::config::{Radius, RadiusServer};
    use common::wire::Ipv4Addr;

    use super::super::testutil::{users, Counting, ALICE_PASSWORD};
    use super::*;

    /// A directory whose one server is a loopback port nothing listens on: every request is
    /// refused by the host at once (ICMP port unreachable), a directory that does not answer.
    fn silent_directory() -> Directory {
        let cfg = Radius {
            servers: vec![RadiusServer {
                address: Ipv4Addr::new(127, 0, 0, 1),
                port: closed_udp_port(),
                secret: "s".into(),
            }],
            timeout: Duration::from_millis(200),
            retries: 0,
            nas_identifier: "test".into(),
        };
        Directory {
            users: Arc::from(users()),
            radius: Some(Arc::new(RadiusClient::new(&cfg))),
        }
    }

    fn closed_udp_port() -> u16 {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    }

    #[test]
    fn each_backend_asks_what_it_says() {
        let dir = silent_directory();
        let local = Counting::new();
        let check = |b| dir.check_with(b, |_, n, p| local.check(n, p), b"alice", ALICE_PASSWORD);
        assert_eq!(check(Backend::Local), Verdict::Accepted("alice".into()));
        assert_eq!(local.calls.get(), 1);
        assert_eq!(check(Backend::Radius), Verdict::NoDirectory);
        assert_eq!(local.calls.get(), 1, "radius never falls back");
        assert_eq!(
            check(Backend::RadiusThenLocal),
            Verdict::Accepted("alice".into()),
            "the local users while the directory is silent"
        );
        assert_eq!(local.calls.get(), 2);
        let stats = dir.radius_stats().expect("a RADIUS client");
        assert_eq!(stats.unavailable, 2, "{stats:?}");
        // Without `auth.radius` (a reload took it away while an attempt waited).
        let none = Directory::local(users());
        assert_eq!(
            none.check_with(Backend::Radius, |_, n, p| local.check(n, p), b"alice", b"x"),
            Verdict::NoDirectory
        );
        assert!(none.radius_stats().is_none());
    }

    #[test]
    fn a_reload_keeps_the_client_and_its_counters_while_the_settings_stay() {
        let text = |secret: &str| {
            format!(
                "interfaces:\n  \
                 - {{name: inside, zone: inside, device: net_null0, addresses: [198.18.0.254/24]}}\n  \
                 - {{name: outside, zone: outside, device: net_null1, addresses: [198.19.0.254/24]}}\n\
                 auth:\n  radius:\n    servers: [{{address: 127.0.0.1, secret: {secret}}}]\n"
            )
        };
        let load = |secret| common::config::parse(&text(secret), "t.yaml").expect("config");
        let first = Directory::new(&load("a"), None);
        let same = Directory::new(&load("a"), Some(&first));
        let other = Directory::new(&load("b"), Some(&first));
        let ptr = |d: &Directory| Arc::as_ptr(d.radius.as_ref().expect("radius"));
        assert_eq!(ptr(&first), ptr(&same));
        assert_ne!(ptr(&first), ptr(&other));
    }
}
