#![cfg(feature = "dpdk")]
//! The authentication cache ("uauth") through the real box on the namespace testbed, over
//! `net_af_packet`: four tests, each with a box of its own on a copy of
//! `config/testbed.yaml` whose `auth:` is `{cache_timeout: 5m, cache_idle: IDLE}`, an echo
//! server with a banner on 2323 (`line`, splice `after-auth`) and an HTTP server on 8080
//! (`http-basic`, splice `after-request`):
//!
//! - `line_login_skips_prompt_af_packet`: a wrong password (`Login incorrect.`), then the
//!   login; a SECOND connection from the same client gets the echo server's banner directly
//!   (no `Username:`) and 1 MiB echoed byte-exact, and is spliced; one `login refused` and
//!   one `login accepted` line in the box's log, none for the second connection; then
//!   `cutthrough auth list --json` shows the login (alice, 198.18.0.1, `line`, 1 connection)
//!   and the text form lists it;
//! - `auth_clear_af_packet`: `auth clear 198.18.0.1`, `auth clear --user alice` each end
//!   the login (`1 login(s) ended`), and the next connection is prompted again; one login
//!   per client address serves every rule (`login: shared`, the default), so while the `line`
//!   login lasts `http-basic` lets curl through without credentials, and `auth clear --all`
//!   ends that one login (`1 login(s) ended`), after which both methods ask again; `auth
//!   clear not-an-address` fails with status 2 and a message naming it; `--user nobody` ends
//!   none;
//! - `http_basic_login_skips_credentials_af_packet` (no `line` login first): a wrong
//!   password and no credentials get the box's `401` (in-band, the rule `http-basic` has
//!   `http_login: in-band`) and the server sees nothing; after a login with `-u
//!   alice:wonderland`, curl WITHOUT credentials gets the page byte-exact through the
//!   splice, and the server sees no `Authorization` header; the same login lets a `line`
//!   connection through without a prompt (shared); `auth list --json` has the one login
//!   (http-basic, rule `http-basic`, 2 connections);
//! - `idle_timeout_af_packet` (`cache_idle: 4s`): a login no connection uses is forgotten
//!   after 4 s (the next connection is prompted); connections within the idle time skip the
//!   prompt and restart it (the second comes more than 4 s after the login); 4 s after the
//!   last use the next connection is prompted; a reload (SIGHUP) to `cache_idle: 60s` keeps a
//!   login made before it alive past 4 s, and one back to `4s` ends a login idle for longer.
//!
//! Each test checks its box's accounting lines (`login accepted|refused|not checked (busy):
//! user "U" client C server S:P rule R method M backend local`, the rule `line-auth` for
//! 2323 and `http-basic` for 8080: one per attempt, none for a connection that skipped the
//! prompt) and that the box stops cleanly.
//!
//! Run as root: `cargo test --test e2e_auth -- --test-threads=1 --nocapture` (about 40 s,
//! most of it the idle-timeout waits). Every wait is bounded; the timings an
//! idle-timeout verdict relies on are measured and checked, so a machine too slow for them
//! fails saying so rather than with a wrong verdict.

mod net;

use std::path::Path;
use std::time::{Duration, Instant};

use net::{auth_clear, cli, cli_json, connections, expect_spliced, logins};
use net::{
    log_lines, ns, path_str, python, run, Background, BoxProcess, NetLock, TempDir, Testbed,
};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

const LINE_PORT: u16 = 2323;
const HTTP_PORT: u16 = 8080;

/// `auth.cache_idle` where nothing should depend on it, and for the idle-timeout test.
const IDLE_LONG: &str = "60s";
const IDLE_SHORT: &str = "4s";
const IDLE: Duration = Duration::from_secs(4);
/// How long after a login's last use (at the latest) the idle-timeout test expects it
/// forgotten: `IDLE` and a second to spare.
const PAST_IDLE: Duration = Duration::from_secs(5);

