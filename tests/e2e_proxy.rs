#![cfg(feature = "dpdk")]
//! The participating stack through the real box on the namespace testbed (DESIGN.md §1, §4,
//! §9), over `net_af_packet`, in one box run:
//!
//! 1. `line` authentication on 2323 (splice `after-auth`), driven by a scripted client: three
//!    wrong passwords are each answered `Login incorrect.`, the third also
//!    `Too many failures.` and a close, and the echo server behind the box never sees a
//!    connection; then the right password is answered `Authenticated as alice.` and 8 MiB are
//!    echoed back, sent and received concurrently, byte-exact;
//! 2. `http-basic` on 8080 (splice `after-request`) with curl: without credentials and with
//!    wrong ones the box itself answers `401` with `WWW-Authenticate`, and the HTTP server
//!    (a small Python server that records every connection and every request's headers) sees
//!    nothing; with `-u alice:wonderland` a 100 MiB download arrives byte-exact (SHA-256) and
//!    the request reached the server without its `Authorization` header;
//! 3. auth `none` on 9000 (splice `after-auth`): a 100 MiB upload arrives byte-exact;
//! 4. `splice: never` on 9001 (the full proxy): a 20 MiB upload arrives byte-exact, and the
//!    connection is closed on both hosts before the box stops;
//! 5. the counters written on SIGTERM: three splices, one full-proxy connection, failed
//!    authentications, the passwords verified (on the verifier thread) and none refused for a
//!    full queue, no drain timeout, no `out_of_window` or `ack_beyond_data` drop.
//!
//! The order matters within the one run: the box caches a successful login per client
//! address and method for `auth.cache_timeout` (so each method's failures come before its
//! success), and limits a client address after 5 failures per minute over both methods (this
//! test makes 4).
//!
//! Run as root: `cargo test --test e2e_proxy` (about 6 s here, the random files included;
//! bounded at a few minutes by the timeouts). `CUTTHROUGH_TEST_BOX_LOG=info,control=debug` sets the box's
//! `RUST_LOG` (`control=trace` logs every segment the legs see). Timings are printed for
//! information only; nothing asserts on speed.

mod net;

use std::path::Path;
use std::time::{Duration, Instant};

use net::{counter, log_lines, ns, path_str, python, worker_sum};
use net::{Background, BoxProcess, TempDir, Testbed};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

const LINE_PORT: u16 = 2323;
const HTTP_PORT: u16 = 8080;
const SPLICE_PORT: u16 = 9000;
const FULL_PROXY_PORT: u16 = 9001;

/// Echoed both ways through the `line`-authenticated connection.
const ECHO_BYTES: u64 = 8 * 1024 * 1024;
/// Downloaded over HTTP, and uploaded through the auth-`none` splice.
const BIG_BYTES: u64 = 100 * 1024 * 1024;
/// Uploaded through the full proxy.
const FULL_PROXY_BYTES: u64 = 20 * 1024 * 1024;

/// How long a server may take to listen (the box's worker busy-polls one of the two CPUs, so
/// processes in the namespaces start slowly).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// The clients and servers this test runs in the namespaces, in Python
/// (`tests/net/proxy_helper.py`, run as `python3 HELPER CMD ARGS...`). Every socket operation
/// has a timeout; every failure exits non-zero with a message on stderr.
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/proxy_helper.py");

/// Starts a server in ct-outside and waits until it listens on `port`.
#[track_caller]
fn start_server(what: &str, port: u16, cmd: &str, args: &[&str]) -> Background {
    let mut server = Background::ns(OUTSIDE, cmd, args);
    assert!(
        net::wait_listening(OUTSIDE, port, LISTEN_TIMEOUT),
        "the {what} does not listen on {port} after {} s: {}",
        LISTEN_TIMEOUT.as_secs(),
        server.describe()
    );
    server
}

