//! The virtual HTTP origin (`auth.virtual_http`): an address and port of the box where
//! browsers log in. `http-basic` rules redirect a client that has no login there; the box
//! answers `401` itself, checks the credentials with the rule's backend, records the login
//! and redirects back, so the browser holds the box's password for the box's origin only and
//! never sends it to a server. Its connections are client legs of the participating stack
//! without a server leg; the workers hand their packets over as the box's own traffic.

use smoltcp::time::Instant;

use dataplane::contract::ToControl;
use dataplane::packet::Packet;

use common::config::{Action, AuthMethod, HttpLogin, Rule};

use super::conn::{LoginSetup, Peers, ProxyConn};
use super::{parse, Proxy};
use crate::auth::{self, Fingerprints, Scope};
use crate::local::LocalStack;
use dataplane::contract::ControlIo;

impl Proxy {
    /// Whether a frame addressed to the box is for its virtual HTTP origin.
    pub fn for_portal(&self, frame: &[u8]) -> bool {
        let Some(v) = &self.settings.config.auth.virtual_http else {
            return false;
        };
        parse(frame).is_some_and(|(key, ..)| key.dst == v.address && key.dport == v.port)
    }

    /// A segment for the virtual HTTP origin: a SYN opens a connection, the rest go to
    /// theirs (a segment of none is dropped, counted).
    pub fn on_portal<P: Packet>(
        &mut self,
        msg: ToControl<P>,
        now_ms: u64,
        local: &mut LocalStack<P>,
        io: &mut impl ControlIo<P>,
    ) {
        let Some((key, ip_off, syn)) = self.parse_counted(msg.pkt.data()) else {
            return;
        };
        if let Some(opts) = syn {
            if self.forget(key).is_some() {
                self.counters.superseded += 1;
            }
            if !self.has_room(true) {
                return;
            }
            let peers = Peers {
                client: opts,
                server: None,
                client_mss: self.settings.config.proxy.client_mss,
            };
            let now = Instant::from_millis(now_ms as i64);
            let c = ProxyConn::portal(
                key,
                msg.worker,
                msg.iface,
                peers,
                self.fingerprints.clone(),
                now,
            );
            self.conns.insert(key, c);
            self.embryonic.insert(key, now_ms);
        } else if !self.conns.contains_key(&key) {
            self.counters.unknown_dropped += 1;
            return;
        }
        let ip = msg.pkt.data()[ip_off].to_vec();
        self.feed(key, true, ip, now_ms, local, io);
    }
}

/// The login settings for a login at the virtual HTTP origin: those of the rule the
/// redirect named (`rule=` in the target's query), else of the first rule that sends
/// browsers there, else shared logins of the local users.
pub(super) fn portal_login(
    policy: &[Rule],
    target: &[u8],
    fingerprints: &Fingerprints,
) -> LoginSetup {
    let named = query_param(target, b"rule");
    let sends_here = |r: &Rule| {
        matches!(
            r.action,
            Action::Proxy {
                auth: AuthMethod::HttpBasic,
                ..
            }
        ) && r.login.http == HttpLogin::Virtual
    };
    let found = policy
        .iter()
        .enumerate()
        .filter(|(_, r)| sends_here(r))
        .find(|(i, r)| named.as_deref().is_none_or(|n| r.label(*i).as_bytes() == n))
        .or_else(|| policy.iter().enumerate().find(|(_, r)| sends_here(r)));
    let mut setup = LoginSetup::none();
    setup.fingerprints = fingerprints.clone();
    setup.rule = "virtual-http".to_owned();
    if let Some((i, r)) = found {
        setup.rule = r.label(i);
        setup.login = r.login;
        setup.scope = Scope::of(r);
    }
    setup
}

/// What the virtual HTTP origin answers a login: back to the URL the redirect carried, or a
/// short page when it carried none (a user who came to log in directly).
pub(super) fn portal_answer(request: &[u8], user: &str) -> Vec<u8> {
    let head_end = request
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(request.len());
    let line = &request[..head_end];
    let is_head = line.starts_with(b"HEAD ");
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
    let url = query_param(target, b"url").filter(|u| {
        (u.starts_with(b"http://") || u.starts_with(b"https://"))
            && u.iter().all(|&b| b.is_ascii_graphic())
    });
    match url {
        Some(u) => auth::found(&String::from_utf8_lossy(&u), is_head),
        None => auth::ok_text(&format!("Logged in as {user}.\n"), is_head),
    }
}