/// What a client connection sends and gets echoed back.
const ECHO_BYTES: u64 = 1024 * 1024;
const SMALL_ECHO_BYTES: u64 = 16 * 1024;
/// The page served on 8080.
const PAGE_BYTES: u64 = 48 * 1024;

/// The clients and servers this test runs in the namespaces (`python3 HELPER CMD ARGS...`;
/// the shared parts in `tests/net/dialogue.py`). Every socket operation has a timeout; every
/// failure exits non-zero with a message.
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/auth_helper.py");

/// One client connection as the helper reported it (seconds since the helper started).
#[derive(Debug, Clone, Copy)]
struct Session {
    t_start: f64,
    t_connected: f64,
}

/// A run of the helper's `client`: its sessions, and when the harness spawned it and saw it
/// end.
struct ClientRun {
    sessions: Vec<Session>,
    spawned: Instant,
    ended: Instant,
}

/// A prompted login as alice with the right password.
const LOGIN: &str = "prompt:wonderland";
/// A connection that must get the server's banner first: no prompt.
const NO_PROMPT: &str = "banner";

/// One test's testbed, box and servers. Dropped in declaration order: the servers, the box
/// (killed if still running), the testbed (torn down), the temp dir, then the lock.
struct Rig {
    _echo: Background,
    _http: Background,
    the_box: Option<BoxProcess>,
    _testbed: Testbed,
    tmp: TempDir,
    _lock: NetLock,
    config: std::path::PathBuf,
    testbed_yaml: String,
    echo_log: std::path::PathBuf,
    http_log: std::path::PathBuf,
    page: Vec<u8>,
    reloads: u64,
}

impl Rig {
    /// The testbed, the box with `auth: {cache_timeout: 5m, cache_idle: idle}`, the echo
    /// server on 2323 and the HTTP server on 8080.
    #[track_caller]
    fn up(label: &str, idle: &str) -> Rig {
        net::require_root();
        net::require_tools(&["curl", python()]);
        let lock = net::lock();
        let tmp = TempDir::new(label);
        let www = tmp.join("www");
        std::fs::create_dir_all(&www).expect("create the web root");
        let page_path = www.join("page.bin");
        net::random_file(&page_path, PAGE_BYTES);
        let page = std::fs::read(&page_path).expect("read the page");
        let testbed_yaml = std::fs::read_to_string(format!("{}/config/testbed.yaml", net::ROOT))
            .expect("read config/testbed.yaml");
        let config = tmp.join("box.yaml");
        write_config(&config, &testbed_yaml, idle);
        let testbed = Testbed::up("af_packet");
        let the_box = BoxProcess::start_config("af_packet", path_str(&config), &[]);
        let (echo_log, http_log) = (tmp.join("echo.log"), tmp.join("http.log"));
        let (line_port, http_port) = (LINE_PORT.to_string(), HTTP_PORT.to_string());
        let echo = net::start_server(
            OUTSIDE,
            LINE_PORT,
            python(),
            &[
                HELPER,
                "echo-server",
                SERVER_ADDR,
                &line_port,
                path_str(&echo_log),
            ],
        );
        let http = net::start_server(
            OUTSIDE,
            HTTP_PORT,
            python(),
            &[
                HELPER,
                "http-server",
                SERVER_ADDR,
                &http_port,
                path_str(&www),
                path_str(&http_log),
            ],
        );
        Rig {
            _echo: echo,
            _http: http,
            the_box: Some(the_box),
            _testbed: testbed,
            tmp,
            _lock: lock,
            config,
            testbed_yaml,
            echo_log,
            http_log,
            page,
            reloads: 0,
        }
    }

    fn the_box(&self) -> &BoxProcess {
        self.the_box.as_ref().expect("the box runs")
    }

    /// The box's output and live statistics, for panic messages.
    fn logs(&self) -> String {
        self.the_box().logs()
    }