/// Waits (≤ `limit`) until no TCP socket to or from `port` is open in either namespace, other
/// than listeners and TIME-WAIT: both ends of the connection have closed.
fn wait_closed(port: u16, limit: Duration) -> bool {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    net::poll(limit, Duration::from_millis(100), || {
        [INSIDE, OUTSIDE].iter().all(|n| {
            let out = ns(
                n,
                "ss",
                &[
                    "-Htan",
                    "state",
                    "connected",
                    "exclude",
                    "time-wait",
                    &filter,
                ],
                Duration::from_secs(5),
            );
            out.success() && out.stdout.trim().is_empty()
        })
    })
}

#[test]
fn proxy_af_packet() {
    net::require_root();
    net::require_tools(&["curl", python()]);
    let _lock = net::lock();
    let tmp = TempDir::new("e2e-proxy");
    let helper = Path::new(HELPER);
    let www = tmp.join("www");
    std::fs::create_dir_all(&www).expect("create the web root");
    let big = www.join("big.bin");
    net::random_file(&big, BIG_BYTES);
    let big_sha = net::sha256(&big);
    let medium = tmp.join("medium.bin");
    net::random_file(&medium, FULL_PROXY_BYTES);
    let medium_sha = net::sha256(&medium);

    let _testbed = Testbed::up("af_packet");
    let the_box = BoxProcess::start("af_packet");
    let t_all = Instant::now();

    line_auth(&tmp, helper);
    // One login per client address serves every rule: ended, so 8080 asks again.
    let cleared = net::run(
        net::BIN,
        &["auth", "clear", "--all"],
        Duration::from_secs(20),
    )
    .expect_success("cutthrough auth clear --all");
    assert_eq!(
        cleared.stdout.trim(),
        "1 login(s) ended",
        "{}",
        cleared.describe()
    );
    http_basic(&tmp, helper, &www, &big_sha);
    upload(
        "auth none, spliced after-auth",
        SPLICE_PORT,
        &big,
        BIG_BYTES,
        &big_sha,
        &tmp.join("upload-9000.bin"),
    );
    upload(
        "auth none, splice never (full proxy)",
        FULL_PROXY_PORT,
        &medium,
        FULL_PROXY_BYTES,
        &medium_sha,
        &tmp.join("upload-9001.bin"),
    );
    // The full proxy counts its connection when both legs have closed.
    assert!(
        wait_closed(FULL_PROXY_PORT, Duration::from_secs(15)),
        "the full-proxy connection on {FULL_PROXY_PORT} did not close on both hosts within \
         15 s\n{}",
        the_box.logs()
    );
    // Time for the box to see the last ACK of its legs' FINs.
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("all scenarios in {:.1} s", t_all.elapsed().as_secs_f64());

    // 5. The counters.
    let stats = the_box.stop();
    let pretty = serde_json::to_string_pretty(&stats).unwrap_or_default();
    eprintln!("stats: {pretty}");
    let conn = |key: &str| counter(&stats, &["connections", key]);
    assert!(
        net::has(&stats, &["connections"]),
        "no `connections` in the stats:\n{pretty}"
    );
    assert!(
        conn("spliced") >= 3,
        "connections.spliced {} < 3 (2323, 8080, 9000)\n{pretty}",
        conn("spliced")
    );
    assert!(
        conn("full_proxy") >= 1,
        "connections.full_proxy {} < 1 (9001, closed before the stop)\n{pretty}",
        conn("full_proxy")
    );
    assert!(
        conn("auth_failed") >= 1,
        "connections.auth_failed {} < 1 (three wrong passwords on 2323, a wrong one on \
         8080)\n{pretty}",
        conn("auth_failed")
    );
    assert_eq!(
        conn("drain_timeout"),
        0,
        "connections.drain_timeout on a clean wire\n{pretty}"
    );
    // On the verifier thread: three wrong passwords and the login on 2323, a wrong and a
    // right password on 8080.
    assert!(
        conn("auth_verified") >= 6,
        "connections.auth_verified {} < 6\n{pretty}",
        conn("auth_verified")
    );
    assert_eq!(
        (conn("auth_pending"), conn("auth_queue_full")),
        (0, 0),
        "connections.auth_pending, auth_queue_full after one login at a time\n{pretty}"
    );
    let installed = worker_sum(&stats, "flows_installed");
    assert!(
        installed >= 3,
        "workers[*].flows_installed {installed} < 3 (one per splice)\n{pretty}"
    );
    for reason in ["out_of_window", "ack_beyond_data"] {
        assert_eq!(
            counter(&stats, &["drops", reason]),
            0,
            "drops.{reason} on a clean wire\n{pretty}"
        );
    }
}

