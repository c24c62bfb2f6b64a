//! The rig: testbed, box, nginx, echo servers, and what one curl did.

use super::*;

/// What one curl did.
pub(crate) struct Curl {
    pub(crate) code: u16,
    pub(crate) redirects: u32,
    pub(crate) effective: String,
    /// The response heads, one per response (curl -D).
    pub(crate) heads: Vec<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) cmdline: String,
}

impl Curl {
    /// Header `name` of response `i` (case-insensitive name).
    pub(crate) fn header(&self, i: usize, name: &str) -> Option<String> {
        self.heads.get(i)?.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The status line of response `i`.
    pub(crate) fn status_line(&self, i: usize) -> &str {
        self.heads
            .get(i)
            .and_then(|h| h.lines().next())
            .unwrap_or("")
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "`{}` -> {} after {} redirect(s), at {}\n--- heads ---\n{}\n--- body ({} bytes) ---\n{}",
            self.cmdline,
            self.code,
            self.redirects,
            self.effective,
            self.heads.join("\n"),
            self.body.len(),
            String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
        )
    }
}

/// One test's testbed, box and servers. Dropped in declaration order: Chromium, the servers,
/// the box (killed if still running), the testbed (torn down), the temp dir, the lock.
pub(crate) struct Rig {
    pub(crate) chromium: Option<Chromium>,
    pub(crate) servers: Vec<Background>,
    pub(crate) the_box: Option<BoxProcess>,
    pub(crate) _testbed: Testbed,
    pub(crate) tmp: TempDir,
    pub(crate) _lock: NetLock,
    pub(crate) www: PathBuf,
    pub(crate) access_log: PathBuf,
    pub(crate) seq: u32,
}

