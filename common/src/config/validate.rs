//! Turns what serde read (`schema`) into the typed [`Config`], checking every value and every
//! cross-reference. The first problem found is returned with the path of the offending value
//! (`policy[3].ports[1]`), which `locate` then turns into a line number.

use std::time::Duration;

use super::duration;
use super::schema::{
    RawAction, RawCapture, RawConfig, RawProxy, RawRule, RawUser, RawWorkers, Scalar,
};
use super::types::*;
use super::values::*;

mod auth;
mod interfaces;

/// A semantic error before it is placed in a file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub path: String,
    pub message: String,
}

type Res<T> = Result<T, Invalid>;

fn invalid<T>(path: impl Into<String>, message: impl Into<String>) -> Res<T> {
    Err(Invalid {
        path: path.into(),
        message: message.into(),
    })
}

/// Attaches `path` to a parse error.
fn at<T>(path: &str, r: Result<T, ParseError>) -> Res<T> {
    r.or_else(|e| invalid(path, e.0))
}

/// A count from `lo` to `hi`, or the error at `path` naming it with its `unit`.
fn bounded(path: &str, value: u64, lo: u64, hi: u64, unit: &str) -> Res<u64> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        invalid(path, format!("{value} {unit}: must be from {lo} to {hi}"))
    }
}

/// DPDK's RTE_MAX_QUEUES_PER_PORT.
const MAX_QUEUES: u64 = 1024;

pub(crate) fn validate(raw: RawConfig) -> Res<Config> {
    let workers = workers(&raw.workers)?;
    let interfaces = interfaces::ports(&raw.interfaces, &workers)?;
    let links = links_of(&interfaces);
    let routes = interfaces::routes(&raw.routes, &links)?;

    let flow_table = flow_table(&raw)?;
    let users = users(&raw.users)?;
    let auth = auth::auth(&raw.auth, &links)?;
    let mut policy = Vec::with_capacity(raw.policy.len());
    for (i, r) in raw.policy.iter().enumerate() {
        let p = format!("policy[{i}]");
        let mut rule = rule(&p, r)?;
        rule.login = auth::rule_login(&p, r, rule.action, &auth, !users.is_empty())?;
        policy.push(rule);
    }

    let proxy = proxy(&raw.proxy)?;
    let capture = capture(&raw.capture, &workers)?;

    Ok(Config {
        eal: raw.eal,
        interfaces,
        routes,
        workers,
        flow_table,
        policy,
        users,
        auth,
        proxy,
        capture,
    })
}

fn proxy(raw: &RawProxy) -> Res<Proxy> {
    let d = Proxy::default();
    let max_connections = match raw.max_connections {
        None => d.max_connections,
        Some(n) => bounded("proxy.max_connections", n, 1, MAX_PROXIED, "connections")? as u32,
    };
    let drain_timeout = duration_or(
        "proxy.drain_timeout",
        raw.drain_timeout.as_ref(),
        d.drain_timeout,
    )?;
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&drain_timeout) {
        return invalid(
            "proxy.drain_timeout",
            format!("{drain_timeout:?}: must be from 100ms to 10m"),
        );
    }
    let client_mss = match raw.client_mss {
        None => d.client_mss,
        Some(n) if (u64::from(MIN_CLIENT_MSS)..=65_495).contains(&n) => n as u16,
        Some(n) => {
            return invalid(
                "proxy.client_mss",
                format!("{n}: must be from {MIN_CLIENT_MSS} to 65495 bytes"),
            )
        }
    };
    let mut server_options = d.server_options;
    if let Some(so) = &raw.server_options {
        let path = "proxy.server_options.entries";
        server_options.entries = match so.entries {
            None => d.server_options.entries,
            Some(n) => bounded(path, n, 0, MAX_SERVER_OPTIONS, "servers")? as u32,
        };
        server_options.max_age = duration_or(
            "proxy.server_options.max_age",
            so.max_age.as_ref(),
            d.server_options.max_age,
        )?;
        if !(Duration::from_secs(1)..=Duration::from_secs(7 * 86_400))
            .contains(&server_options.max_age)
        {
            return invalid(
                "proxy.server_options.max_age",
                format!("{:?}: must be from 1s to 7d", server_options.max_age),
            );
        }
    }
    Ok(Proxy {
        max_connections,
        drain_timeout,
        syn_cookies: raw.syn_cookies.unwrap_or_default(),
        client_mss,
        server_options,
    })
}

