//! Small helpers: files, the stats JSON, Python, servers in a namespace, process memory.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;

/// `sha256sum FILE` → the hex digest.
#[track_caller]
pub fn sha256(path: &Path) -> String {
    let p = path.to_str().expect("UTF-8 path");
    let out = run("sha256sum", &[p], Duration::from_secs(60)).expect_success("sha256sum");
    out.stdout
        .split_whitespace()
        .next()
        .expect("sha256sum printed nothing")
        .to_string()
}

/// Writes `bytes` random bytes to `path` (`head -c N /dev/urandom`).
#[track_caller]
pub fn random_file(path: &Path, bytes: u64) {
    let p = path.to_str().expect("UTF-8 path");
    let script = format!("head -c {bytes} /dev/urandom > \"$1\"");
    run("sh", &["-c", &script, "sh", p], Duration::from_secs(60))
        .expect_success("making the random file");
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert_eq!(len, bytes, "{} has {len} bytes", path.display());
}

/// A counter in the stats JSON: `v[path...]` as u64 (absent → 0, so "no drops of this reason"
/// reads as 0 whether the box omits zero reasons or writes them).
pub fn counter(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for key in path {
        match cur.get(*key) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// Whether `v[path...]` exists.
pub fn has(v: &serde_json::Value, path: &[&str]) -> bool {
    let mut cur = v;
    for key in path {
        match cur.get(*key) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

/// The sum of `workers[*][key]`.
pub fn worker_sum(v: &serde_json::Value, key: &str) -> u64 {
    v.get("workers")
        .and_then(|w| w.as_array())
        .map(|ws| {
            ws.iter()
                .map(|w| w.get(key).and_then(|x| x.as_u64()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// `python3`: the system one if there is one (a pyenv shim costs a shell and a lookup per
/// start, slow while the box busy-polls a CPU).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A path as `&str` (the harness only makes UTF-8 paths).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Starts a server in namespace `ns_name` and waits (≤ 20 s) until it listens on `port`;
/// panics with its output otherwise.
#[track_caller]
pub fn start_server(ns_name: &str, port: u16, cmd: &str, args: &[&str]) -> Background {
    let mut server = Background::ns(ns_name, cmd, args);
    assert!(
        wait_listening(ns_name, port, Duration::from_secs(20)),
        "the server does not listen on {port} in {ns_name} after 20 s: {}",
        server.describe()
    );
    server
}

/// The resident set of process `pid` in KiB (`VmRSS` in /proc/PID/status), 0 if it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