    /// Runs the helper's `client` in ct-inside against 2323 with `steps` (`LOGIN`,
    /// `prompt:WRONG,...,wonderland`, `NO_PROMPT`, `sleep:SECS`), each connection echoing
    /// `bytes`; panics unless every connection did what its step says.
    #[track_caller]
    fn line(&self, bytes: u64, steps: &[&str]) -> ClientRun {
        let port = LINE_PORT.to_string();
        let n = bytes.to_string();
        let mut args = vec![HELPER, "client", SERVER_ADDR, &port, &n];
        args.extend_from_slice(steps);
        let spawned = Instant::now();
        let out = ns(INSIDE, python(), &args, Duration::from_secs(40));
        let ended = Instant::now();
        assert!(
            out.success(),
            "line client {steps:?}: {}\n{}",
            out.describe(),
            self.logs()
        );
        let sessions: Vec<Session> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Session {
                t_start: v["t_start"].as_f64().expect("t_start"),
                t_connected: v["t_connected"].as_f64().expect("t_connected"),
            })
            .collect();
        let expected = steps.iter().filter(|s| !s.starts_with("sleep:")).count();
        assert_eq!(
            sessions.len(),
            expected,
            "line client {steps:?} reported other sessions: {}",
            out.describe()
        );
        ClientRun {
            sessions,
            spawned,
            ended,
        }
    }

    /// curl from ct-inside for the page on 8080, with `-u user`; the status code, and the
    /// body byte-exact when it is 200.
    #[track_caller]
    fn curl(&self, user: Option<&str>) -> String {
        let body = self.tmp.join("body.bin");
        let _ = std::fs::remove_file(&body);
        let url = format!("http://{SERVER_ADDR}:{HTTP_PORT}/page.bin");
        let mut args = vec!["-sS", "--max-time", "15", "-w", "%{http_code}"];
        if let Some(user) = user {
            args.extend(["-u", user]);
        }
        args.extend(["-o", path_str(&body), &url]);
        let r = ns(INSIDE, "curl", &args, Duration::from_secs(20));
        assert!(
            r.success(),
            "curl {user:?}: {}\n{}",
            r.describe(),
            self.logs()
        );
        let code = r.stdout.trim().to_string();
        if code == "200" {
            let got = std::fs::read(&body).unwrap_or_default();
            assert!(
                got == self.page,
                "curl {user:?}: the page differs ({} bytes, {} expected)",
                got.len(),
                self.page.len()
            );
        }
        code
    }

    /// Rewrites the configuration with `cache_idle: idle`, sends SIGHUP and waits (≤ 10 s)
    /// until the box runs the new one; returns when it saw that.
    #[track_caller]
    fn reload(&mut self, idle: &str) -> Instant {
        write_config(&self.config, &self.testbed_yaml, idle);
        let pid = self.the_box().pid().to_string();
        run("kill", &["-HUP", &pid], Duration::from_secs(5)).expect_success("kill -HUP");
        self.reloads += 1;
        let mut gen = 0;
        let mut seen = Instant::now();
        let ok = net::poll(Duration::from_secs(10), Duration::from_millis(50), || {
            gen = net::counter(&cli_json(&["stats", "--json"]), &["policy_generation"]);
            seen = Instant::now();
            gen == self.reloads
        });
        assert!(
            ok,
            "policy generation {gen}, not {}, after SIGHUP\n{}",
            self.reloads,
            self.logs()
        );
        seen
    }

    /// Checks the accounting lines: `(outcome, port, count)` for user alice from the client,
    /// and no other login lines.
    #[track_caller]
    fn check_login_lines(&self, expected: &[(&str, u16, usize)]) {
        let expected: Vec<(String, usize)> = expected
            .iter()
            .map(|&(outcome, port, n)| {
                // The rules of config/testbed.yaml on these ports.
                let (rule, method) = if port == LINE_PORT {
                    ("line-auth", "line")
                } else {
                    ("http-basic", "http-basic")
                };
                let want = format!(
                    "login {outcome}: user \"alice\" client {CLIENT_ADDR} server \
                     {SERVER_ADDR}:{port} rule {rule} method {method} backend local"
                );
                (want, n)
            })
            .collect();
        net::check_login_lines(&self.the_box().stderr(), &expected);
    }

    /// Stops the box, which must exit cleanly; returns its final statistics.
    #[track_caller]
    fn stop(&mut self) -> serde_json::Value {
        self.the_box.take().expect("the box runs").stop()
    }
}