fn workers(w: &RawWorkers) -> Res<Workers> {
    // Queue counts derive from the worker count, so it is bounded by the queues a port has.
    if w.count == 0 {
        return invalid("workers.count", "must be at least 1");
    }
    if w.count >= MAX_QUEUES {
        return invalid(
            "workers.count",
            format!(
                "{} workers is too many: at most {} (a port has at most {MAX_QUEUES} TX queues and the control plane needs one)",
                w.count,
                MAX_QUEUES - 1
            ),
        );
    }
    let count = w.count as u16;
    if !w.lcores.is_empty() && w.lcores.len() as u64 != w.count {
        return invalid(
            "workers.lcores",
            format!(
                "lists {} lcores for {} workers (give one lcore per worker, or leave `lcores` out)",
                w.lcores.len(),
                w.count
            ),
        );
    }
    let mut lcores = Vec::with_capacity(w.lcores.len());
    for (i, &l) in w.lcores.iter().enumerate() {
        let p = format!("workers.lcores[{i}]");
        let Ok(l) = u32::try_from(l) else {
            return invalid(p, format!("lcore {l} is out of range"));
        };
        if let Some(j) = lcores.iter().position(|&x| x == l) {
            return invalid(
                p,
                format!("lcore {l} is listed twice (also workers.lcores[{j}])"),
            );
        }
        lcores.push(l);
    }
    Ok(Workers { count, lcores })
}

/// A CIDR that names a network (routes, policy): host bits set are almost always a typo.
fn network(p: &str, s: &str) -> Res<Cidr> {
    let c: Cidr = at(p, s.parse())?;
    if c.has_host_bits() {
        return invalid(
            p,
            format!("`{s}` has host bits set (did you mean {}?)", c.to_network()),
        );
    }
    Ok(c)
}

fn duration_or(p: &str, v: Option<&Scalar>, default: Duration) -> Res<Duration> {
    match v {
        None => Ok(default),
        Some(s) => at(p, duration::parse(&s.0)),
    }
}

fn flow_table(raw: &RawConfig) -> Res<FlowTable> {
    let ft = &raw.flow_table;
    let (min, max) = (FlowTable::MIN_CAPACITY, FlowTable::MAX_CAPACITY);
    let capacity = match ft.capacity {
        None => FlowTable::DEFAULT_CAPACITY,
        Some(c) if (u64::from(min)..=u64::from(max)).contains(&c) => c as u32,
        Some(c) => {
            return invalid(
                "flow_table.capacity",
                format!("{c} flows: must be from {min} to {max} (like 65536 or 1000000)"),
            )
        }
    };
    let d = Timeouts::default();
    let t = &ft.timeouts;
    let p = |name: &str| format!("flow_table.timeouts.{name}");
    let timeouts = Timeouts {
        syn_sent: duration_or(&p("syn_sent"), t.syn_sent.as_ref(), d.syn_sent)?,
        syn_recv: duration_or(&p("syn_recv"), t.syn_recv.as_ref(), d.syn_recv)?,
        established: duration_or(&p("established"), t.established.as_ref(), d.established)?,
        fin_wait: duration_or(&p("fin_wait"), t.fin_wait.as_ref(), d.fin_wait)?,
        close_wait: duration_or(&p("close_wait"), t.close_wait.as_ref(), d.close_wait)?,
        last_ack: duration_or(&p("last_ack"), t.last_ack.as_ref(), d.last_ack)?,
        time_wait: duration_or(&p("time_wait"), t.time_wait.as_ref(), d.time_wait)?,
        close: duration_or(&p("close"), t.close.as_ref(), d.close)?,
        udp: duration_or(&p("udp"), t.udp.as_ref(), d.udp)?,
        icmp: duration_or(&p("icmp"), t.icmp.as_ref(), d.icmp)?,
    };
    Ok(FlowTable { capacity, timeouts })
}

