//! The peers' settings: TCP sysctls and the default route's advmss, per namespace, put back
//! by a guard.

use super::*;

/// One change to a peer's TCP from the kernel's defaults, in its namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tweak {
    /// A sysctl under /proc/sys (dotted name) and its value.
    Sysctl(&'static str, &'static str),
    /// The MSS the peer announces (`advmss` on its default route).
    AdvMss(u16),
}

/// A named set of tweaks applied to one side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting {
    pub(crate) name: &'static str,
    pub(crate) tweaks: &'static [Tweak],
}

pub(crate) const TS_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_timestamps", "0");
pub(crate) const SACK_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_sack", "0");
pub(crate) const WSCALE_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_window_scaling", "0");
pub(crate) const ECN_ON: Tweak = Tweak::Sysctl("net.ipv4.tcp_ecn", "1");
pub(crate) const SMALL_RMEM: Tweak = Tweak::Sysctl("net.ipv4.tcp_rmem", "4096 8192 16384");

pub(crate) const DEFAULTS: Setting = Setting {
    name: "defaults",
    tweaks: &[],
};
pub(crate) const TIMESTAMPS_OFF: Setting = Setting {
    name: "timestamps off",
    tweaks: &[TS_OFF],
};
pub(crate) const SACK_OFF_SETTING: Setting = Setting {
    name: "SACK off",
    tweaks: &[SACK_OFF],
};
pub(crate) const MSS_1220: Setting = Setting {
    name: "MSS 1220",
    tweaks: &[Tweak::AdvMss(1220)],
};

/// Every setting of the matrix (each applied to one side at a time).
pub(crate) const SETTINGS: &[Setting] = &[
    TIMESTAMPS_OFF,
    SACK_OFF_SETTING,
    Setting {
        name: "wscale off",
        tweaks: &[WSCALE_OFF],
    },
    Setting {
        name: "MSS 536",
        tweaks: &[Tweak::AdvMss(536)],
    },
    MSS_1220,
    Setting {
        name: "MSS 1360",
        tweaks: &[Tweak::AdvMss(1360)],
    },
    Setting {
        name: "MSS 1400",
        tweaks: &[Tweak::AdvMss(1400)],
    },
    Setting {
        name: "ECN on",
        tweaks: &[ECN_ON],
    },
    Setting {
        name: "small rmem",
        tweaks: &[SMALL_RMEM],
    },
];

/// Which peer a setting is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Neither: both peers at the kernel's defaults.
    Neither,
    Client,
    Server,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Neither => "-",
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    pub(crate) fn namespace(self) -> Option<&'static str> {
        match self {
            Side::Neither => None,
            Side::Client => Some(INSIDE),
            Side::Server => Some(OUTSIDE),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The peers' settings.

/// The text of a sysctl in namespace `ns_name` (whitespace runs made single spaces).
pub(crate) fn sysctl_get(ns_name: &str, key: &str) -> Result<String, String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = net::ns(ns_name, "cat", &[&path], CMD_TIMEOUT);
    if !out.success() {
        return Err(format!("reading {key} in {ns_name}: {}", out.describe()));
    }
    Ok(normalize(&out.stdout))
}

pub(crate) fn sysctl_set(ns_name: &str, key: &str, value: &str) -> Result<(), String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = net::ns(
        ns_name,
        "sh",
        &["-c", "printf '%s\\n' \"$1\" > \"$2\"", "sh", value, &path],
        CMD_TIMEOUT,
    );
    if !out.success() {
        return Err(format!(
            "setting {key}={value} in {ns_name}: {}",
            out.describe()
        ));
    }
    let now = sysctl_get(ns_name, key)?;
    if now != normalize(value) {
        return Err(format!(
            "{key} in {ns_name} reads {now:?} after setting {value:?}"
        ));
    }
    Ok(())
}

pub(crate) fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of the default route in `ns_name` (`default via GW dev DEV ...`).
pub(crate) fn default_route(ns_name: &str) -> Result<Vec<String>, String> {
    let out = net::run(
        "ip",
        &["-n", ns_name, "-o", "route", "show", "default"],
        CMD_TIMEOUT,
    );
    if !out.success() {
        return Err(format!(
            "the default route in {ns_name}: {}",
            out.describe()
        ));
    }
    let words: Vec<String> = out
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if words.first().map(String::as_str) != Some("default") {
        return Err(format!("no default route in {ns_name}: {:?}", out.stdout));
    }
    Ok(words)
}

