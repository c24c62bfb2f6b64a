//! The `auth` section and the login settings of `proxy` rules: which directory a rule's
//! logins go to, which logins it takes, where a browser is asked for its password.

use std::time::Duration;

use super::super::duration;
use super::super::schema::{RawAuth, RawRadius, RawRule, RawVirtualHttp};
use super::super::types::*;
use super::super::values::parse_ipv4;
use super::{at, duration_or, invalid, Res};

/// Servers `auth.radius` takes at most: one to ask and fallbacks.
const MAX_RADIUS_SERVERS: usize = 4;
/// Longest shared secret (RFC 2865 sets no bound; FreeRADIUS's own limit).
const MAX_SECRET: usize = 128;

pub(super) fn auth(raw: &RawAuth, links: &[Link]) -> Res<Auth> {
    Ok(Auth {
        cache_timeout: duration_or(
            "auth.cache_timeout",
            raw.cache_timeout.as_ref(),
            Auth::default().cache_timeout,
        )?,
        cache_idle: match &raw.cache_idle {
            None => None,
            Some(s) => Some(at("auth.cache_idle", duration::parse(&s.0))?),
        },
        virtual_http: match &raw.virtual_http {
            None => None,
            Some(v) => Some(virtual_http(v, links)?),
        },
        radius: match &raw.radius {
            None => None,
            Some(r) => Some(radius(r)?),
        },
    })
}

fn virtual_http(raw: &RawVirtualHttp, links: &[Link]) -> Res<VirtualHttp> {
    let p = "auth.virtual_http";
    let address = at(&format!("{p}.address"), parse_ipv4(&raw.address))?;
    if !links.iter().any(|l| l.is_own_address(address)) {
        return invalid(
            format!("{p}.address"),
            format!(
                "{address} is not one of the box's addresses (the `addresses` of a port or a VLAN)"
            ),
        );
    }
    let port = match raw.port {
        None => VirtualHttp::DEFAULT_PORT,
        Some(n @ 1..=65535) => n as u16,
        Some(n) => return invalid(format!("{p}.port"), format!("{n} is not a port (1-65535)")),
    };
    if let Some(h) = &raw.host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if h.len() > 253 || !h.split('.').all(label_ok) {
            return invalid(
                format!("{p}.host"),
                format!("{h:?} is not a host name (letters, digits, '-' and '.')"),
            );
        }
    }
    Ok(VirtualHttp {
        address,
        port,
        host: raw.host.clone(),
    })
}

fn radius(raw: &RawRadius) -> Res<Radius> {
    let p = "auth.radius";
    if raw.servers.is_empty() || raw.servers.len() > MAX_RADIUS_SERVERS {
        return invalid(
            format!("{p}.servers"),
            format!("list 1 to {MAX_RADIUS_SERVERS} servers, asked in order"),
        );
    }
    let mut servers = Vec::with_capacity(raw.servers.len());
    for (i, s) in raw.servers.iter().enumerate() {
        let q = format!("{p}.servers[{i}]");
        let (addr, port) = match s.address.rsplit_once(':') {
            Some((a, port)) => match port.parse::<u16>() {
                Ok(n) if n > 0 => (a, n),
                _ => {
                    return invalid(
                        format!("{q}.address"),
                        format!("{port:?} is not a port (1-65535)"),
                    )
                }
            },
            None => (s.address.as_str(), Radius::DEFAULT_PORT),
        };
        let address = at(&format!("{q}.address"), parse_ipv4(addr))?;
        if s.secret.is_empty() || s.secret.len() > MAX_SECRET {
            return invalid(
                format!("{q}.secret"),
                format!("the shared secret must have 1 to {MAX_SECRET} bytes"),
            );
        }
        servers.push(RadiusServer {
            address,
            port,
            secret: s.secret.clone(),
        });
    }
    let timeout = duration_or(
        &format!("{p}.timeout"),
        raw.timeout.as_ref(),
        Radius::DEFAULT_TIMEOUT,
    )?;
    if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&timeout) {
        return invalid(
            format!("{p}.timeout"),
            "the time to wait for an answer must be between 100ms and 60s",
        );
    }
    let retries = match raw.retries {
        None => Radius::DEFAULT_RETRIES,
        Some(n @ 0..=10) => n as u32,
        Some(n) => return invalid(format!("{p}.retries"), format!("{n} is more than 10")),
    };
    let nas_identifier = raw
        .nas_identifier
        .clone()
        .unwrap_or_else(|| Radius::DEFAULT_NAS_IDENTIFIER.to_owned());
    if nas_identifier.is_empty() || nas_identifier.len() > 253 {
        return invalid(
            format!("{p}.nas_identifier"),
            "a NAS-Identifier has 1 to 253 bytes",
        );
    }
    Ok(Radius {
        servers,
        timeout,
        retries,
        nas_identifier,
    })
}

/// The login settings of rule `p`, given its action (after its own checks).
pub(super) fn rule_login(
    p: &str,
    r: &RawRule,
    action: Action,
    auth: &Auth,
    have_users: bool,
) -> Res<RuleLogin> {
    let given = [
        ("backend", r.backend.is_some()),
        ("login", r.login.is_some()),
        ("http_login", r.http_login.is_some()),
    ];
    let method = match action {
        Action::Proxy { auth, .. } if auth != AuthMethod::None => auth,
        _ => {
            if let Some((key, _)) = given.iter().find(|(_, g)| *g) {
                return invalid(
                    format!("{p}.{key}"),
                    format!("`{key}` is only allowed with action proxy and an auth method"),
                );
            }
            return Ok(RuleLogin::default());
        }
    };
    let login = RuleLogin {
        backend: r.backend.unwrap_or_default(),
        scope: r.login.unwrap_or_default(),
        http: r.http_login.unwrap_or_default(),
    };
    if login.backend.uses_local() && !have_users {
        let at = if r.backend.is_some() {
            "backend"
        } else {
            "auth"
        };
        return invalid(
            format!("{p}.{at}"),
            format!(
                "auth {method} with backend {} needs users, but no users are configured",
                login.backend
            ),
        );
    }
    if login.backend.uses_radius() && auth.radius.is_none() {
        return invalid(
            format!("{p}.backend"),
            format!("backend {} needs auth.radius", login.backend),
        );
    }
    if login.scope == LoginScope::Rule && r.name.is_none() {
        return invalid(
            format!("{p}.login"),
            "`login: rule` needs the rule's `name` (its logins are kept under it)",
        );
    }
    if r.http_login.is_some() && method != AuthMethod::HttpBasic {
        return invalid(
            format!("{p}.http_login"),
            "`http_login` is only allowed with auth http-basic",
        );
    }
    if method == AuthMethod::HttpBasic
        && login.http == HttpLogin::Virtual
        && auth.virtual_http.is_none()
    {
        return invalid(
            format!("{p}.auth"),
            "auth http-basic asks for the password at the box's virtual HTTP origin: set \
             auth.virtual_http (an address of the box), or `http_login: in-band` on the rule \
             (the browser then sends the password to the server with every request)",
        );
    }
    Ok(login)
}