impl Rig {
    /// The testbed; the box on `config` (checked); nginx on `nginx_ports` of 198.19.0.2 (if
    /// any); the echo server on `echo_ports` (if any).
    #[track_caller]
    pub(crate) fn up(label: &str, config: &str, nginx_ports: &[u16], echo_ports: &[u16]) -> Rig {
        net::require_root();
        net::require_tools(&["curl", python()]);
        for tool in [NGINX, CHROMIUM, FREERADIUS] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run scripts/setup.sh (nginx-light, chromium, freeradius)"
            );
        }
        let lock = net::lock();
        let tmp = TempDir::new(label);
        let www = tmp.join("www");
        std::fs::create_dir_all(&www).expect("create the web root");
        for entry in std::fs::read_dir(WWW).expect("read tests/net/www") {
            let entry = entry.expect("tests/net/www");
            std::fs::copy(entry.path(), www.join(entry.file_name())).expect("copy tests/net/www");
        }
        net::random_file(&www.join(BIG), BIG_BYTES);
        let config_path = tmp.join("box.yaml");
        write_config(&config_path, config);
        let access_log = tmp.join("access.log");
        let testbed = Testbed::up("af_packet");
        let the_box = BoxProcess::start_config("af_packet", path_str(&config_path), &[]);
        let mut rig = Rig {
            chromium: None,
            servers: Vec::new(),
            the_box: Some(the_box),
            _testbed: testbed,
            tmp,
            _lock: lock,
            www,
            access_log,
            seq: 0,
        };
        if !nginx_ports.is_empty() {
            let conf = rig.tmp.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(rig.tmp.path(), nginx_ports))
                .expect("write nginx.conf");
            let prefix = format!("{}/", path_str(rig.tmp.path()));
            let err = rig.tmp.join("nginx-error.log");
            let nginx = net::start_server(
                OUTSIDE,
                nginx_ports[0],
                NGINX,
                &["-c", path_str(&conf), "-p", &prefix, "-e", path_str(&err)],
            );
            rig.servers.push(nginx);
            for &p in &nginx_ports[1..] {
                assert!(
                    net::wait_listening(OUTSIDE, p, Duration::from_secs(10)),
                    "nginx does not listen on {p}"
                );
            }
        }
        if !echo_ports.is_empty() {
            let ports: Vec<String> = echo_ports.iter().map(u16::to_string).collect();
            let mut args = vec![HELPER, "echo-server", SERVER_ADDR];
            args.extend(ports.iter().map(String::as_str));
            let echo = net::start_server(OUTSIDE, echo_ports[0], python(), &args);
            rig.servers.push(echo);
            for &p in &echo_ports[1..] {
                assert!(
                    net::wait_listening(OUTSIDE, p, Duration::from_secs(10)),
                    "the echo server does not listen on {p}"
                );
            }
        }
        rig
    }

    pub(crate) fn the_box(&self) -> &BoxProcess {
        self.the_box.as_ref().expect("the box runs")
    }

    /// The box's output and live statistics, nginx's log, for panic messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "{}\n--- nginx access log (tail) ---\n{}",
            self.the_box().logs(),
            net::tail(
                &std::fs::read_to_string(&self.access_log).unwrap_or_default(),
                6000
            )
        )
    }

    pub(crate) fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.www.join(name)).unwrap_or_else(|e| panic!("read www/{name}: {e}"))
    }

    /// curl in ct-inside: `-sS --max-time 20`, the heads and body to files, `extra` options,
    /// then `url`. Panics if curl itself fails (no connection, timeout).
    #[track_caller]
    pub(crate) fn curl(&mut self, extra: &[&str], url: &str) -> Curl {
        self.seq += 1;
        let heads_path = self.tmp.join(&format!("curl{}.heads", self.seq));
        let body_path = self.tmp.join(&format!("curl{}.body", self.seq));
        let mut args = vec![
            "-sS",
            "--max-time",
            "20",
            "-D",
            path_str(&heads_path),
            "-o",
            path_str(&body_path),
            "-w",
            "%{http_code} %{num_redirects} %{url_effective}",
        ];
        args.extend_from_slice(extra);
        args.push(url);
        let out = ns(INSIDE, "curl", &args, Duration::from_secs(30));
        assert!(out.success(), "{}\n{}", out.describe(), self.logs());
        let w: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(w.len(), 3, "curl -w: {}", out.describe());
        let heads_text = std::fs::read_to_string(&heads_path).unwrap_or_default();
        let heads = heads_text
            .replace("\r\n", "\n")
            .split("\n\n")
            .filter(|h| !h.trim().is_empty())
            .map(str::to_string)
            .collect();
        let c = Curl {
            code: w[0].parse().expect("http_code"),
            redirects: w[1].parse().expect("num_redirects"),
            effective: w[2].to_string(),
            heads,
            body: std::fs::read(&body_path).unwrap_or_default(),
            cmdline: out.cmdline,
        };
        eprintln!(
            "curl {} -> {} ({} redirect(s))",
            extra.join(" "),
            c.code,
            c.redirects
        );
        c
    }

    /// curl for `url` (on 198.19.0.2), which must answer 200 with the file's bytes without a
    /// redirect.
    #[track_caller]
    pub(crate) fn curl_ok(&mut self, extra: &[&str], url: &str, file: &str) -> Curl {
        let c = self.curl(extra, url);
        let want = self.file(file);
        assert!(
            c.code == 200 && c.redirects == 0 && c.body == want,
            "expected 200 with {file} ({} bytes) directly: {}\n{}",
            want.len(),
            c.describe(),
            self.logs()
        );
        c
    }

    /// curl without credentials for the page: the box's redirect to its login URL, exactly;
    /// the server not contacted.
    #[track_caller]
    pub(crate) fn expect_redirect(&mut self, what: &str) {
        let before = self.nginx_entries().len();
        let c = self.curl(&[], PAGE_URL);
        assert!(
            c.code == 302
                && c.heads.len() == 1
                && c.header(0, "Location").as_deref() == Some(LOGIN_URL)
                && c.header(0, "Connection").as_deref() == Some("close"),
            "{what}: expected `302` to {LOGIN_URL} with `Connection: close`: {}\n{}",
            c.describe(),
            self.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
        let after = self.nginx_entries();
        assert_eq!(
            after.len(),
            before,
            "{what}: the server was contacted for a redirected request: {:?}",
            &after[before..]
        );
    }

    /// The helper's `sessions` in ct-inside; panics unless every session did what it expects.
    /// The session records (not the marks).
    #[track_caller]
    pub(crate) fn sessions<S: AsRef<str>>(&self, specs: &[S]) -> Vec<serde_json::Value> {
        let specs: Vec<&str> = specs.iter().map(AsRef::as_ref).collect();
        let mut args = vec![HELPER, "sessions", SERVER_ADDR];
        args.extend_from_slice(&specs);
        let out = ns(INSIDE, python(), &args, Duration::from_secs(60));
        assert!(
            out.success(),
            "sessions {specs:?}: {}\n{}",
            out.describe(),
            self.logs()
        );
        let records = records(&out.stdout);
        assert_eq!(
            records.len(),
            specs.len(),
            "sessions {specs:?}: {}",
            out.describe()
        );
        for r in &records {
            eprintln!("session: {r}");
        }
        records
    }

    /// Starts the helper's `sessions` in ct-inside in the background.
    pub(crate) fn sessions_background<S: AsRef<str>>(&self, specs: &[S]) -> Background {
        let specs: Vec<&str> = specs.iter().map(AsRef::as_ref).collect();
        let mut args = vec![HELPER, "sessions", SERVER_ADDR];
        args.extend_from_slice(&specs);
        Background::ns(INSIDE, python(), &args)
    }

    /// Starts the helper's `held` in ct-inside: an HTTP connection to the page's server whose
    /// request (`GET path`) goes out once the file `signal` exists; returns once it is
    /// connected (≤ 15 s).
    #[track_caller]
    pub(crate) fn held(&self, path: &str, signal: &Path) -> Background {
        let port = WEB_PORT.to_string();
        let mut bg = Background::ns(
            INSIDE,
            python(),
            &[HELPER, "held", SERVER_ADDR, &port, path, path_str(signal)],
        );
        let connected = net::poll(Duration::from_secs(15), Duration::from_millis(10), || {
            bg.stdout().contains("\"connected\"")
        });
        assert!(connected, "the held connection: {}", bg.describe());
        bg
    }

    /// Lets a [`Rig::held`] connection send its request; its report.
    #[track_caller]
    pub(crate) fn release(&self, mut bg: Background, signal: &Path) -> serde_json::Value {
        std::fs::write(signal, b"go").expect("write the signal");
        let status = bg.wait(Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "the held connection: {}\n{}",
            bg.describe(),
            self.logs()
        );
        let r = records(&bg.stdout());
        assert_eq!(r.len(), 1, "the held connection: {}", bg.describe());
        eprintln!("held: {}", r[0]);
        r[0].clone()
    }

    /// nginx's access log: one JSON object per request.
    pub(crate) fn nginx_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("nginx log line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// Waits (≤ 5 s) until nginx logged `n` requests (it logs a request once it has answered
    /// it, a moment after the client may have read the answer); returns them all.
    #[track_caller]
    pub(crate) fn nginx_wait(&self, n: usize) -> Vec<serde_json::Value> {
        net::poll(Duration::from_secs(5), Duration::from_millis(50), || {
            self.nginx_entries().len() >= n
        });
        let entries = self.nginx_entries();
        assert!(
            entries.len() >= n,
            "nginx logged {} requests, expected {n}\n{}",
            entries.len(),
            self.logs()
        );
        entries
    }

    /// The nginx entry for request line `request` (exactly one).
    #[track_caller]
    pub(crate) fn nginx_entry(&self, request: &str) -> serde_json::Value {
        let all = self.nginx_entries();
        let found: Vec<&serde_json::Value> =
            all.iter().filter(|e| e["request"] == request).collect();
        assert_eq!(
            found.len(),
            1,
            "nginx should have logged `{request}` once: {all:#?}"
        );
        found[0].clone()
    }

    /// Checks that no request nginx logged carried alice's credentials in either header
    /// (every Basic value decoded); returns how many requests it logged.
    #[track_caller]
    pub(crate) fn nginx_never_saw_alice(&self) -> usize {
        let entries = self.nginx_entries();
        for e in &entries {
            for h in ["authorization", "proxy_authorization"] {
                let v = e[h]
                    .as_str()
                    .unwrap_or_else(|| panic!("nginx entry {e}: no {h}"));
                let decoded = basic_decode(v);
                assert!(
                    !v.contains(PASSWORD)
                        && !decoded.as_deref().is_some_and(|d| d.contains(PASSWORD)),
                    "nginx got alice's credentials in {h}: {e}"
                );
            }
        }
        entries.len()
    }

    /// The box's statistics as `cutthrough stats --json` serves them. The RADIUS counters
    /// come flat there (`radius_accepts`: DPDK's telemetry drops a container nested two
    /// deep); they are gathered under `connections.radius`, as the `--stats-json` file has
    /// them, so both are read by the same names.
    pub(crate) fn counters(&self) -> serde_json::Value {
        let mut live = stats();
        if let Some(c) = live.get_mut("connections").and_then(|c| c.as_object_mut()) {
            let radius: serde_json::Map<String, serde_json::Value> = c
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("radius_")?.to_string(), v.clone())))
                .collect();
            if !radius.is_empty() {
                c.insert("radius".into(), radius.into());
            }
        }
        live
    }

    /// Waits (≤ 5 s: the box refreshes its statistics about once a second) until the
    /// counters under `connections` (`name`, or `radius.name`) have the expected values;
    /// panics with the last values otherwise.
    #[track_caller]
    pub(crate) fn expect_counters(&self, what: &str, expected: &[(&str, u64)]) {
        let want: Vec<u64> = expected.iter().map(|e| e.1).collect();
        let mut got = Vec::new();
        let mut last = serde_json::Value::Null;
        let ok = net::poll(Duration::from_secs(5), Duration::from_millis(100), || {
            last = self.counters();
            got = expected
                .iter()
                .map(|(name, _)| {
                    let mut path = vec!["connections"];
                    path.extend(name.split('.'));
                    net::counter(&last, &path)
                })
                .collect();
            got == want
        });
        let names: Vec<&str> = expected.iter().map(|e| e.0).collect();
        assert!(
            ok,
            "{what}: counters {names:?} are {got:?}, expected {want:?}: {:#}",
            last["connections"]
        );
    }

    /// Checks the accounting lines: each `(line, count)` exactly, and no others.
    #[track_caller]
    pub(crate) fn check_login_lines(&self, expected: &[(String, usize)]) {
        net::check_login_lines(&self.the_box().stderr(), expected);
    }

    /// Stops the box (see [`Rig::stop`]) and checks its final `auth_redirected` and
    /// `portal_logins`; returns its final statistics.
    #[track_caller]
    pub(crate) fn stop_with_portal_counts(
        &mut self,
        redirected: u64,
        portal_logins: u64,
    ) -> serde_json::Value {
        let fin = self.stop();
        let c = |k: &str| net::counter(&fin, &["connections", k]);
        assert_eq!(
            (c("auth_redirected"), c("portal_logins")),
            (redirected, portal_logins),
            "final auth_redirected, portal_logins: {:#}",
            fin["connections"]
        );
        fin
    }

    /// Stops the box, which must exit cleanly; returns its final statistics.
    #[track_caller]
    pub(crate) fn stop(&mut self) -> serde_json::Value {
        self.the_box.take().expect("the box runs").stop()
    }
}