/// The value of query parameter `name` in a request target, percent-decoded.
fn query_param(target: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let q = target.iter().position(|&b| b == b'?')?;
    target[q + 1..]
        .split(|&b| b == b'&')
        .find_map(|kv| {
            let eq = kv.iter().position(|&b| b == b'=')?;
            (&kv[..eq] == name).then(|| &kv[eq + 1..])
        })
        .and_then(auth::percent_decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: &str) -> String {
        String::from_utf8(portal_answer(request.as_bytes(), "alice")).unwrap()
    }

    #[test]
    fn a_login_goes_back_to_the_url_it_came_from() {
        let a =
            answer("GET /login?rule=web&url=http%3A%2F%2F198.19.0.2%2Fa%3Fb%3D1 HTTP/1.1\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 302 Found\r\n"), "{a}");
        assert!(
            a.contains("\r\nLocation: http://198.19.0.2/a?b=1\r\n"),
            "{a}"
        );
    }

    #[test]
    fn without_a_usable_url_the_login_is_confirmed_in_place() {
        for target in [
            "/",
            "/login?rule=web",
            "/login?url=javascript%3Aalert(1)",
            "/login?url=http%3A%2F%2Fh%0D%0ASet-Cookie%3A%20x",
            "/login?url=%zz",
        ] {
            let a = answer(&format!("GET {target} HTTP/1.1\r\n\r\n"));
            assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{target}: {a}");
            assert!(a.ends_with("Logged in as alice.\n"), "{target}: {a}");
            assert!(!a.contains("Location"), "{target}: {a}");
        }
        let head = answer("HEAD / HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    }

    #[test]
    fn query_parameters() {
        assert_eq!(
            query_param(b"/l?a=1&b=x%20y", b"b").as_deref(),
            Some(&b"x y"[..])
        );
        assert_eq!(query_param(b"/l?ab=1", b"a"), None);
        assert_eq!(query_param(b"/l", b"a"), None);
        assert_eq!(query_param(b"/l?a", b"a"), None);
    }

    #[test]
    fn a_portal_login_takes_the_settings_of_the_rule_the_redirect_named() {
        let config = common::config::parse(
            "interfaces:\n  \
             - {name: inside, zone: inside, device: net_null0, addresses: [198.18.0.254/24]}\n  \
             - {name: outside, zone: outside, device: net_null1, addresses: [198.19.0.254/24]}\n\
             auth:\n  virtual_http: {address: 198.18.0.254}\n\
             policy:\n\
             - {name: a, protocol: tcp, ports: [80], action: proxy, auth: http-basic}\n\
             - {name: b, protocol: tcp, ports: [81], action: proxy, auth: http-basic, login: rule}\n\
             - {protocol: tcp, ports: [82], action: proxy, auth: http-basic}\n\
             users:\n- {name: alice, password_hash: \"$argon2id$v=19$m=19456,t=2,p=1$oBh4WSyBR7MNdVVHmTugKA$FrDuPhMPOuY5cWIFN77ThTJWm0RtUNtmNguXcItWzO0\"}\n",
            "portal-test.yaml",
        )
        .expect("config");
        let fps = Fingerprints::default();
        let b = portal_login(&config.policy, b"/login?rule=b&url=x", &fps);
        assert_eq!((b.rule.as_str(), &b.scope), ("b", &Scope::Rule("b".into())));
        let unnamed = portal_login(&config.policy, b"/login?rule=%232", &fps);
        assert_eq!(
            (unnamed.rule.as_str(), &unnamed.scope),
            ("#2", &Scope::Shared)
        );
        for target in [&b"/"[..], b"/login?rule=nope"] {
            let first = portal_login(&config.policy, target, &fps);
            assert_eq!((first.rule.as_str(), &first.scope), ("a", &Scope::Shared));
        }
        let none = portal_login(&[], b"/", &fps);
        assert_eq!(none.rule, "virtual-http");
    }
}