/// `config/testbed.yaml` with `auth: {cache_timeout: 5m, cache_idle: idle}`, checked.
#[track_caller]
fn write_config(path: &Path, testbed: &str, idle: &str) {
    let anchor = "auth:\n  cache_timeout: 5m\n";
    assert!(
        testbed.contains(anchor),
        "config/testbed.yaml changed its auth: section"
    );
    let text = testbed.replace(
        anchor,
        &format!("auth:\n  cache_timeout: 5m\n  cache_idle: {idle}\n"),
    );
    std::fs::write(path, text).expect("write the configuration");
    run(
        net::BIN,
        &["check-config", path_str(path)],
        Duration::from_secs(10),
    )
    .expect_success("check-config");
}

/// Sleeps until `t` (at once if it has passed).
fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

#[test]
fn line_login_skips_prompt_af_packet() {
    let mut rig = Rig::up("e2e-auth-line", IDLE_LONG);
    let t = Instant::now();
    rig.line(SMALL_ECHO_BYTES, &["prompt:not-wonderland,wonderland"]);
    let spliced0 = connections("spliced");
    rig.line(ECHO_BYTES, &[NO_PROMPT]);
    expect_spliced(spliced0 + 1, "the connection that skipped the prompt");
    let seen = log_lines(&rig.echo_log);
    assert!(
        seen.len() == 2
            && seen
                .iter()
                .all(|p| p.starts_with(&format!("{CLIENT_ADDR}:"))),
        "the echo server should have seen two connections from {CLIENT_ADDR}: {seen:?}"
    );
    eprintln!(
        "[line] a login after a wrong password, then a connection without a prompt: the \
         banner first, {} KiB echoed byte-exact, spliced ({:.1} s)",
        ECHO_BYTES >> 10,
        t.elapsed().as_secs_f64()
    );

    // The listing, while the box runs (the log lines are final: no more logins).
    let list = logins();
    let text = cli(&["auth", "list"]);
    rig.check_login_lines(&[("accepted", LINE_PORT, 1), ("refused", LINE_PORT, 1)]);
    assert_eq!(
        list.len(),
        1,
        "`auth list --json` should list the one login: {list:?}"
    );
    let l = &list[0];
    assert_eq!(
        (
            l["user"].as_str(),
            l["client"].as_str(),
            l["method"].as_str(),
            l["connections"].as_u64()
        ),
        (Some("alice"), Some(CLIENT_ADDR), Some("line"), Some(1)),
        "auth list --json: {l}"
    );
    assert_eq!(
        (
            l["rule"].as_str(),
            l["scope"].as_str(),
            l["backend"].as_str()
        ),
        (Some("line-auth"), Some("shared"), Some("local")),
        "auth list --json: {l}"
    );
    let (since, idle) = (l["since_ms"].as_u64(), l["idle_ms"].as_u64());
    assert!(
        matches!((since, idle), (Some(s), Some(i)) if i <= s && s < 60_000),
        "auth list --json: since_ms / idle_ms in {l}"
    );
    assert!(text.success(), "{}", text.describe());
    let listed = text.stdout.lines().any(|r| {
        let w: Vec<&str> = r.split_whitespace().collect();
        w.len() == 8
            && w[0] == "alice"
            && w[1] == CLIENT_ADDR
            && w[2] == "line"
            && w[3] == "line-auth"
            && w[4] == "local"
            && w[7] == "1"
    });
    assert!(
        listed && text.stdout.contains("1 login(s)"),
        "`auth list` does not list the login: {}",
        text.describe()
    );
    eprintln!("[line] auth list --json: {l}\n{}", text.stdout.trim_end());
    rig.stop();
}

