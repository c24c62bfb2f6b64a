//! Splicing between peers whose TCP options differ, through the real box on the namespace
//! testbed (DESIGN.md §4 "TCP options ... must be reconciled", §7.3, §8, §9, §10 "Peers
//! differ; the box reconciles"), over `net_af_packet`.
//!
//! Real Linux peers: the client in ct-inside, the server in ct-outside. One side at a time has
//! one setting changed from the kernel's defaults, in its own network namespace (these sysctls
//! are per namespace on this kernel; the matrix test checks that first):
//!
//! | setting | how |
//! | --- | --- |
//! | timestamps off | `net.ipv4.tcp_timestamps=0` |
//! | SACK off | `net.ipv4.tcp_sack=0` |
//! | window scaling off | `net.ipv4.tcp_window_scaling=0` |
//! | MSS 536 / 1220 / 1360 / 1400 | `ip route change default ... advmss N`: both hosts reach the other side through their default route, so their SYN (SYN-ACK) carries that MSS |
//! | ECN on | `net.ipv4.tcp_ecn=1` (on the server a no-op for its listener unless the client asks: the default 2 already accepts) |
//! | small receive buffers | `net.ipv4.tcp_rmem="4096 8192 16384"` |
//!
//! Each setting is read first and put back after its connections (a guard, so also when the
//! test panics); the namespaces are torn down at the end of every test anyway.
//!
//! The box runs a configuration written to a temp dir (`config/testbed.yaml`'s interfaces and
//! user): six `proxy` rules, one per auth method (`none`, `line`, `http-basic`) and splice
//! point (`after-auth`, `after-request`), each on a range of [`PORTS_PER_RULE`] server ports
//! ([`RULES`]); `auth.cache_timeout` is 1 ms so every `line` and `http-basic` connection really
//! authenticates (a cached login would let the box reach the server before answering the
//! client, as with auth `none`).
//!
//! The box remembers what each server port's SYN-ACK announced (`proxy.server_options`), and
//! the server's SYN-ACK only answers what the box offered it, so a connection's outcome can
//! depend on the connections before it. In the first two tests each group of connections (one
//! setting on one side) therefore uses its own port of every rule: every connection there is
//! the box's first to that server port, whatever the order. The third test is the opposite.
//!
//! The peers: for `none` and `line` a threaded echo server (Python, written to the temp dir)
//! and a client that logs in (`line`: `Username:`/`Password:` as `alice`/`wonderland`), then
//! sends [`BYTES`] while it reads the echo, and compares every byte; the server logs the
//! SHA-256 of what it received, compared with what the client sent. For `http-basic`: curl
//! `-u alice:wonderland` POSTs [`BYTES`] to a Python HTTP server, which logs the SHA-256 of the
//! body and answers with [`BYTES`] of a random file; the download is compared byte for byte.
//!
//! A connection passes when its bytes are exact both ways, the box's statistics
//! (`--stats-json`, cumulative, compared before and after the connection) count one splice and
//! no fallback and no drain timeout for it, and the box logged `<quad>: spliced` for its quad.
//! Every test collects all its connections into a table, prints it, and then fails listing
//! every failing connection, so one run shows the whole matrix.
//!
//! 1. `every_option_mismatch_is_spliced_byte_exact`: defaults, then every setting on the
//!    client and on the server, × the six rules: 114 connections of [`BYTES`] each way.
//! 2. `option_mismatches_are_spliced_byte_exact_under_wire_faults`: a subset (defaults,
//!    timestamps off on each side, MSS 1220 on the server, SACK off on the client) × the six
//!    rules under [`FaultSpec::ISSUE`] (about 1% loss, 5% reordering, 1% duplication per path;
//!    the injector is started per group, as its iptables rules take at most 15 ports): 30
//!    connections of [`FAULT_BYTES`] each way. The injectors must have dropped, held and
//!    duplicated packets.
//! 3. `server_options_may_change_between_connections`: the same ports (`none` after-auth,
//!    `line` after-auth, `http-basic` after-request) again and again while the server's
//!    timestamps and MSS change between connections, so what the box learnt from the server's
//!    last SYN-ACK mostly no longer holds (a setting repeated at once checks that it still
//!    splices when it does): 30 connections of 1 MiB each way.
//!
//! Run as root: `cargo test --test e2e_options -- --test-threads=1 --nocapture` (about four
//! minutes here with a healthy box; every connection, every test and every wait is bounded,
//! and a test that runs out of its time budget fails the connections it did not run).
//! `CT_OPTIONS_KIB=N` changes the bytes each way per connection.
//! `CUTTHROUGH_TEST_BOX_LOG=info,control=debug` sets the box's `RUST_LOG`.

mod net;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use net::{counter, path_str, python, Background, BoxProcess, FaultSpec, Faults, TempDir, Testbed};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, ROOT, SERVER_ADDR};

/// Bytes each way per connection (`CT_OPTIONS_KIB` overrides, in KiB).
const BYTES: u64 = 2 << 20;
/// Bytes each way per connection under wire faults.
const FAULT_BYTES: u64 = 1 << 20;

/// One `proxy` rule of the test configuration, and the server port a connection uses.
#[derive(Debug, Clone, Copy)]
struct Rule {
    auth: &'static str,
    splice: &'static str,
    /// In [`RULES`] the first of the rule's [`PORTS_PER_RULE`] ports; in a case, its port.
    port: u16,
}