fn users(raw: &[RawUser]) -> Res<Vec<User>> {
    let mut users: Vec<User> = Vec::with_capacity(raw.len());
    for (i, u) in raw.iter().enumerate() {
        let p = format!("users[{i}]");
        if u.password {
            return invalid(
                format!("{p}.password"),
                "plain-text passwords are not accepted: put an argon2 hash in `password_hash` (make one with `cutthrough hash-password`)",
            );
        }
        let name_ok = !u.name.is_empty()
            && !u
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':');
        if !name_ok {
            return invalid(
                format!("{p}.name"),
                format!("`{}` is not a user name: names must be non-empty, without spaces, control characters or `:`", u.name),
            );
        }
        if let Some(j) = users.iter().position(|x| x.name == u.name) {
            return invalid(
                format!("{p}.name"),
                format!("duplicate user `{}` (also users[{j}])", u.name),
            );
        }
        let Some(hash) = &u.password_hash else {
            return invalid(
                p,
                "missing `password_hash` (make one with `cutthrough hash-password`)",
            );
        };
        check_hash(&format!("{p}.password_hash"), hash)?;
        users.push(User {
            name: u.name.clone(),
            password_hash: hash.clone(),
        });
    }
    Ok(users)
}

/// A PHC string argon2 can verify against: known algorithm, valid parameters, salt and hash.
fn check_hash(p: &str, s: &str) -> Res<()> {
    let hint = "make one with `cutthrough hash-password`";
    // Name a foreign scheme (`$2b$` bcrypt, `$6$` crypt) rather than report its syntax.
    if let Some(alg) = s.strip_prefix('$').and_then(|r| r.split('$').next()) {
        if !alg.starts_with("argon2") {
            return invalid(
                p,
                format!(
                    "a `{alg}` hash: only argon2 (argon2id, argon2i, argon2d) is accepted; {hint}"
                ),
            );
        }
    }
    let h = match argon2::PasswordHash::new(s) {
        Ok(h) => h,
        Err(e) => {
            return invalid(
                p,
                format!("not an argon2 PHC string like $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH ({e}); {hint}"),
            )
        }
    };
    if argon2::Algorithm::try_from(h.algorithm).is_err() {
        return invalid(
            p,
            format!(
                "a `{}` hash: only argon2 (argon2id, argon2i, argon2d) is accepted; {hint}",
                h.algorithm
            ),
        );
    }
    if h.salt.is_none() || h.hash.is_none() {
        return invalid(p, format!("the hash has no salt or no output; {hint}"));
    }
    if let Err(e) = argon2::Params::try_from(&h) {
        return invalid(p, format!("bad argon2 parameters ({e}); {hint}"));
    }
    Ok(())
}

