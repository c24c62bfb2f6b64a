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

/// The lines of a log file the servers append to (none if it does not exist).
pub fn log_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The non-zero counters of a JSON object as `name N, ...` (`none` if there are none), for
/// messages.
pub fn nonzero(v: &serde_json::Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into())
}

/// Prints the first `max` lines of the box's log that contain any of `words` (its connection
/// events), stops the box, and returns its stats and a pretty copy for messages.
pub fn stop_with_events(
    the_box: BoxProcess,
    words: &[&str],
    max: usize,
) -> (serde_json::Value, String) {
    let events: Vec<String> = the_box
        .stderr()
        .lines()
        .filter(|l| words.iter().any(|w| l.contains(w)))
        .take(max)
        .map(str::to_string)
        .collect();
    eprintln!("box: connection events:\n{}", events.join("\n"));
    let stats = the_box.stop();
    let pretty = serde_json::to_string_pretty(&stats).unwrap_or_default();
    (stats, pretty)
}

/// The box's accounting lines in its log `stderr`, each from `login ` on.
pub fn login_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once("] login ")
                .map(|(_, rest)| format!("login {rest}"))
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Checks the accounting lines in the box's log `stderr`: each `(line, count)` exactly (the
/// line from `login ` on), and no others.
#[track_caller]
pub fn check_login_lines(stderr: &str, expected: &[(String, usize)]) {
    let lines = login_lines(stderr);
    for (want, n) in expected {
        let got = lines.iter().filter(|l| *l == want).count();
        assert_eq!(
            got,
            *n,
            "`{want}` lines in the box's log (its login lines:\n{})",
            lines.join("\n")
        );
    }
    let total: usize = expected.iter().map(|e| e.1).sum();
    assert_eq!(
        lines.len(),
        total,
        "other login lines than expected:\n{}",
        lines.join("\n")
    );
    eprintln!("box log, the login lines:\n{}", lines.join("\n"));
}

/// Uploads `src` (`bytes`, SHA-256 `sha`) with socat from the client to a socat server on the
/// server's `port` that writes it to `dst` (the client bounded by `limit`); checks that the
/// server got it byte-exact and prints the rate. `label` starts every message.
#[track_caller]
pub fn socat_upload(
    label: &str,
    port: u16,
    src: &Path,
    bytes: u64,
    sha: &str,
    dst: &Path,
    limit: Duration,
) {
    let listen = format!("TCP-LISTEN:{port},reuseaddr");
    let sink = format!("OPEN:{},creat,trunc", dst.display());
    let mut server = start_server(OUTSIDE, port, "socat", &["-u", &listen, &sink]);
    let source = format!("OPEN:{}", src.display());
    let connect = format!("TCP:{SERVER_ADDR}:{port}");
    let t0 = std::time::Instant::now();
    let client = ns(INSIDE, "socat", &["-u", &source, &connect], limit);
    assert!(
        client.success(),
        "[{label}] the upload failed: {}\nserver: {}",
        client.describe(),
        server.describe()
    );
    // The server exits once it has read the client's FIN and written everything out.
    let status = server.wait(Duration::from_secs(30));
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        status.is_some_and(|s| s.success()),
        "[{label}] the upload server did not finish: {}",
        server.describe()
    );
    let got = fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        got, bytes,
        "[{label}] the server received {got} of {bytes} bytes"
    );
    assert_eq!(sha256(dst), sha, "[{label}] the upload arrived corrupted");
    eprintln!(
        "[{label}] {} MiB client -> server in {secs:.2} s: {:.0} Mbit/s",
        bytes >> 20,
        bytes as f64 * 8.0 / secs / 1e6
    );
}

/// `count` pings from namespace `from` to `to`, 0.2 s apart; all must be answered.
#[track_caller]
pub fn ping(from: &str, to: &str, count: u32, what: &str) {
    let limit = Duration::from_secs(10 + u64::from(count));
    let n = count.to_string();
    ns(from, "ping", &["-c", &n, "-i", "0.2", "-W", "2", to], limit).expect_success(what);
}

/// dnsmasq in `ns_name`, listening on `addr` and answering `name` with `answer` (nothing
/// else: no resolv.conf, no hosts file), once it listens (≤ 10 s). Its pid file goes to `tmp`.
#[track_caller]
pub fn dnsmasq(tmp: &TempDir, ns_name: &str, addr: &str, name: &str, answer: &str) -> Background {
    let pid = tmp.join(&format!("dnsmasq-{ns_name}.pid"));
    let record = format!("--address=/{name}/{answer}");
    let listen = format!("--listen-address={addr}");
    let pid_file = format!("--pid-file={}", path_str(&pid));
    let mut bg = Background::ns(
        ns_name,
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &listen,
            "--user=root",
            &pid_file,
            &record,
        ],
    );
    let listening = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        ns(
            ns_name,
            "ss",
            &["-Hlun", "sport = :53"],
            Duration::from_secs(5),
        )
        .stdout
        .contains(":53")
    });
    assert!(listening, "dnsmasq does not listen: {}", bg.describe());
    bg
}

/// The hops `traceroute -I` (ICMP probes, one per hop, at most 4) from `from` to `to` shows.
#[track_caller]
pub fn traceroute_hops(from: &str, to: &str, what: &str) -> (Vec<String>, String) {
    let out = ns(
        from,
        "traceroute",
        &["-n", "-I", "-q", "1", "-w", "2", "-m", "4", to],
        Duration::from_secs(30),
    )
    .expect_success(&format!("traceroute -I {what}"));
    let hops = out
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    (hops, out.describe())
}