/// Server ports per rule: each group of connections (a setting on one side) uses its own
/// port of every rule, so no group inherits what the box learnt of a server port in another
/// (the box remembers each server port's handshake options).
const PORTS_PER_RULE: u16 = 20;

impl Rule {
    /// The rule with group `group`'s port.
    fn at(self, group: u16) -> Rule {
        assert!(group < PORTS_PER_RULE, "group {group} has no port");
        Rule {
            port: self.port + group,
            ..self
        }
    }
}

/// The six rules for group `group`.
fn rules(group: u16) -> Vec<Rule> {
    RULES.iter().map(|r| r.at(group)).collect()
}

/// The six rules, one per (auth, splice point), each on its own range of ports.
const RULES: [Rule; 6] = [
    Rule {
        auth: "none",
        splice: "after-auth",
        port: 10000,
    },
    Rule {
        auth: "none",
        splice: "after-request",
        port: 10100,
    },
    Rule {
        auth: "line",
        splice: "after-auth",
        port: 10200,
    },
    Rule {
        auth: "line",
        splice: "after-request",
        port: 10300,
    },
    Rule {
        auth: "http-basic",
        splice: "after-auth",
        port: 10400,
    },
    Rule {
        auth: "http-basic",
        splice: "after-request",
        port: 10500,
    },
];

/// One change to a peer's TCP from the kernel's defaults, in its namespace.
#[derive(Debug, Clone, Copy)]
enum Tweak {
    /// A sysctl under /proc/sys (dotted name) and its value.
    Sysctl(&'static str, &'static str),
    /// The MSS the peer announces (`advmss` on its default route).
    AdvMss(u16),
}

/// A named set of tweaks applied to one side.
#[derive(Debug, Clone, Copy)]
struct Setting {
    name: &'static str,
    tweaks: &'static [Tweak],
}

const TS_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_timestamps", "0");
const SACK_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_sack", "0");
const WSCALE_OFF: Tweak = Tweak::Sysctl("net.ipv4.tcp_window_scaling", "0");
const ECN_ON: Tweak = Tweak::Sysctl("net.ipv4.tcp_ecn", "1");
const SMALL_RMEM: Tweak = Tweak::Sysctl("net.ipv4.tcp_rmem", "4096 8192 16384");

const DEFAULTS: Setting = Setting {
    name: "defaults",
    tweaks: &[],
};
const TIMESTAMPS_OFF: Setting = Setting {
    name: "timestamps off",
    tweaks: &[TS_OFF],
};
const SACK_OFF_SETTING: Setting = Setting {
    name: "SACK off",
    tweaks: &[SACK_OFF],
};
const MSS_1220: Setting = Setting {
    name: "MSS 1220",
    tweaks: &[Tweak::AdvMss(1220)],
};

/// Every setting of the matrix (each applied to one side at a time).
const SETTINGS: &[Setting] = &[
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
enum Side {
    /// Neither: both peers at the kernel's defaults.
    Neither,
    Client,
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Neither => "-",
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    fn namespace(self) -> Option<&'static str> {
        match self {
            Side::Neither => None,
            Side::Client => Some(INSIDE),
            Side::Server => Some(OUTSIDE),
        }
    }
}

/// How long a helper command (reading or writing a setting) may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the statistics may take to show a connection's splice or fallback (the box
/// rewrites the file every second).
const STATS_SETTLE: Duration = Duration::from_secs(5);
/// How long a server may take to log a connection after its client finished.
const SERVER_LOG_WAIT: Duration = Duration::from_secs(5);

fn bytes_per_conn(default: u64) -> u64 {
    std::env::var("CT_OPTIONS_KIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&k| k > 0)
        .map_or(default, |k| k << 10)
}

// ---------------------------------------------------------------------------------------------
// The peers' settings.

/// The text of a sysctl in namespace `ns_name` (whitespace runs made single spaces).
fn sysctl_get(ns_name: &str, key: &str) -> Result<String, String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = net::ns(ns_name, "cat", &[&path], CMD_TIMEOUT);
    if !out.success() {
        return Err(format!("reading {key} in {ns_name}: {}", out.describe()));
    }
    Ok(normalize(&out.stdout))
}

