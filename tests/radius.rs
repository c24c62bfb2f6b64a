//! The RADIUS client (`control::auth::radius`) against a real FreeRADIUS 3.2 on 127.0.0.1,
//! started per test by `tests/net/freeradius.py` on a free port with a directory of its own,
//! so the tests run in parallel with each other and with the rest of `cargo test`.
//!
//! The server is killed when its guard drops, on success and on panic alike; every wait is
//! bounded. Without `/usr/sbin/freeradius` the tests fail (run scripts/setup.sh), they do not
//! pass silently.

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::config::{Radius, RadiusServer};
use common::wire::Ipv4Addr;
use control::auth::radius::{RadiusAnswer, RadiusClient, RadiusStats};

const FREERADIUS: &str = "/usr/sbin/freeradius";
const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/freeradius.py");
const SECRET: &str = "testing123-cutthrough";
const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// How long FreeRADIUS may take to say it is ready (it takes ~0.1 s).
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The one line of the normal log that says the sockets are open.
const READY: &str = "Ready to process requests";

/// 128 bytes, the longest password PAP carries: eight chained blocks.
const LONG_PASSWORD: &str = "correct horse battery staple, \"quoted\" and \\backslashed\\: \
                             the longest password that fits in one User-Password, padded";

fn users() -> Vec<(String, String)> {
    let mut u = vec![
        ("alice".to_owned(), "wonderland".to_owned()),
        ("bob".to_owned(), "builder".to_owned()),
        ("long".to_owned(), format!("{LONG_PASSWORD:.<128}")),
        ("sixteen".to_owned(), "exactly16bytes!!".to_owned()),
    ];
    for i in 0..4 {
        u.push((format!("user{i}"), format!("password-of-user-{i}")));
    }
    u
}

/// A FreeRADIUS process on 127.0.0.1 with [`users`]; killed and its directory removed on drop.
struct FreeRadius {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl FreeRadius {
    fn start() -> FreeRadius {
        assert!(
            Path::new(FREERADIUS).exists(),
            "{FREERADIUS} is missing: run scripts/setup.sh (packages freeradius, freeradius-utils)"
        );
        // The free port found can be taken by someone else before FreeRADIUS binds it: then
        // it exits, and another port is tried.
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = unique_dir();
            let port = free_udp_port();
            let mut command = Command::new("python3");
            command
                .arg(HARNESS)
                .args(["--dir", dir.to_str().unwrap()])
                .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
                .args(["--secret", SECRET, "--client", "127.0.0.0/8"])
                // A test binary killed mid-test (a CI timeout) leaves no server behind.
                .arg("--die-with-parent");
            for (name, password) in users() {
                command.arg("--user").arg(format!("{name}:{password}"));
            }
            fs::create_dir_all(&dir).unwrap();
            // To a file, never a pipe: nothing can block on a full pipe or hold it open.
            let log = dir.join("stdout.log");
            let out = fs::File::create(&log).unwrap();
            let child = command
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("cannot run python3 tests/net/freeradius.py");
            let mut server = FreeRadius { child, dir, port };
            match server.wait_ready(&log) {
                Ok(()) => return server,
                Err(text) => last_log = text,
            }
        }
        panic!("FreeRADIUS did not start; its last output:\n{last_log}");
    }

    /// Waits for [`READY`] in the log; the log text if the server exits first.
    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = fs::read_to_string(log).unwrap_or_default();
            if text.contains(READY) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(exited with {status})\n{text}"));
            }
            assert!(
                Instant::now() < deadline,
                "FreeRADIUS not ready after {READY_TIMEOUT:?}; its output:\n{text}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn server(&self) -> RadiusServer {
        server(self.port, SECRET)
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        // The harness execs FreeRADIUS, so the child is the server itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn unique_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "cutthrough-radius-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("no free UDP port on 127.0.0.1")
        .port()
}

fn server(port: u16, secret: &str) -> RadiusServer {
    RadiusServer {
        address: LOCALHOST,
        port,
        secret: secret.to_owned(),
    }
}

fn client(servers: Vec<RadiusServer>, timeout: Duration, retries: u32) -> RadiusClient {
    RadiusClient::new(&Radius {
        servers,
        timeout,
        retries,
        nas_identifier: "cutthrough-test".to_owned(),
    })
}

/// A UDP socket that never answers: a server that is down without telling (no ICMP).
fn silent_server() -> (UdpSocket, RadiusServer) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    (s, server(port, SECRET))
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// Asks `c` whether `user` logs in with `password`, checks the answer, and returns how long
/// the answer took.
fn ask(c: &RadiusClient, user: &str, password: &str, want: RadiusAnswer) -> Duration {
    let started = Instant::now();
    let got = c.authenticate(user.as_bytes(), password.as_bytes());
    assert_eq!(got, want, "{user} with {password:?}");
    started.elapsed()
}

/// The counters after one login that none of `servers` answered, each asked `tries` times.
fn unanswered(servers: u64, tries: u64) -> RadiusStats {
    RadiusStats {
        requests: servers,
        retransmissions: servers * (tries - 1),
        timeouts: servers * tries,
        unavailable: 1,
        ..RadiusStats::default()
    }
}