fn rule(p: &str, r: &RawRule) -> Res<Rule> {
    let source = match &r.source {
        None => Cidr::ANY,
        Some(s) => network(&format!("{p}.source"), s)?,
    };
    let destination = match &r.destination {
        None => Cidr::ANY,
        Some(s) => network(&format!("{p}.destination"), s)?,
    };
    let mut ports = Vec::new();
    if let Some(list) = &r.ports {
        if !r.protocol.has_ports() {
            return invalid(
                format!("{p}.ports"),
                format!(
                    "ports are only allowed with protocol tcp or udp (this rule's protocol is {})",
                    r.protocol
                ),
            );
        }
        if list.is_empty() {
            return invalid(
                format!("{p}.ports"),
                "an empty list would match nothing; leave `ports` out to match every port",
            );
        }
        for (j, s) in list.iter().enumerate() {
            ports.push(at(&format!("{p}.ports[{j}]"), s.0.parse::<PortRange>())?);
        }
    }
    let action = match r.action {
        RawAction::Deny | RawAction::Pass => {
            for (key, given) in [("auth", r.auth.is_some()), ("splice", r.splice.is_some())] {
                if given {
                    return invalid(
                        format!("{p}.{key}"),
                        format!("`{key}` is only allowed with action proxy"),
                    );
                }
            }
            if r.action == RawAction::Deny {
                Action::Deny
            } else {
                Action::Pass
            }
        }
        RawAction::Proxy => {
            if r.protocol != Protocol::Tcp {
                return invalid(
                    format!("{p}.action"),
                    format!(
                        "action proxy needs protocol tcp (this rule's protocol is {})",
                        r.protocol
                    ),
                );
            }
            let Some(auth) = r.auth else {
                return invalid(
                    format!("{p}.action"),
                    "action proxy needs `auth`: none, line or http-basic",
                );
            };
            Action::Proxy {
                auth,
                splice: r.splice.unwrap_or(SplicePoint::default_for(auth)),
            }
        }
    };
    Ok(Rule {
        name: r.name.clone(),
        zone: r.zone,
        to_zone: r.to_zone,
        protocol: r.protocol,
        source,
        destination,
        ports,
        action,
        login: RuleLogin::default(),
    })
}

fn capture(raw: &RawCapture, workers: &Workers) -> Res<Capture> {
    let Some(d) = &raw.drops else {
        return Ok(Capture::default());
    };
    let p = |f: &str| format!("capture.drops.{f}");
    let path = std::path::PathBuf::from(&d.path);
    if d.path.is_empty() || d.path.ends_with('/') || path.file_name().is_none() {
        return invalid(
            p("path"),
            format!(
                "`{}` is not a file path (like /var/log/cutthrough/drops.pcapng)",
                d.path
            ),
        );
    }
    let file_size = match &d.file_size {
        None => DropCapture::DEFAULT_FILE_SIZE,
        Some(s) => at(&p("file_size"), parse_size(&s.0))?,
    };
    let min = DropCapture::MIN_FILE_SIZE;
    if file_size < min {
        return invalid(
            p("file_size"),
            format!("{file_size} bytes is too small: at least {min} (64KiB)"),
        );
    }
    let files = d.files.unwrap_or(u64::from(DropCapture::DEFAULT_FILES));
    let files = bounded(
        &p("files"),
        files,
        1,
        DropCapture::MAX_FILES.into(),
        "files",
    )?;
    let rate = d.rate.unwrap_or(u64::from(DropCapture::DEFAULT_RATE));
    let max_rate = DropCapture::MAX_RATE.into();
    let rate = bounded(&p("rate"), rate, 1, max_rate, "packets per second")?;
    // Each worker enforces its share of the rate: a share of zero would capture nothing.
    if rate < u64::from(workers.count) {
        return invalid(
            p("rate"),
            format!(
                "{rate} packets per second is less than one per worker ({} workers share the rate)",
                workers.count
            ),
        );
    }
    let snaplen = d.snaplen.unwrap_or(u64::from(DropCapture::DEFAULT_SNAPLEN));
    let snaplen = bounded(&p("snaplen"), snaplen, 64, 65535, "bytes")?;
    let need = snaplen + DropCapture::FILE_OVERHEAD;
    if file_size < need {
        return invalid(
            p("file_size"),
            format!(
                "{file_size} bytes cannot hold a packet of snaplen {snaplen} and the file's headers: at least {need}"
            ),
        );
    }
    Ok(Capture {
        drops: Some(DropCapture {
            path,
            file_size,
            files: files as u32,
            rate: rate as u32,
            snaplen: snaplen as u32,
        }),
    })
}