/// `words` without an `advmss N` pair.
pub(crate) fn without_advmss(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "advmss" {
            it.next();
        } else {
            out.push(w.clone());
        }
    }
    out
}

pub(crate) fn route_set(ns_name: &str, verb: &str, words: &[String]) -> Result<(), String> {
    let mut args: Vec<&str> = vec!["-n", ns_name, "route", verb];
    args.extend(words.iter().map(String::as_str));
    let out = net::run("ip", &args, CMD_TIMEOUT);
    if out.success() {
        Ok(())
    } else {
        Err(format!("ip route {verb} in {ns_name}: {}", out.describe()))
    }
}

/// Tweaks in force on one peer; [`PeerTweaks::restore`] (or drop, also on panic) puts back
/// what was read before each change.
pub(crate) struct PeerTweaks {
    pub(crate) ns: &'static str,
    /// (key, original value), in the order they were changed.
    pub(crate) sysctls: Vec<(&'static str, String)>,
    /// The default route as it was, if an `advmss` was set on it.
    pub(crate) route: Option<Vec<String>>,
    pub(crate) restored: bool,
}

impl PeerTweaks {
    /// Applies `tweaks` in `ns_name`, each read back. On an error, what was applied so far is
    /// put back (the partial guard drops) before the error is returned.
    pub(crate) fn apply(ns_name: &'static str, tweaks: &[Tweak]) -> Result<PeerTweaks, String> {
        let mut guard = PeerTweaks {
            ns: ns_name,
            sysctls: Vec::new(),
            route: None,
            restored: false,
        };
        for t in tweaks {
            match *t {
                Tweak::Sysctl(key, value) => {
                    let original = sysctl_get(ns_name, key)?;
                    guard.sysctls.push((key, original));
                    sysctl_set(ns_name, key, value)?;
                }
                Tweak::AdvMss(mss) => {
                    let original = default_route(ns_name)?;
                    let mut words = without_advmss(&original);
                    if guard.route.is_none() {
                        guard.route = Some(original);
                    }
                    words.extend(["advmss".to_string(), mss.to_string()]);
                    route_set(ns_name, "change", &words)?;
                    let now = default_route(ns_name)?;
                    let want = ["advmss".to_string(), mss.to_string()];
                    if !now.windows(2).any(|w| w == want) {
                        return Err(format!(
                            "the default route in {ns_name} is {now:?} after setting advmss {mss}"
                        ));
                    }
                }
            }
        }
        Ok(guard)
    }

    /// Puts every original value back (the last change first) and reads each back.
    pub(crate) fn restore(&mut self) -> Result<(), String> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let mut errors = Vec::new();
        for (key, original) in self.sysctls.iter().rev() {
            if let Err(e) = sysctl_set(self.ns, key, original) {
                errors.push(e);
            }
        }
        if let Some(words) = &self.route {
            match route_set(self.ns, "replace", words) {
                Ok(()) => match default_route(self.ns) {
                    Ok(now) if now == *words => {}
                    Ok(now) => errors.push(format!(
                        "the default route in {} is {now:?} after restoring {words:?}",
                        self.ns
                    )),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Drop for PeerTweaks {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("warning: restoring the TCP settings in {}: {e}", self.ns);
        }
    }
}

/// Panics unless a TCP sysctl changed in ct-inside leaves ct-outside and the root namespace
/// alone (the whole test relies on it), and reads back as before once restored.
#[track_caller]
pub(crate) fn check_sysctls_are_per_namespace() {
    let key = "net.ipv4.tcp_timestamps";
    let read = |ns_name: &str| sysctl_get(ns_name, key).unwrap_or_else(|e| panic!("{e}"));
    let root = || {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        normalize(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    };
    let (inside, outside, host) = (read(INSIDE), read(OUTSIDE), root());
    let flipped = if inside == "0" { "1" } else { "0" };
    let mut guard =
        PeerTweaks::apply(INSIDE, &[Tweak::Sysctl(key, flipped)]).unwrap_or_else(|e| panic!("{e}"));
    let (o2, h2) = (read(OUTSIDE), root());
    guard.restore().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o2 == outside && h2 == host,
        "{key}={flipped} in {INSIDE} changed it elsewhere ({OUTSIDE}: {outside} -> {o2}, root \
         namespace: {host} -> {h2}): this kernel does not keep TCP sysctls per namespace, and \
         this test cannot change one peer alone"
    );
    assert_eq!(read(INSIDE), inside, "{key} in {INSIDE} after the restore");
}