fn sysctl_set(ns_name: &str, key: &str, value: &str) -> Result<(), String> {
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

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of the default route in `ns_name` (`default via GW dev DEV ...`).
fn default_route(ns_name: &str) -> Result<Vec<String>, String> {
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
fn without_advmss(words: &[String]) -> Vec<String> {
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

fn route_set(ns_name: &str, verb: &str, words: &[String]) -> Result<(), String> {
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
struct PeerTweaks {
    ns: &'static str,
    /// (key, original value), in the order they were changed.
    sysctls: Vec<(&'static str, String)>,
    /// The default route as it was, if an `advmss` was set on it.
    route: Option<Vec<String>>,
    restored: bool,
}

impl PeerTweaks {
    /// Applies `tweaks` in `ns_name`, each read back. On an error, what was applied so far is
    /// put back (the partial guard drops) before the error is returned.
    fn apply(ns_name: &'static str, tweaks: &[Tweak]) -> Result<PeerTweaks, String> {
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
    fn restore(&mut self) -> Result<(), String> {
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
fn check_sysctls_are_per_namespace() {
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

// ---------------------------------------------------------------------------------------------
// The peers' programs.

/// The servers and the echo client, in Python (`python3 HELPER CMD ARGS...`). Every socket
/// operation has a timeout; every loop is bounded by bytes or ends with its socket.
const HELPER: &str = r#####"
import hashlib, json, os, random, socket, socketserver, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def record(log, entry):
    with LOCK, open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def echo_server(addr, ports, log):
    """Echoes every connection on each port of `ports` (comma-separated); logs one JSON line
    per connection when it ends: peer, rx_len, rx_sha (what it received), error."""

    def serve(c, peer):
        h = hashlib.sha256()
        n = 0
        err = None
        try:
            c.settimeout(60)
            while True:
                d = c.recv(262144)
                if not d:
                    break
                h.update(d)
                n += len(d)
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            err = "%s: %s" % (type(e).__name__, e)
        finally:
            c.close()
            record(log, {"peer": "%s:%d" % peer[:2], "rx_len": n, "rx_sha": h.hexdigest(),
                         "error": err})

    def listen(port):
        srv = socket.create_server((addr, int(port)), backlog=64)
        while True:
            c, peer = srv.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()

    threads = [threading.Thread(target=listen, args=(p,), daemon=True) for p in ports.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def http_server(addr, ports, down, log):
    """On each port of `ports`: a POST's body is read and hashed, then answered with the file
    `down`; one JSON line per request: path, peer, rx_len, rx_sha, tx_len, authorization
    (whether the request still carried that header), error."""
    size = os.path.getsize(down)

    class Handler(BaseHTTPRequestHandler):
        timeout = 60

        def do_POST(self):
            entry = {"path": self.path, "peer": "%s:%d" % self.client_address[:2],
                     "rx_len": 0, "rx_sha": None, "tx_len": 0, "error": None,
                     "authorization": any(k.lower() == "authorization"
                                          for k in self.headers.keys())}
            try:
                n = int(self.headers.get("Content-Length", "0"))
                h = hashlib.sha256()
                got = 0
                while got < n:
                    d = self.rfile.read(min(262144, n - got))
                    if not d:
                        break
                    h.update(d)
                    got += len(d)
                entry["rx_len"], entry["rx_sha"] = got, h.hexdigest()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.send_header("Connection", "close")
                self.end_headers()
                with open(down, "rb") as f:
                    while True:
                        b = f.read(262144)
                        if not b:
                            break
                        self.wfile.write(b)
                        entry["tx_len"] += len(b)
                self.wfile.flush()
            except (OSError, ValueError) as e:
                entry["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                record(log, entry)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self):
            # HTTPServer.server_bind asks the DNS (socket.getfqdn), which times out in a
            # namespace without a resolver.
            socketserver.TCPServer.server_bind(self)
            self.server_name = addr
            self.server_port = self.server_address[1]

    servers = [Server((addr, int(p)), Handler) for p in ports.split(",")]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Failed(Exception):
    pass


def echo_client(host, port, auth, nbytes, seed, timeout):
    """Logs in (auth `line`), then sends `nbytes` seeded random bytes while it reads the echo,
    and compares every byte. Prints one JSON line: sport, stage (where it failed), tx_len,
    tx_sha, rx_len, equal, error, elapsed; exits 1 unless the echo was byte-exact."""
    n, timeout = int(nbytes), float(timeout)
    res = {"sport": None, "stage": "connect", "tx_len": 0, "tx_sha": None, "rx_len": 0,
           "equal": False, "error": None}
    t0 = time.monotonic()
    s = None
    buf = bytearray()

    def fill():
        try:
            d = s.recv(65536)
        except socket.timeout:
            raise Failed("nothing for %.0f s (have %r)" % (timeout, bytes(buf[:200])))
        if not d:
            raise Failed("EOF (have %r)" % bytes(buf[:200]))
        buf.extend(d)

    def expect(token):
        while len(buf) < len(token) and token.startswith(bytes(buf)):
            fill()
        if not buf.startswith(token):
            raise Failed("expected %r, got %r" % (token, bytes(buf[:200])))
        del buf[:len(token)]

    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
        res["sport"] = s.getsockname()[1]
        if auth == "line":
            res["stage"] = "login"
            expect(b"Username: ")
            s.sendall(b"alice\r\n")
            expect(b"Password: ")
            s.sendall(b"wonderland\r\n")
            expect(b"Authenticated as alice.\r\n")
            if buf:
                raise Failed("unexpected bytes after the login: %r" % bytes(buf[:200]))
        res["stage"] = "transfer"
        data = random.Random(int(seed)).randbytes(n)
        res["tx_sha"] = hashlib.sha256(data).hexdigest()
        errors = []

        def send():
            try:
                view = memoryview(data)
                for off in range(0, n, 65536):
                    s.sendall(view[off:off + 65536])
                    res["tx_len"] = min(off + 65536, n)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                errors.append("send after %d bytes: %s: %s" % (res["tx_len"], type(e).__name__, e))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = bytearray()
        try:
            while len(got) <= n:
                d = s.recv(262144)
                if not d:
                    break
                got += d
                res["rx_len"] = len(got)
        except socket.timeout:
            errors.append("receive stalled for %.0f s after %d bytes (%d sent)"
                          % (timeout, len(got), res["tx_len"]))
        except OSError as e:
            errors.append("receive after %d bytes (%d sent): %s: %s"
                          % (len(got), res["tx_len"], type(e).__name__, e))
        sender.join(timeout)
        if sender.is_alive():
            errors.append("the sender is stuck after %d bytes" % res["tx_len"])
        if errors:
            raise Failed("; ".join(errors))
        if len(got) != n:
            raise Failed("sent %d bytes, %d came back before EOF" % (n, len(got)))
        if got != data:
            first = next(i for i in range(n) if got[i] != data[i])
            raise Failed("the echo differs from byte %d on" % first)
        res["equal"] = True
        res["stage"] = "done"
    except (OSError, Failed) as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        res["elapsed"] = round(time.monotonic() - t0, 3)
        if s is not None:
            s.close()
        print(json.dumps(res), flush=True)
    sys.exit(0 if res["equal"] else 1)


COMMANDS = {"echo-server": echo_server, "http-server": http_server, "echo-client": echo_client}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
"#####;

/// The box's configuration: `config/testbed.yaml`'s interfaces and user, the six [`RULES`].
fn config_text() -> String {
    let testbed = std::fs::read_to_string(format!("{ROOT}/config/testbed.yaml"))
        .expect("read config/testbed.yaml");
    let hash = testbed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password_hash:"))
        .map(str::trim)
        .expect("config/testbed.yaml has no password_hash");
    let mut policy = String::new();
    for r in RULES {
        let _ = writeln!(
            policy,
            "  - name: {auth}-{splice}\n    protocol: tcp\n    ports: [\"{first}-{last}\"]\n    \
             action: proxy\n    auth: {auth}\n    splice: {splice}{in_band}",
            // The credentials in the request itself: what these connections exercise.
            in_band = if r.auth == "http-basic" {
                "\n    http_login: in-band"
            } else {
                ""
            },
            auth = r.auth,
            splice = r.splice,
            first = r.port,
            last = r.port + PORTS_PER_RULE - 1
        );
    }
    format!(
        "# Written by tests/e2e_options.rs: config/testbed.yaml's interfaces and user, one proxy\n\
         # rule per auth method and splice point.\n\
         eal: [\"--no-pci\"]\n\
         interfaces:\n  inside:\n    device: net_af_packet0,iface=ct-in0\n    addresses:\n      \
         - 198.18.0.254/24\n  outside:\n    device: net_af_packet1,iface=ct-out0\n    \
         addresses:\n      - 198.19.0.254/24\n\
         routes: []\n\
         workers:\n  count: 1\n\
         policy:\n  - name: icmp\n    protocol: icmp\n    action: pass\n\
         {policy}  - name: default-deny\n    action: deny\n\
         users:\n  - name: alice\n    password_hash: {hash}\n\
         # Every login is checked: nothing is remembered past a millisecond.\n\
         auth:\n  cache_timeout: 1ms\n"
    )
}

// ---------------------------------------------------------------------------------------------
// One connection and its verdict.

/// What one connection did.
#[derive(Debug, Clone)]
struct CaseResult {
    setting: String,
    side: &'static str,
    rule: Rule,
    sport: Option<u16>,
    /// Both directions byte-exact, checked at both ends.
    bytes_ok: bool,
    /// Why the transfer failed (client, server, or curl), if it did.
    transfer_error: Option<String>,
    /// The statistics' changes over the connection: `spliced`, `fallback`, `drain_timeout`.
    spliced: u64,
    fallback: u64,
    drain_timeout: u64,
    /// `connections.fallback_causes` that changed (if the box writes them).
    causes: String,
    /// The box's log lines about this connection's quad, shortened.
    box_log: String,
    log_spliced: bool,
    secs: f64,
    /// The case did not run (and why).
    not_run: Option<String>,
}

impl CaseResult {
    fn new(setting: &str, side: Side, rule: Rule) -> CaseResult {
        CaseResult {
            setting: setting.to_string(),
            side: side.name(),
            rule,
            sport: None,
            bytes_ok: false,
            transfer_error: None,
            spliced: 0,
            fallback: 0,
            drain_timeout: 0,
            causes: String::new(),
            box_log: String::new(),
            log_spliced: false,
            secs: 0.0,
            not_run: None,
        }
    }

    fn label(&self) -> String {
        format!(
            "{} on {} / {} {} (:{})",
            self.setting, self.side, self.rule.auth, self.rule.splice, self.rule.port
        )
    }

    /// Why this case fails; empty if it passes.
    fn problems(&self) -> Vec<String> {
        if let Some(why) = &self.not_run {
            return vec![format!("not run: {why}")];
        }
        let mut p = Vec::new();
        if !self.bytes_ok {
            p.push(format!(
                "transfer: {}",
                self.transfer_error.as_deref().unwrap_or("not byte-exact")
            ));
        }
        if self.fallback > 0 {
            let causes = if self.causes.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.causes)
            };
            p.push(format!("kept as a full proxy{causes}"));
        }
        if self.drain_timeout > 0 {
            p.push("drain timed out".into());
        }
        let unexplained = self.spliced == 0 && self.fallback == 0 && self.drain_timeout == 0;
        if unexplained || self.spliced > 1 {
            p.push(format!("stats count {} splices for it", self.spliced));
        }
        if !self.log_spliced && self.fallback == 0 {
            p.push("the box logged no splice for its quad".into());
        }
        if !self.box_log.is_empty() && !self.log_spliced {
            p.push(format!("box: {}", self.box_log));
        }
        p
    }

    fn passed(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Prints the table of `results` and panics listing every failing case (after `extra`
/// failures of the test itself), or returns if all passed.
#[track_caller]
fn report(title: &str, results: &[CaseResult], extra: &[String], elapsed: Duration) {
    let mut t = String::new();
    let _ = writeln!(t, "\n=== {title}: {} connections ===", results.len());
    let _ = writeln!(
        t,
        "{:>3}  {:<15} {:<6} {:<10} {:<13} {:>5} {:>5}  {:<5} {:>3} {:>3} {:>3}  {:>5}  result",
        "#",
        "setting",
        "side",
        "auth",
        "splice",
        "port",
        "sport",
        "bytes",
        "spl",
        "fb",
        "dt",
        "secs"
    );
    for (i, r) in results.iter().enumerate() {
        let problems = r.problems();
        let verdict = if problems.is_empty() {
            "ok".to_string()
        } else {
            format!("FAIL: {}", short(&problems.join("; "), 150))
        };
        let _ = writeln!(
            t,
            "{:>3}  {:<15} {:<6} {:<10} {:<13} {:>5} {:>5}  {:<5} {:>3} {:>3} {:>3}  {:>5.1}  {}",
            i + 1,
            r.setting,
            r.side,
            r.rule.auth,
            r.rule.splice,
            r.rule.port,
            r.sport.map_or("-".to_string(), |p| p.to_string()),
            if r.not_run.is_some() {
                "-"
            } else if r.bytes_ok {
                "exact"
            } else {
                "BAD"
            },
            r.spliced,
            r.fallback,
            r.drain_timeout,
            r.secs,
            verdict
        );
    }
    let failed: Vec<&CaseResult> = results.iter().filter(|r| !r.passed()).collect();
    let _ = writeln!(
        t,
        "=== {title}: {} passed, {} failed, in {:.1} s (spl/fb/dt: the box's spliced, fallback \
         and drain_timeout counters' change over the connection) ===",
        results.len() - failed.len(),
        failed.len(),
        elapsed.as_secs_f64()
    );
    eprintln!("{t}");
    if failed.is_empty() && extra.is_empty() {
        return;
    }
    let mut msg = format!(
        "{title}: {} of {} connections failed",
        failed.len(),
        results.len()
    );
    for e in extra {
        let _ = write!(msg, "\n- {e}");
    }
    for r in failed {
        let _ = write!(
            msg,
            "\n- {}{}: {}",
            r.label(),
            r.sport
                .map_or(String::new(), |p| format!(" client port {p}")),
            r.problems().join("; ")
        );
    }
    panic!("{msg}");
}

/// `s` cut to `max` characters, with an ellipsis.
fn short(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The connection counters the verdicts use.
#[derive(Debug, Clone, Default)]
struct Counters {
    spliced: u64,
    fallback: u64,
    drain_timeout: u64,
    causes: Vec<(String, u64)>,
}

impl Counters {
    fn of(v: &serde_json::Value) -> Counters {
        let causes = v["connections"]["fallback_causes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Counters {
            spliced: counter(v, &["connections", "spliced"]),
            fallback: counter(v, &["connections", "fallback"]),
            drain_timeout: counter(v, &["connections", "drain_timeout"]),
            causes,
        }
    }

    /// (spliced, fallback, drain_timeout, changed causes) since `before`.
    fn since(&self, before: &Counters) -> (u64, u64, u64, String) {
        let causes = self
            .causes
            .iter()
            .filter_map(|(k, n)| {
                let was = before
                    .causes
                    .iter()
                    .find(|(b, _)| b == k)
                    .map_or(0, |(_, v)| *v);
                (*n > was).then(|| format!("{k} +{}", n - was))
            })
            .collect::<Vec<_>>()
            .join(", ");
        (
            self.spliced.saturating_sub(before.spliced),
            self.fallback.saturating_sub(before.fallback),
            self.drain_timeout.saturating_sub(before.drain_timeout),
            causes,
        )
    }
}

/// The box, its servers and the files the connections move, for one test.
struct Bench {
    the_box: BoxProcess,
    _servers: Vec<Background>,
    helper: PathBuf,
    echo_log: PathBuf,
    http_log: PathBuf,
    up_file: PathBuf,
    up_sha: String,
    down: Vec<u8>,
    bytes: u64,
    /// Per socket operation of the clients (a stall longer than this fails the connection).
    stall: Duration,
    seq: u64,
    tmp: TempDir,
}

impl Bench {
    /// Writes the configuration and the helper, makes the files, starts the box and the
    /// servers. The testbed must be up.
    #[track_caller]
    fn start(label: &str, bytes: u64, stall: Duration) -> Bench {
        let tmp = TempDir::new(label);
        let helper = tmp.join("helper.py");
        std::fs::write(&helper, HELPER).expect("write the Python helper");
        let config = tmp.join("options.yaml");
        std::fs::write(&config, config_text()).expect("write the configuration");
        net::run(net::BIN, &["check-config", path_str(&config)], CMD_TIMEOUT)
            .expect_success("cutthrough check-config on the test's configuration");
        let up_file = tmp.join("up.bin");
        net::random_file(&up_file, bytes);
        let up_sha = net::sha256(&up_file);
        let down_file = tmp.join("down.bin");
        net::random_file(&down_file, bytes);
        let down = std::fs::read(&down_file).expect("read down.bin");

        let the_box = BoxProcess::start_config("af_packet", path_str(&config), &[]);
        let (echo_log, http_log) = (tmp.join("echo.log"), tmp.join("http.log"));
        let list = |auth_http: bool| -> String {
            RULES
                .iter()
                .filter(|r| (r.auth == "http-basic") == auth_http)
                .flat_map(|r| (0..PORTS_PER_RULE).map(move |g| r.at(g).port.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (echo_ports, http_ports) = (list(false), list(true));
        let mut servers = vec![
            Background::ns(
                OUTSIDE,
                python(),
                &[
                    path_str(&helper),
                    "echo-server",
                    SERVER_ADDR,
                    &echo_ports,
                    path_str(&echo_log),
                ],
            ),
            Background::ns(
                OUTSIDE,
                python(),
                &[
                    path_str(&helper),
                    "http-server",
                    SERVER_ADDR,
                    &http_ports,
                    path_str(&down_file),
                    path_str(&http_log),
                ],
            ),
        ];
        let want: Vec<u16> = (0..PORTS_PER_RULE)
            .flat_map(|g| RULES.iter().map(move |r| r.at(g).port))
            .collect();
        let mut missing = want.clone();
        net::poll(Duration::from_secs(30), Duration::from_millis(200), || {
            let out = net::ns(OUTSIDE, "ss", &["-Hltn"], CMD_TIMEOUT);
            let listening: Vec<u16> = out
                .stdout
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3))
                .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                .collect();
            missing = want
                .iter()
                .copied()
                .filter(|p| !listening.contains(p))
                .collect();
            missing.is_empty()
        });
        if !missing.is_empty() {
            let out: Vec<String> = servers.iter_mut().map(|s| s.describe()).collect();
            panic!(
                "no server listens on {missing:?} in {OUTSIDE} after 30 s:\n{}",
                out.join("\n")
            );
        }
        Bench {
            the_box,
            _servers: servers,
            helper,
            echo_log,
            http_log,
            up_file,
            up_sha,
            down,
            bytes,
            stall,
            seq: 0,
            tmp,
        }
    }

    /// The box's counters now (the last file it wrote; default if none yet).
    fn counters(&self) -> Counters {
        std::fs::read_to_string(self.the_box.stats_path())
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|v| Counters::of(&v))
            .unwrap_or_default()
    }

    /// One connection under `rule` with the peers as they are now.
    fn run_case(&mut self, setting: &str, side: Side, rule: Rule) -> CaseResult {
        let mut r = CaseResult::new(setting, side, rule);
        let t0 = Instant::now();
        self.seq += 1;
        let before = self.counters();
        if rule.auth == "http-basic" {
            self.http_case(&mut r);
        } else {
            self.echo_case(&mut r);
        }
        // The splice (or the fallback) is counted while the connection runs; the file may
        // lag up to a second.
        let mut after = self.counters();
        net::poll(STATS_SETTLE, Duration::from_millis(100), || {
            after = self.counters();
            let (s, f, d, _) = after.since(&before);
            s + f + d > 0
        });
        (r.spliced, r.fallback, r.drain_timeout, r.causes) = after.since(&before);
        if let Some(sport) = r.sport {
            let needle = format!("{CLIENT_ADDR}:{sport} -> {SERVER_ADDR}:{}: ", rule.port);
            let stderr = self.the_box.stderr();
            let lines: Vec<&str> = stderr
                .lines()
                .filter_map(|l| l.split_once(&needle).map(|(_, rest)| rest))
                .collect();
            r.log_spliced = lines.iter().any(|l| l.starts_with("spliced"));
            r.box_log = lines
                .iter()
                .filter(|l| !l.contains("accepted user"))
                .map(|l| short(l, 100))
                .collect::<Vec<_>>()
                .join(" | ");
        }
        r.secs = t0.elapsed().as_secs_f64();
        r
    }

    /// `none` / `line`: the echo client, and the server's log of what it received.
    fn echo_case(&mut self, r: &mut CaseResult) {
        let (port, bytes, seed) = (
            r.rule.port.to_string(),
            self.bytes.to_string(),
            self.seq.to_string(),
        );
        let stall = self.stall.as_secs().to_string();
        let out = net::ns(
            INSIDE,
            python(),
            &[
                path_str(&self.helper),
                "echo-client",
                SERVER_ADDR,
                &port,
                r.rule.auth,
                &bytes,
                &seed,
                &stall,
            ],
            self.stall * 4 + Duration::from_secs(30),
        );
        let res: Option<serde_json::Value> = out
            .stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok());
        let Some(res) = res else {
            r.transfer_error = Some(format!(
                "the echo client printed no result: {}",
                short(&out.describe(), 600)
            ));
            return;
        };
        r.sport = res["sport"].as_u64().map(|p| p as u16);
        if res["equal"] != true || !out.success() {
            r.transfer_error = Some(format!(
                "client ({}, {} of {} bytes back): {}",
                res["stage"].as_str().unwrap_or("?"),
                res["rx_len"],
                self.bytes,
                res["error"].as_str().unwrap_or("failed")
            ));
            return;
        }
        let Some(sport) = r.sport else {
            r.transfer_error = Some("the client reported no source port".into());
            return;
        };
        // What the server received: logged when its connection ends.
        let peer = format!("{CLIENT_ADDR}:{sport}");
        let mut entry = None;
        net::poll(SERVER_LOG_WAIT, Duration::from_millis(50), || {
            entry = log_entries(&self.echo_log)
                .into_iter()
                .rev()
                .find(|e| e["peer"].as_str() == Some(peer.as_str()));
            entry.is_some()
        });
        let Some(entry) = entry else {
            r.transfer_error = Some(format!(
                "the echo server logged no connection from {peer} (the box must connect from \
                 the client's address and port)"
            ));
            return;
        };
        if !entry["error"].is_null()
            || entry["rx_len"].as_u64() != Some(self.bytes)
            || entry["rx_sha"] != res["tx_sha"]
        {
            r.transfer_error = Some(format!(
                "the server received other bytes than the client sent: server {entry}, client \
                 tx_sha {}",
                res["tx_sha"]
            ));
            return;
        }
        r.bytes_ok = true;
    }

    /// `http-basic`: curl POSTs the upload and downloads the answer.
    fn http_case(&mut self, r: &mut CaseResult) {
        let dst = self.tmp.join(&format!("download-{}.bin", self.seq));
        let path = format!("/case/{}", self.seq);
        let url = format!("http://{SERVER_ADDR}:{}{path}", r.rule.port);
        let upload = format!("@{}", path_str(&self.up_file));
        let limit = self.stall * 4 + Duration::from_secs(20);
        let (max_time, stall) = (
            limit.as_secs().to_string(),
            self.stall.as_secs().to_string(),
        );
        let out = net::ns(
            INSIDE,
            "curl",
            &[
                "-sS",
                "--connect-timeout",
                &stall,
                "--max-time",
                &max_time,
                // A stall longer than `stall` (below one byte a second) fails it.
                "--speed-limit",
                "1",
                "--speed-time",
                &stall,
                "-u",
                "alice:wonderland",
                // The body goes right behind the head, no `100 Continue` round trip.
                "-H",
                "Expect:",
                "--data-binary",
                &upload,
                "-o",
                path_str(&dst),
                "-w",
                "\n%{http_code} %{local_port}\n",
                &url,
            ],
            limit + Duration::from_secs(10),
        );
        let last = out
            .stdout
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let mut words = last.split_whitespace();
        let code = words.next().unwrap_or("").to_string();
        r.sport = words
            .next()
            .and_then(|p| p.parse().ok())
            .filter(|&p| p != 0);
        let got = std::fs::read(&dst).unwrap_or_default();
        let _ = std::fs::remove_file(&dst);
        if !out.success() || code != "200" {
            r.transfer_error = Some(format!(
                "curl: status {code:?}, {} of {} bytes downloaded: {}",
                got.len(),
                self.bytes,
                short(out.stderr.trim(), 300)
            ));
            return;
        }
        if got != self.down {
            let first = got
                .iter()
                .zip(self.down.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(self.down.len()));
            r.transfer_error = Some(format!(
                "the download ({} bytes) differs from what the server sent ({} bytes) from byte \
                 {first} on",
                got.len(),
                self.down.len()
            ));
            return;
        }
        let mut entry = None;
        net::poll(SERVER_LOG_WAIT, Duration::from_millis(50), || {
            entry = log_entries(&self.http_log)
                .into_iter()
                .find(|e| e["path"].as_str() == Some(path.as_str()));
            entry.is_some()
        });
        let Some(entry) = entry else {
            r.transfer_error = Some(format!("the HTTP server logged no request {path}"));
            return;
        };
        if !entry["error"].is_null()
            || entry["rx_len"].as_u64() != Some(self.bytes)
            || entry["rx_sha"].as_str() != Some(self.up_sha.as_str())
        {
            r.transfer_error = Some(format!(
                "the server received another body than curl sent (sha {}): {entry}",
                self.up_sha
            ));
            return;
        }
        if entry["authorization"] == true {
            r.transfer_error = Some(format!(
                "the request reached the server with its credentials: {entry}"
            ));
            return;
        }
        if let Some(sport) = r.sport {
            let peer = format!("{CLIENT_ADDR}:{sport}");
            if entry["peer"].as_str() != Some(peer.as_str()) {
                r.transfer_error = Some(format!(
                    "the server saw the request from {} instead of {peer}",
                    entry["peer"]
                ));
                return;
            }
        }
        r.bytes_ok = true;
    }

    /// Runs every rule with `setting` applied to `side` (restored afterwards), appending to
    /// `results`; a setting that cannot be applied or restored is a failure of the test
    /// itself, in `errors`. Cases past `deadline` are not run (and fail).
    fn run_group(
        &mut self,
        setting: &Setting,
        side: Side,
        rules: &[Rule],
        deadline: Instant,
        results: &mut Vec<CaseResult>,
        errors: &mut Vec<String>,
    ) {
        let skip_all = |why: String, results: &mut Vec<CaseResult>| {
            for &rule in rules {
                let mut r = CaseResult::new(setting.name, side, rule);
                r.not_run = Some(why.clone());
                results.push(r);
            }
        };
        if Instant::now() >= deadline {
            return skip_all("the test's time budget was used up".into(), results);
        }
        if !self.the_box.alive() {
            return skip_all("the box is not running".into(), results);
        }
        let mut guard = match side.namespace() {
            Some(ns_name) => match PeerTweaks::apply(ns_name, setting.tweaks) {
                Ok(g) => Some(g),
                Err(e) => {
                    errors.push(format!(
                        "{} on the {}: could not apply: {e}",
                        setting.name,
                        side.name()
                    ));
                    return skip_all("its setting could not be applied".into(), results);
                }
            },
            None => None,
        };
        for &rule in rules {
            if Instant::now() >= deadline {
                let mut r = CaseResult::new(setting.name, side, rule);
                r.not_run = Some("the test's time budget was used up".into());
                results.push(r);
                continue;
            }
            if !self.the_box.alive() {
                let mut r = CaseResult::new(setting.name, side, rule);
                r.not_run = Some("the box is not running".into());
                results.push(r);
                continue;
            }
            let r = self.run_case(setting.name, side, rule);
            eprintln!(
                "[{}] {:.1} s: {}",
                r.label(),
                r.secs,
                if r.passed() {
                    "ok".to_string()
                } else {
                    r.problems().join("; ")
                }
            );
            results.push(r);
        }
        if let Some(g) = guard.as_mut() {
            if let Err(e) = g.restore() {
                errors.push(format!(
                    "{} on the {}: could not restore: {e}",
                    setting.name,
                    side.name()
                ));
            }
        }
    }

    /// A failure of the test itself if the box died.
    fn box_health(&mut self, errors: &mut Vec<String>) {
        if !self.the_box.alive() {
            errors.push(format!("the box died\n{}", self.the_box.logs()));
        }
    }
}

/// The JSON lines of a server's log.
fn log_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Lock, testbed and the tools: what every test here starts with.
macro_rules! testbed {
    ($lock:ident, $testbed:ident) => {
        net::require_root();
        net::require_tools(&["curl", python(), "iptables", "cat", "sh"]);
        let $lock = net::lock();
        let $testbed = Testbed::up("af_packet");
    };
}

#[test]
fn every_option_mismatch_is_spliced_byte_exact() {
    testbed!(_lock, _testbed);
    check_sysctls_are_per_namespace();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(480);
    let mut bench = Bench::start(
        "e2e-options",
        bytes_per_conn(BYTES),
        Duration::from_secs(10),
    );
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    let mut groups: Vec<(&Setting, Side)> = vec![(&DEFAULTS, Side::Neither)];
    for setting in SETTINGS {
        groups.extend([(setting, Side::Client), (setting, Side::Server)]);
    }
    for (group, (setting, side)) in groups.into_iter().enumerate() {
        let rules = rules(group as u16);
        bench.run_group(setting, side, &rules, deadline, &mut results, &mut errors);
    }
    bench.box_health(&mut errors);
    report(
        "TCP option mismatches, one side at a time",
        &results,
        &errors,
        t0.elapsed(),
    );
}

#[test]
fn option_mismatches_are_spliced_byte_exact_under_wire_faults() {
    testbed!(_lock, _testbed);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(300);
    let mut bench = Bench::start(
        "e2e-options-faults",
        bytes_per_conn(FAULT_BYTES),
        Duration::from_secs(20),
    );
    let spec = FaultSpec::ISSUE;
    let (loss, reorder, _) = spec.per_path();
    eprintln!(
        "faults per path: {:.1}% loss, {:.1}% reordering, {:.1}% duplication",
        loss * 100.0,
        reorder * 100.0,
        spec.dup * 100.0
    );
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    let groups: [(&Setting, Side); 5] = [
        (&DEFAULTS, Side::Neither),
        (&TIMESTAMPS_OFF, Side::Client),
        (&TIMESTAMPS_OFF, Side::Server),
        (&MSS_1220, Side::Server),
        (&SACK_OFF_SETTING, Side::Client),
    ];
    let (mut dropped, mut held, mut dups) = (0, 0, 0);
    for (group, (setting, side)) in groups.into_iter().enumerate() {
        let rules = rules(group as u16);
        // The injector's iptables rules take at most 15 ports: one group's six at a time.
        let ports: Vec<u16> = rules.iter().map(|r| r.port).collect();
        let faults = Faults::start(spec, &ports);
        bench.run_group(setting, side, &rules, deadline, &mut results, &mut errors);
        let fault_report = faults.stop();
        eprintln!(
            "faults during {} on the {}: {}",
            setting.name,
            side.name(),
            fault_report.summary()
        );
        dropped += fault_report.dropped();
        held += fault_report.held();
        dups += fault_report.dups();
    }
    if dropped == 0 || held == 0 || dups == 0 {
        errors.push(format!(
            "the faults did not all happen: {dropped} dropped, {held} held, {dups} duplicated"
        ));
    }
    bench.box_health(&mut errors);
    report(
        "TCP option mismatches under wire faults",
        &results,
        &errors,
        t0.elapsed(),
    );
}

#[test]
fn server_options_may_change_between_connections() {
    testbed!(_lock, _testbed);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(180);
    let mut bench = Bench::start(
        "e2e-options-toggle",
        bytes_per_conn(1 << 20),
        Duration::from_secs(10),
    );
    // The server as it is at each connection, in turn, always on the same ports: mostly
    // what the box saw of it the last time is wrong this time; a setting repeated right away
    // checks the case where it is right.
    const STATES: &[Setting] = &[
        DEFAULTS,
        TIMESTAMPS_OFF,
        TIMESTAMPS_OFF,
        DEFAULTS,
        MSS_1220,
        MSS_1220,
        Setting {
            name: "TS off+MSS 1360",
            tweaks: &[TS_OFF, Tweak::AdvMss(1360)],
        },
        Setting {
            name: "MSS 536",
            tweaks: &[Tweak::AdvMss(536)],
        },
        TIMESTAMPS_OFF,
        DEFAULTS,
    ];
    let rules = [RULES[0].at(0), RULES[2].at(0), RULES[5].at(0)];
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for state in STATES {
        let side = if state.tweaks.is_empty() {
            Side::Neither
        } else {
            Side::Server
        };
        bench.run_group(state, side, &rules, deadline, &mut results, &mut errors);
    }
    bench.box_health(&mut errors);
    report(
        "the server's options change between connections",
        &results,
        &errors,
        t0.elapsed(),
    );
}
