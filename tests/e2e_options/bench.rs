//! The box, its configuration, the peers' programs and one connection through them.

use super::*;

// ---------------------------------------------------------------------------------------------
// The peers' programs.

/// The servers and the echo client, in Python (`tests/net/options_helper.py`, run as `python3
/// HELPER CMD ARGS...`). Every socket operation has a timeout; every loop is bounded by bytes
/// or ends with its socket.
pub(crate) const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/options_helper.py");

/// The box's configuration: `config/testbed.yaml`'s interfaces and user, the six [`RULES`].
pub(crate) fn config_text() -> String {
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
         interfaces:\n  - name: inside\n    zone: inside\n    device: net_af_packet0,iface=ct-in0\n    \
         addresses:\n      - 198.18.0.254/24\n  - name: outside\n    zone: outside\n    \
         device: net_af_packet1,iface=ct-out0\n    addresses:\n      - 198.19.0.254/24\n\
         routes: []\n\
         workers:\n  count: 1\n\
         policy:\n  - name: icmp\n    protocol: icmp\n    action: pass\n\
         {policy}  - name: default-deny\n    action: deny\n\
         users:\n  - name: alice\n    password_hash: {hash}\n\
         # Every login is checked: nothing is remembered past a millisecond.\n\
         auth:\n  cache_timeout: 1ms\n"
    )
}

/// The box, its servers and the files the connections move, for one test.
pub(crate) struct Bench {
    pub(crate) the_box: BoxProcess,
    pub(crate) _servers: Vec<Background>,
    pub(crate) helper: PathBuf,
    pub(crate) echo_log: PathBuf,
    pub(crate) http_log: PathBuf,
    pub(crate) up_file: PathBuf,
    pub(crate) up_sha: String,
    pub(crate) down: Vec<u8>,
    pub(crate) bytes: u64,
    /// Per socket operation of the clients (a stall longer than this fails the connection).
    pub(crate) stall: Duration,
    pub(crate) seq: u64,
    pub(crate) tmp: TempDir,
}

impl Bench {
    /// Writes the configuration and the helper, makes the files, starts the box and the
    /// servers. The testbed must be up.
    #[track_caller]
    pub(crate) fn start(label: &str, bytes: u64, stall: Duration) -> Bench {
        let tmp = TempDir::new(label);
        let helper = PathBuf::from(HELPER);
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
    pub(crate) fn counters(&self) -> Counters {
        std::fs::read_to_string(self.the_box.stats_path())
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|v| Counters::of(&v))
            .unwrap_or_default()
    }

    /// One connection under `rule` with the peers as they are now.
    pub(crate) fn run_case(&mut self, setting: &str, side: Side, rule: Rule) -> CaseResult {
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
    pub(crate) fn echo_case(&mut self, r: &mut CaseResult) {
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
    pub(crate) fn http_case(&mut self, r: &mut CaseResult) {
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
    pub(crate) fn run_group(
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
    pub(crate) fn box_health(&mut self, errors: &mut Vec<String>) {
        if !self.the_box.alive() {
            errors.push(format!("the box died\n{}", self.the_box.logs()));
        }
    }
}

/// The JSON lines of a server's log.
pub(crate) fn log_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