/// 1. `line` on 2323: failures first (the server sees nothing), then the login and an 8 MiB
///    echo both ways.
fn line_auth(tmp: &TempDir, helper: &Path) {
    let t0 = Instant::now();
    let log = tmp.join("echo-connections.log");
    let port = LINE_PORT.to_string();
    let mut server = start_server(
        "echo server",
        LINE_PORT,
        python(),
        &[
            path_str(helper),
            "echo-server",
            SERVER_ADDR,
            &port,
            path_str(&log),
        ],
    );

    let fail = ns(
        INSIDE,
        python(),
        &[path_str(helper), "line-fail", SERVER_ADDR, &port],
        Duration::from_secs(60),
    );
    assert!(
        fail.success(),
        "line auth, three wrong passwords: {}\nserver: {}",
        fail.describe(),
        server.describe()
    );
    // The box never connects to the server for a failed login; give a stray connect a moment
    // to show up in the log.
    std::thread::sleep(Duration::from_millis(300));
    let seen = log_lines(&log);
    assert!(
        seen.is_empty(),
        "the echo server saw connections {seen:?} although the login failed"
    );

    let ok = ns(
        INSIDE,
        python(),
        &[
            path_str(helper),
            "line-echo",
            SERVER_ADDR,
            &port,
            &ECHO_BYTES.to_string(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        ok.success(),
        "line auth, the right password and the echo: {}\nserver: {}",
        ok.describe(),
        server.describe()
    );
    // The control: the log does record the connection the box made after the login, as the
    // client (transparently).
    let seen = log_lines(&log);
    assert_eq!(
        seen.len(),
        1,
        "the echo server should have seen exactly the one connection after the login: {seen:?}"
    );
    assert!(
        seen[0].starts_with(&format!("{CLIENT_ADDR}:")),
        "the box connected to the server from {} instead of the client's address",
        seen[0]
    );
    eprintln!(
        "[2323 line] {}; {} ({:.1} s)",
        fail.stdout.trim().replace('\n', "; "),
        ok.stdout.trim().replace('\n', "; "),
        t0.elapsed().as_secs_f64()
    );
}

/// One request with curl from ct-inside: the body into `out`, or (without `out`) the response
/// head and body on stdout (`-i`); then the status code on a line of its own.
fn curl(url: &str, user: Option<&str>, out: Option<&Path>, limit: Duration) -> net::Output {
    let max_time = limit.as_secs().to_string();
    let mut args = vec!["-sS", "--max-time", &max_time, "-w", "\n%{http_code}\n"];
    if let Some(user) = user {
        args.extend(["-u", user]);
    }
    match out {
        Some(out) => args.extend(["-o", path_str(out)]),
        None => args.push("-i"),
    }
    args.push(url);
    ns(INSIDE, "curl", &args, limit + Duration::from_secs(5))
}

/// The status code curl printed last (`-w '\n%{http_code}\n'`).
fn status_code(out: &net::Output) -> &str {
    out.stdout.trim_end().lines().last().unwrap_or("")
}

/// 2. `http-basic` on 8080: no and wrong credentials get the box's 401 and never reach the
///    server; the right ones download 100 MiB, the credential header stripped on the way.
fn http_basic(tmp: &TempDir, helper: &Path, www: &Path, big_sha: &str) {
    let t0 = Instant::now();
    let log = tmp.join("http-requests.log");
    let started = Instant::now();
    let port = HTTP_PORT.to_string();
    let mut server = start_server(
        "HTTP server",
        HTTP_PORT,
        python(),
        &[
            path_str(helper),
            "http-server",
            SERVER_ADDR,
            &port,
            path_str(www),
            path_str(&log),
        ],
    );
    eprintln!(
        "[8080 http-basic] the HTTP server listens after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let url = format!("http://{SERVER_ADDR}:{HTTP_PORT}/big.bin");

    refused_without_credentials(&url, &mut server, &log);
    let secs = authenticated_download(tmp, &url, &mut server, big_sha);
    let names = request_at_the_server(&log);
    eprintln!(
        "[8080 http-basic] 401 without and with wrong credentials; 100 MiB download in \
         {secs:.2} s: {:.0} Mbit/s; request headers at the server: {names:?} ({:.1} s)",
        BIG_BYTES as f64 * 8.0 / secs / 1e6,
        t0.elapsed().as_secs_f64()
    );
}

/// Without credentials and with wrong ones, the box answers 401 with a Basic challenge, and
/// nothing reaches the server.
fn refused_without_credentials(url: &str, server: &mut Background, log: &Path) {
    for (what, user) in [
        ("no credentials", None),
        ("wrong credentials", Some("alice:not-wonderland")),
    ] {
        let out = curl(url, user, None, Duration::from_secs(20));
        eprintln!(
            "[8080 http-basic] {what}: {} in {:.2} s",
            status_code(&out),
            out.elapsed.as_secs_f64()
        );
        assert!(
            out.success(),
            "curl with {what}: {}\nserver: {}",
            out.describe(),
            server.describe()
        );
        assert_eq!(
            status_code(&out),
            "401",
            "with {what} the box should answer 401: {}",
            out.describe()
        );
        let challenge = out.stdout.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("www-authenticate:") && l.contains("basic")
        });
        assert!(
            challenge,
            "the 401 for {what} has no `WWW-Authenticate: Basic` header: {}",
            out.describe()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen = log_lines(log);
    assert!(
        seen.is_empty(),
        "the HTTP server saw {seen:?} although the client never authenticated"
    );
}

/// The authenticated 100 MiB download, byte-exact; returns how many seconds it took.
fn authenticated_download(tmp: &TempDir, url: &str, server: &mut Background, big_sha: &str) -> f64 {
    let dst = tmp.join("download.bin");
    let t1 = Instant::now();
    let out = curl(
        url,
        Some("alice:wonderland"),
        Some(&dst),
        Duration::from_secs(90),
    );
    let secs = t1.elapsed().as_secs_f64();
    assert!(
        out.success() && status_code(&out) == "200",
        "the authenticated 100 MiB download: {}\nserver: {}",
        out.describe(),
        server.describe()
    );
    let got = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
    assert_eq!(got, BIG_BYTES, "the download has {got} bytes");
    assert_eq!(
        net::sha256(&dst),
        big_sha,
        "the 100 MiB download is corrupted"
    );

    secs
}

/// What reached the server: one connection, from the client's address, one request for the
/// file, with the usual headers but not the credentials. Returns the request's header names.
fn request_at_the_server(log: &Path) -> Vec<String> {
    let seen = log_lines(log);
    let entries: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    let connections: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.get("connection").and_then(|c| c.as_str()))
        .collect();
    let requests: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("request").is_some())
        .collect();
    assert!(
        connections.len() == 1 && connections[0].starts_with(&format!("{CLIENT_ADDR}:")),
        "the HTTP server should have seen one connection from {CLIENT_ADDR}: {seen:?}"
    );
    assert_eq!(requests.len(), 1, "the HTTP server saw requests {seen:?}");
    let request = requests[0];
    assert_eq!(
        request["request"].as_str(),
        Some("GET /big.bin HTTP/1.1"),
        "the request line: {request}"
    );
    let names: Vec<String> = request["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter_map(|h| h.get(0).and_then(|n| n.as_str()))
                .map(|n| n.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.iter().any(|n| n == "host") && names.iter().any(|n| n == "user-agent"),
        "the request reached the server without its ordinary headers: {request}"
    );
    assert!(
        !names.iter().any(|n| n == "authorization"),
        "the box forwarded the credentials (`Authorization`) to the server: {request}"
    );
    names
}

/// 3./4. An upload of `src` (`bytes`, `sha`) to `port` with socat, byte-exact at the server.
fn upload(what: &str, port: u16, src: &Path, bytes: u64, sha: &str, dst: &Path) {
    let label = format!("{port} {what}");
    net::socat_upload(&label, port, src, bytes, sha, dst, Duration::from_secs(90));
}