#[test]
fn right_password_is_accepted() {
    let fr = FreeRadius::start();
    let c = client(vec![fr.server()], TIMEOUT, 1);
    ask(&c, "alice", "wonderland", RadiusAnswer::Accept);
    assert_eq!(
        c.counters().snapshot(),
        RadiusStats {
            requests: 1,
            accepts: 1,
            ..RadiusStats::default()
        }
    );
}

#[test]
fn passwords_of_one_and_of_eight_blocks_are_accepted() {
    let fr = FreeRadius::start();
    let c = client(vec![fr.server()], TIMEOUT, 1);
    for (name, password) in users() {
        ask(&c, &name, &password, RadiusAnswer::Accept);
    }
    assert_eq!(users()[2].1.len(), 128);
}

#[test]
fn wrong_password_is_rejected() {
    let fr = FreeRadius::start();
    let c = client(vec![fr.server()], TIMEOUT, 1);
    ask(&c, "alice", "wonderlanD", RadiusAnswer::Reject);
    // A prefix of the right password, and one that differs only in its second block.
    ask(&c, "alice", "wonder", RadiusAnswer::Reject);
    let mut long = users()[2].1.clone().into_bytes();
    long[20] ^= 1;
    assert_eq!(c.authenticate(b"long", &long), RadiusAnswer::Reject);
    let s = c.counters().snapshot();
    assert_eq!(
        (s.requests, s.rejects, s.accepts, s.bad_responses),
        (3, 3, 0, 0)
    );
}

#[test]
fn unknown_user_is_rejected() {
    let fr = FreeRadius::start();
    let c = client(vec![fr.server()], TIMEOUT, 1);
    ask(&c, "mallory", "wonderland", RadiusAnswer::Reject);
    assert_eq!(c.counters().snapshot().rejects, 1);
}

#[test]
fn wrong_shared_secret_gets_no_answer() {
    let fr = FreeRadius::start();
    // FreeRADIUS drops a request whose Message-Authenticator does not check, without a word.
    let c = client(
        vec![server(fr.port, "not-the-secret")],
        Duration::from_millis(300),
        1,
    );
    let took = ask(&c, "alice", "wonderland", RadiusAnswer::NoAnswer);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(c.counters().snapshot(), unanswered(1, 2));
}

#[test]
fn a_silent_first_server_fails_over_to_the_second() {
    let fr = FreeRadius::start();
    let (silent, first) = silent_server();
    let c = client(vec![first, fr.server()], Duration::from_millis(200), 1);
    let took = ask(&c, "alice", "wonderland", RadiusAnswer::Accept);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        c.counters().snapshot(),
        RadiusStats {
            requests: 2,
            retransmissions: 1,
            timeouts: 2,
            accepts: 1,
            ..RadiusStats::default()
        }
    );
    // The silent server got the request twice, the same bytes both times.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = silent.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1]);
}

#[test]
fn a_closed_first_port_moves_on_at_once() {
    let fr = FreeRadius::start();
    let closed = server(free_udp_port(), SECRET);
    let c = client(vec![closed, fr.server()], TIMEOUT, 2);
    let took = ask(&c, "bob", "builder", RadiusAnswer::Accept);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let s = c.counters().snapshot();
    assert_eq!((s.requests, s.timeouts, s.accepts), (2, 0, 1));
}

#[test]
fn both_silent_is_no_answer_within_the_bound() {
    let (_a, first) = silent_server();
    let (_b, second) = silent_server();
    let c = client(vec![first, second], Duration::from_millis(200), 1);
    let took = ask(&c, "alice", "wonderland", RadiusAnswer::NoAnswer);
    // servers × tries × timeout = 2 × 2 × 200 ms.
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(c.counters().snapshot(), unanswered(2, 2));
}

#[test]
fn concurrent_logins_get_their_own_answers() {
    let fr = FreeRadius::start();
    let c = Arc::new(client(vec![fr.server()], TIMEOUT, 2));
    const ROUNDS: usize = 10;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let name = format!("user{i}");
                let right = format!("password-of-user-{i}");
                // Another thread's password: right for someone, wrong for this user.
                let other = format!("password-of-user-{}", (i + 1) % 4);
                for round in 0..ROUNDS {
                    let (password, want) = if (round + i) % 2 == 0 {
                        (&right, RadiusAnswer::Accept)
                    } else {
                        (&other, RadiusAnswer::Reject)
                    };
                    let got = c.authenticate(name.as_bytes(), password.as_bytes());
                    assert_eq!(got, want, "{name} round {round}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a login thread failed");
    }
    let s = c.counters().snapshot();
    assert_eq!(
        (
            s.requests,
            s.accepts,
            s.rejects,
            s.bad_responses,
            s.unavailable
        ),
        (
            4 * ROUNDS as u64,
            2 * ROUNDS as u64,
            2 * ROUNDS as u64,
            0,
            0
        )
    );
}