#[test]
fn auth_clear_af_packet() {
    let mut rig = Rig::up("e2e-auth-clear", IDLE_LONG);
    let t = Instant::now();
    // By address: the next connection is prompted; the new login is cached again.
    rig.line(SMALL_ECHO_BYTES, &[LOGIN, NO_PROMPT]);
    auth_clear(&[CLIENT_ADDR], 1);
    rig.line(SMALL_ECHO_BYTES, &[LOGIN, NO_PROMPT]);
    // By user.
    auth_clear(&["--user", "alice"], 1);
    rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    // Bad and empty requests end nothing.
    let bad = cli(&["auth", "clear", "not-an-address"]);
    assert_eq!(
        bad.status.and_then(|s| s.code()),
        Some(2),
        "`auth clear not-an-address` should fail with status 2: {}",
        bad.describe()
    );
    assert!(
        bad.stderr.contains("not-an-address") && bad.stderr.contains("address"),
        "`auth clear not-an-address` should say what is wrong: {}",
        bad.describe()
    );
    let none = cli(&["auth", "clear", "--user", "nobody"]);
    assert!(
        none.success() && none.stdout.trim() == "0 login(s) ended",
        "{}",
        none.describe()
    );
    rig.line(SMALL_ECHO_BYTES, &[NO_PROMPT]);
    // One login per client address serves every rule: the line login lets http-basic
    // through without credentials, and --all ends that one login; both methods ask again.
    assert_eq!(
        rig.curl(None),
        "200",
        "http-basic without credentials, with the shared line login\n{}",
        rig.logs()
    );
    let list = logins();
    assert!(
        list.len() == 1 && list[0]["method"] == "line" && list[0]["connections"] == 2,
        "`auth list --json` should list the one line login, used by a line and an http-basic \
         connection: {list:?}"
    );
    auth_clear(&["--all"], 1);
    assert_eq!(rig.curl(None), "401", "http-basic after `auth clear --all`");
    rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    eprintln!(
        "[clear] by address, by user, --all (the one shared login, which had let http-basic \
         through): prompted again each time; `{}` -> {} ({:.1} s)",
        bad.cmdline,
        bad.stderr.trim(),
        t.elapsed().as_secs_f64()
    );
    rig.check_login_lines(&[("accepted", LINE_PORT, 4)]);
    rig.stop();
}

#[test]
fn http_basic_login_skips_credentials_af_packet() {
    let mut rig = Rig::up("e2e-auth-http", IDLE_LONG);
    let t = Instant::now();
    // No login yet (and none by line first: it would serve http-basic too).
    assert_eq!(
        rig.curl(Some("alice:not-wonderland")),
        "401",
        "a wrong password"
    );
    assert_eq!(rig.curl(None), "401", "no credentials before the login");
    let seen = log_lines(&rig.http_log);
    assert!(
        seen.is_empty(),
        "the HTTP server saw {seen:?} before the login"
    );
    assert_eq!(rig.curl(Some("alice:wonderland")), "200", "the login");
    let spliced0 = connections("spliced");
    assert_eq!(
        rig.curl(None),
        "200",
        "no credentials after the login\n{}",
        rig.logs()
    );
    expect_spliced(spliced0 + 1, "the request without credentials");
    let entries: Vec<serde_json::Value> = log_lines(&rig.http_log)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    let requests: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("request").is_some())
        .collect();
    let connections = entries
        .iter()
        .filter_map(|e| e["connection"].as_str())
        .filter(|c| c.starts_with(&format!("{CLIENT_ADDR}:")))
        .count();
    assert!(
        requests.len() == 2 && connections == 2,
        "the HTTP server should have seen two requests, on two connections from \
         {CLIENT_ADDR}: {entries:?}"
    );
    for r in &requests {
        assert_eq!(r["request"], "GET /page.bin HTTP/1.1", "{r}");
        let credentials = r["headers"].as_array().into_iter().flatten().any(|h| {
            h[0].as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
        });
        assert!(!credentials, "the server got the credentials: {r}");
    }
    // The same login serves the line rule: no prompt.
    rig.line(SMALL_ECHO_BYTES, &[NO_PROMPT]);
    eprintln!(
        "[http-basic] 401 for a wrong password and before the login; without credentials \
         after it: 200, {} KiB byte-exact, spliced, no Authorization at the server; a line \
         connection without a prompt ({:.1} s)",
        PAGE_BYTES >> 10,
        t.elapsed().as_secs_f64()
    );
    let list = logins();
    rig.check_login_lines(&[("accepted", HTTP_PORT, 1), ("refused", HTTP_PORT, 1)]);
    assert!(
        list.len() == 1
            && list[0]["user"] == "alice"
            && list[0]["client"] == CLIENT_ADDR
            && list[0]["method"] == "http-basic"
            && list[0]["rule"] == "http-basic"
            && list[0]["scope"] == "shared"
            && list[0]["connections"] == 2,
        "`auth list --json` should list the one http-basic login, used by an http-basic and \
         a line connection: {list:?}"
    );
    rig.stop();
}

