//! Seeded streams through the box with `tests/net/traffic.py`, checked at both ends.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;

/// One `traffic.py client` run (see [`TRAFFIC`]): `conns` concurrent connections to
/// [`SERVER_ADDR`]`:port` from ct-inside, each sending `up` and receiving `down` bytes.
#[derive(Debug, Clone)]
pub struct Streams {
    pub port: u16,
    /// `none`, `line` or `http`.
    pub auth: &'static str,
    pub conns: usize,
    pub up: u64,
    pub down: u64,
    /// Seeds `seed0..seed0 + conns`: unique per server log.
    pub seed0: u64,
    /// The request and the first upload bytes go out with the credentials, before the box
    /// has answered: they are in flight while it authenticates and drains.
    pub pipeline: bool,
    /// The server greets first (`READY`): needed with `line` (see `traffic.py`).
    pub banner: bool,
    /// Per socket operation.
    pub timeout: Duration,
    /// Every connection must end in a reset (instead of completing).
    pub expect_reset: bool,
}

impl Streams {
    pub fn new(port: u16, auth: &'static str, conns: usize, up: u64, down: u64) -> Streams {
        Streams {
            port,
            auth,
            conns,
            up,
            down,
            seed0: 1,
            pipeline: false,
            banner: auth == "line",
            timeout: Duration::from_secs(60),
            expect_reset: false,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            TRAFFIC,
            "client",
            SERVER_ADDR,
            &self.port.to_string(),
            "--conns",
            &self.conns.to_string(),
            "--up",
            &self.up.to_string(),
            "--down",
            &self.down.to_string(),
            "--auth",
            self.auth,
            "--seed0",
            &self.seed0.to_string(),
            "--timeout",
            &self.timeout.as_secs().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.pipeline {
            a.push("--pipeline".into());
        }
        if self.banner {
            a.push("--banner".into());
        }
        if self.expect_reset {
            a.extend(["--expect".into(), "reset".into()]);
        }
        a
    }

    /// Starts the client in the background (several can run at once).
    pub fn start(&self) -> Background {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Background::ns(INSIDE, python(), &args)
    }

    /// The longest a run may take: its client gives up by then on its own.
    pub fn limit(&self) -> Duration {
        self.timeout * 4 + Duration::from_secs(90)
    }

    /// Runs the client to its end; returns its per-connection results and summary.
    #[track_caller]
    pub fn run(&self) -> StreamsResult {
        let mut bg = self.start();
        self.finish(&mut bg)
    }

    /// Waits for a client started with [`Streams::start`].
    #[track_caller]
    pub fn finish(&self, bg: &mut Background) -> StreamsResult {
        let status = bg.wait(self.limit());
        let stdout = bg.stdout();
        let mut conns = Vec::new();
        let mut summary = serde_json::Value::Null;
        for line in stdout.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if v.get("summary").is_some() {
                    summary = v;
                } else {
                    conns.push(v);
                }
            }
        }
        StreamsResult {
            spec: self.clone(),
            ok: status.is_some_and(|s| s.success()),
            conns,
            summary,
            describe: bg.describe(),
        }
    }
}

/// What a [`Streams`] run reported.
#[derive(Debug)]
pub struct StreamsResult {
    pub spec: Streams,
    /// The client exited 0 (every connection as expected).
    pub ok: bool,
    pub conns: Vec<serde_json::Value>,
    pub summary: serde_json::Value,
    pub describe: String,
}

impl StreamsResult {
    /// One line for the test output.
    pub fn line(&self) -> String {
        let s = &self.summary;
        format!(
            "[{} {}] {} connections x {} MiB up + {} MiB down: {} failed, {:.1} s, {} Mbit/s",
            self.spec.port,
            self.spec.auth,
            self.spec.conns,
            self.spec.up >> 20,
            self.spec.down >> 20,
            s["failed"],
            s["seconds"].as_f64().unwrap_or(0.0),
            s["mbit_s"]
        )
    }

    /// Panics unless every connection completed without error or reset, moved exactly
    /// `up`/`down` bytes, and the server (its `traffic.py server` log) received exactly what
    /// the client sent and sent exactly what the client received (SHA-256 both ways).
    #[track_caller]
    pub fn verify(&self, server_log: &Path, context: &str) {
        let what = self.line();
        assert!(
            self.ok && self.conns.len() == self.spec.conns,
            "{what}: the client failed\n{}\n{context}",
            self.describe
        );
        // The client is done once it has sent its last bytes and read the server's FIN; the
        // server logs a connection when it has read the client's last bytes and FIN, which
        // may be a moment later.
        let read_log = || -> Vec<serde_json::Value> {
            fs::read_to_string(server_log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        };
        let all_logged = |server: &[serde_json::Value]| {
            self.conns.iter().all(|c| {
                server
                    .iter()
                    .any(|s| s["seed"].is_u64() && s["seed"] == c["seed"])
            })
        };
        poll(Duration::from_secs(30), Duration::from_millis(100), || {
            all_logged(&read_log())
        });
        let server = read_log();
        for c in &self.conns {
            let seed = c["seed"].as_u64().expect("seed");
            assert!(
                c["error"].is_null() && c["reset"] == false,
                "{what}: connection {c} failed\n{}\n{context}",
                self.describe
            );
            assert_eq!(c["tx_len"], self.spec.up, "{what}: sent: {c}");
            assert_eq!(c["rx_len"], self.spec.down, "{what}: received: {c}");
            let s = server
                .iter()
                .find(|s| s["seed"].as_u64() == Some(seed))
                .unwrap_or_else(|| {
                    panic!("{what}: the server logged no connection with seed {seed}: {c}")
                });
            assert!(
                s["error"].is_null(),
                "{what}: the server's side of seed {seed} failed: {s}\nclient: {c}\n{context}"
            );
            assert_eq!(
                s["rx_sha"], c["tx_sha"],
                "{what}: seed {seed}: the server received other bytes than the client sent \
                 (server {s}, client {c})\n{context}"
            );
            assert_eq!(
                s["tx_sha"], c["rx_sha"],
                "{what}: seed {seed}: the client received other bytes than the server sent \
                 (server {s}, client {c})\n{context}"
            );
        }
    }
}

/// Starts `traffic.py server` on `port` in ct-outside (with the `READY` banner if `banner`),
/// logging to `log`.
#[track_caller]
pub fn traffic_server(port: u16, log: &Path, banner: bool) -> Background {
    let p = port.to_string();
    let mut args = vec![TRAFFIC, "server", SERVER_ADDR, &p, path_str(log)];
    if banner {
        args.push("--banner");
    }
    start_server(OUTSIDE, port, python(), &args)
}