#[test]
fn idle_timeout_af_packet() {
    let mut rig = Rig::up("e2e-auth-idle", IDLE_SHORT);
    let t = Instant::now();
    // A login no connection uses: forgotten after 4 s.
    let login1 = rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    sleep_until(login1.ended + PAST_IDLE);
    let login2 = rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    // Connections within the idle time skip the prompt and restart it: the second is more
    // than 4 s after the login.
    std::thread::sleep(Duration::from_millis(2500));
    let pair = rig.line(SMALL_ECHO_BYTES, &[NO_PROMPT, "sleep:2.5", NO_PROMPT]);
    let (first, second) = (pair.sessions[0], pair.sessions[1]);
    // The login was before `login2.ended`; the second connection's SYN `second.t_start`
    // after the helper started, itself after `pair.spawned`.
    let login_to_second = (pair.spawned - login2.ended).as_secs_f64() + second.t_start;
    // The first used the login after `first.t_start`; the box looked the second up before
    // its connect returned (it answers a cached client's SYN once the server has).
    let use_to_use = second.t_connected - first.t_start;
    let idle = IDLE.as_secs_f64();
    assert!(
        login_to_second > idle + 0.2,
        "inconclusive: the second connection came only {login_to_second:.2} s after the login"
    );
    assert!(
        use_to_use < idle - 0.3,
        "inconclusive: {use_to_use:.2} s between the two connections (too slow a machine for \
         a 4 s idle timeout)"
    );
    // 4 s after the last use: prompted.
    sleep_until(pair.ended + PAST_IDLE);
    let login3 = rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    eprintln!(
        "[idle] an unused login forgotten after 4 s; connections {use_to_use:.2} s apart kept \
         a login {login_to_second:.2} s old; prompted again 4 s after the last use ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    // A reload applies new timeouts to the logins already made: to 60 s, the login just made
    // outlives 4 s idle...
    let reloaded = rig.reload(IDLE_LONG);
    let login_to_reload = (reloaded - login3.spawned).as_secs_f64();
    assert!(
        login_to_reload < idle - 0.5,
        "inconclusive: the reload took effect {login_to_reload:.2} s after the login"
    );
    sleep_until(login3.ended + PAST_IDLE);
    let kept = rig.line(SMALL_ECHO_BYTES, &[NO_PROMPT]);
    // ...and back to 4 s, it ends once idle for longer.
    rig.reload(IDLE_SHORT);
    sleep_until(kept.ended + PAST_IDLE);
    rig.line(SMALL_ECHO_BYTES, &[LOGIN]);
    eprintln!(
        "[idle] reloaded to cache_idle 60s {login_to_reload:.2} s after a login: it outlived \
         4 s idle; back to 4s: ended ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    rig.check_login_lines(&[("accepted", LINE_PORT, 4)]);
    rig.stop();
}
