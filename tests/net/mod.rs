//! The shared harness of the end-to-end tests on the namespace testbed (DESIGN.md §7.3, §9).
//!
//! Include it from a test file with `mod net;`. Every network test starts with
//!
//! ```ignore
//! net::require_root();
//! let _lock = net::lock();
//! let _testbed = net::Testbed::up("af_packet");
//! let the_box = net::BoxProcess::start("af_packet");
//! ```
//!
//! and drops them in the reverse order (the box is killed, then the testbed torn down, then
//! the lock released), on success and on panic alike.
//!
//! Every external command runs with a hard timeout (`timeout -k 2 SECS`, and a Rust-side
//! deadline as a backstop), and every loop here is bounded in count and in time. Commands write
//! their output to files, never to pipes, so a stray grandchild holding a pipe open cannot hang
//! a test. Only the addresses inside the testbed's namespaces (198.18.0.0/15) are used.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The package root: `config/`, `scripts/` are relative to it.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The box.
pub const BIN: &str = env!("CARGO_BIN_EXE_cutthrough");

/// The namespaces and addresses of the testbed contract (DESIGN.md §9).
pub const INSIDE: &str = "ct-inside";
pub const OUTSIDE: &str = "ct-outside";
pub const CLIENT_ADDR: &str = "198.18.0.1";
pub const SERVER_ADDR: &str = "198.19.0.2";
pub const BOX_INSIDE_ADDR: &str = "198.18.0.254";
pub const BOX_OUTSIDE_ADDR: &str = "198.19.0.254";

/// How long the box may take to answer its first ping.
pub const BOX_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the box may take to stop after SIGTERM before it is killed.
pub const BOX_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The testbed's names are fixed, so one network test at a time (the tests of one binary run
/// on several threads). Take it with [`lock`] before anything else.
pub static LOCK: Mutex<()> = Mutex::new(());

/// The lock file that serializes testbed users across processes (other test binaries, other
/// `cargo test` runs): held with flock(1) for as long as a [`NetLock`] lives.
pub const TESTBED_LOCK_FILE: &str = "/run/cutthrough-testbed.lock";

/// How long [`lock`] waits for another process's testbed user to finish.
pub const TESTBED_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

/// [`LOCK`] plus the cross-process flock on [`TESTBED_LOCK_FILE`]; both released on drop.
pub struct NetLock {
    /// `flock -w T FILE sh -c 'echo locked; exec cat'`: holds the lock until its stdin closes
    /// (on drop, or when this process dies, so a crashed test never leaves it held).
    holder: Child,
    _guard: MutexGuard<'static, ()>,
}

impl Drop for NetLock {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        if wait_until(&mut self.holder, Duration::from_secs(5)).is_none() {
            let _ = self.holder.kill();
            let _ = self.holder.wait();
        }
    }
}

/// Takes [`LOCK`] (recovering it if a previous test panicked while holding it: that test's
/// guards have torn its testbed down by then), then the cross-process lock on
/// [`TESTBED_LOCK_FILE`] (≤ 15 min, then panics).
pub fn lock() -> NetLock {
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let wait = TESTBED_LOCK_TIMEOUT.as_secs().to_string();
    let mut holder = Command::new("flock")
        .args([
            "-w",
            &wait,
            TESTBED_LOCK_FILE,
            "sh",
            "-c",
            "echo locked; exec cat >/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn flock: {e}"));
    let mut line = String::new();
    // Blocks until the lock is ours, or flock gives up after its -w timeout (EOF).
    let _ =
        std::io::BufReader::new(holder.stdout.take().expect("flock stdout")).read_line(&mut line);
    if line.trim() != "locked" {
        let _ = holder.kill();
        let _ = holder.wait();
        panic!(
            "another process has held the testbed lock {TESTBED_LOCK_FILE} for {} s",
            TESTBED_LOCK_TIMEOUT.as_secs()
        );
    }
    NetLock {
        holder,
        _guard: guard,
    }
}

/// Panics unless the effective user is root. The network tests need namespaces, veths and
/// raw sockets; a test that skipped itself without them would be a test that cannot fail.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("no Uid line in /proc/self/status");
    assert_eq!(
        euid, "0",
        "the end-to-end network tests must run as root (they create network namespaces, veth \
         pairs and DPDK ports); run `cargo test` as root, e.g. `sudo -E cargo test --test \
         e2e_forward`"
    );
}

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "cutthrough-{label}-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What a command run by [`run`] or [`ns`] did.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
    pub cmdline: String,
    /// `None` if the harness had to kill it (the Rust-side deadline passed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `timeout` killed it (status 124, or 137 after `-k`), or the harness did.
    pub fn timed_out(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => matches!(s.code(), Some(124) | Some(137)),
        }
    }

    /// Everything about the run, for an assertion message.
    pub fn describe(&self) -> String {
        format!(
            "`{}` -> {} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            match self.status {
                Some(s) => s.to_string(),
                None => "killed by the harness".to_string(),
            },
            self.elapsed.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Panics with [`Output::describe`] unless it succeeded; returns `self` for chaining.
    #[track_caller]
    pub fn expect_success(self, what: &str) -> Output {
        assert!(self.success(), "{what} failed: {}", self.describe());
        self
    }
}

fn quote(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd args...` under `timeout -k 2 SECS` and waits for it, at most `timeout` + 5 s
/// (after which it is killed). Output goes through files, so nothing the command leaves behind
/// can hang the caller.
pub fn run(cmd: &str, args: &[&str], timeout: Duration) -> Output {
    let secs = format!("{:.3}", timeout.as_secs_f64().max(0.1));
    let mut full: Vec<&str> = vec!["-k", "2", &secs, cmd];
    full.extend_from_slice(args);
    let cmdline = quote(&[&[cmd], args].concat());

    let dir = TempDir::new("cmd");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let started = Instant::now();
    let mut child = Command::new("timeout")
        .args(&full)
        .current_dir(ROOT)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `timeout {}`: {e}", quote(&full)));
    let status = wait_until(&mut child, timeout + Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Output {
        cmdline,
        status,
        stdout: read_lossy(&out_path),
        stderr: read_lossy(&err_path),
        elapsed: started.elapsed(),
    }
}

/// [`run`] inside network namespace `ns` (`ip netns exec NS cmd args...`).
pub fn ns(ns: &str, cmd: &str, args: &[&str], timeout: Duration) -> Output {
    let mut full: Vec<&str> = vec!["netns", "exec", ns, cmd];
    full.extend_from_slice(args);
    let mut out = run("ip", &full, timeout);
    out.cmdline = format!("[{ns}] {}", quote(&[&[cmd], args].concat()));
    out
}

/// Polls `child` until it exits or `limit` passes; `None` if it is still running.
fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    // Bounded: at most limit / 10 ms + 1 polls.
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return None,
            Err(e) => panic!("waiting for a child process: {e}"),
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `max` bytes of a text (on a character boundary), for panic messages.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Polls `probe` every `every` until it returns true or `limit` passes. Bounded in time and
/// (through `every`) in count; returns whether it succeeded.
pub fn poll(limit: Duration, every: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let max_tries = (limit.as_millis() / every.as_millis().max(1)) as u64 + 1;
    for _ in 0..max_tries {
        if probe() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
    false
}

/// The commands the harness and the tests run (`scripts/setup.sh` installs them).
pub const TOOLS: &[&str] = &[
    "ip",
    "ethtool",
    "ping",
    "socat",
    "nc",
    "ss",
    "sha256sum",
    "timeout",
    "flock",
    "kill",
];

/// Panics, naming them, if any of `tools` is not on PATH (rather than failing later with a
/// misleading timeout).
#[track_caller]
pub fn require_tools(tools: &[&str]) {
    let script = r#"for t in "$@"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done"#;
    let mut args = vec!["-c", script, "sh"];
    args.extend_from_slice(tools);
    let out = Command::new("sh")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let missing = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = missing.split_whitespace().collect();
    assert!(
        missing.is_empty(),
        "the end-to-end tests need {missing:?} (ping is in iputils-ping, nc in \
         netcat-openbsd): run scripts/setup.sh or install them"
    );
}

/// The testbed of DESIGN.md §9, up for the lifetime of this value: `scripts/testbed.sh up
/// --ports PORTS` (after a `down`, so leftovers of an earlier crashed run go away); dropping it
/// runs `scripts/testbed.sh down`, also when the test panics.
pub struct Testbed {
    ports: String,
}

impl Testbed {
    #[track_caller]
    pub fn up(ports: &str) -> Testbed {
        require_tools(TOOLS);
        testbed(&["down"]).expect_success("scripts/testbed.sh down");
        // From here on, Drop tears down whatever `up` managed to build.
        let tb = Testbed {
            ports: ports.to_string(),
        };
        testbed(&["up", "--ports", ports]).expect_success("scripts/testbed.sh up");
        tb
    }

    pub fn ports(&self) -> &str {
        &self.ports
    }

    /// The EAL arguments for the box on this testbed (`scripts/testbed.sh eal-args`).
    pub fn eal_args(&self) -> Vec<String> {
        eal_args()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let out = testbed(&["down"]);
        if !out.success() {
            eprintln!("warning: {}", out.describe());
        }
    }
}

fn testbed(args: &[&str]) -> Output {
    let script = format!("{ROOT}/scripts/testbed.sh");
    run(&script, args, Duration::from_secs(60))
}

/// `scripts/testbed.sh eal-args`, split into words.
pub fn eal_args() -> Vec<String> {
    testbed(&["eal-args"])
        .expect_success("scripts/testbed.sh eal-args")
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A long-running process (a server) started in the background, its output in files;
/// killed (SIGKILL) on drop if still running.
pub struct Background {
    cmdline: String,
    child: Child,
    status: Option<ExitStatus>,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Background {
    /// Starts `cmd args...` in namespace `ns`. `ip netns exec` execs the command, so the
    /// child is the server itself.
    pub fn ns(ns: &str, cmd: &str, args: &[&str]) -> Background {
        let mut full: Vec<&str> = vec!["netns", "exec", ns, cmd];
        full.extend_from_slice(args);
        let mut bg = Background::spawn("ip", &full);
        bg.cmdline = format!("[{ns}] {}", quote(&[&[cmd], args].concat()));
        bg
    }

    /// Starts `cmd args...` in the root namespace.
    pub fn spawn(cmd: &str, args: &[&str]) -> Background {
        let dir = TempDir::new("bg");
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        let child = Command::new(cmd)
            .args(args)
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout file"))
            .stderr(File::create(&stderr).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{}`: {e}", quote(&[&[cmd], args].concat())));
        Background {
            cmdline: quote(&[&[cmd], args].concat()),
            child,
            status: None,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits at most `limit` for it to exit; `None` if it is still running.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_until(&mut self.child, limit);
        }
        self.status
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout)
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    pub fn describe(&mut self) -> String {
        let status = match self.try_status() {
            Some(s) => s.to_string(),
            None => "still running".to_string(),
        };
        format!(
            "`{}` ({status})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            tail(&self.stdout(), 4000).trim_end(),
            tail(&self.stderr(), 4000).trim_end()
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = wait_until(&mut self.child, Duration::from_secs(5));
        }
    }
}

/// Waits (≤ `limit`) until something listens on TCP `port` in namespace `ns`.
pub fn wait_listening(ns_name: &str, port: u16, limit: Duration) -> bool {
    let filter = format!("sport = :{port}");
    poll(limit, Duration::from_millis(50), || {
        let out = ns(ns_name, "ss", &["-Hltn", &filter], Duration::from_secs(5));
        out.success() && !out.stdout.trim().is_empty()
    })
}

/// The environment variable that overrides the box's `RUST_LOG` in the tests (e.g.
/// `CUTTHROUGH_TEST_BOX_LOG=info,control=debug cargo test --test e2e_proxy`).
pub const BOX_LOG_ENV: &str = "CUTTHROUGH_TEST_BOX_LOG";

/// The box's `RUST_LOG`: `$CUTTHROUGH_TEST_BOX_LOG` if set, else `info`.
pub fn box_log_filter() -> String {
    std::env::var(BOX_LOG_ENV).unwrap_or_else(|_| "info".to_string())
}

/// The box (`cutthrough run`) on the testbed, with its stats file and stderr in a temp dir.
/// Dropping it while it still runs kills it (and prints the tail of its stderr if the test is
/// panicking).
pub struct BoxProcess {
    child: Child,
    status: Option<ExitStatus>,
    stats: PathBuf,
    stderr: PathBuf,
    stdout: PathBuf,
    dir: TempDir,
    started: Instant,
}

impl BoxProcess {
    /// Starts the box with `config/testbed.yaml` and the EAL arguments of
    /// `scripts/testbed.sh eal-args` (the testbed must be up with the same `ports`), and waits
    /// until it answers ping on its inside address (≤ 30 s); panics with its stderr otherwise.
    #[track_caller]
    pub fn start(ports: &str) -> BoxProcess {
        Self::start_with(ports, &[])
    }

    /// As [`BoxProcess::start`], with more EAL arguments (e.g. `--no-huge`).
    #[track_caller]
    pub fn start_with(ports: &str, extra_eal: &[&str]) -> BoxProcess {
        Self::start_config(ports, &format!("{ROOT}/config/testbed.yaml"), extra_eal)
    }

    /// As [`BoxProcess::start_with`], with another configuration file (e.g. a test-only one
    /// under `tests/configs/`; its interfaces must be the testbed's).
    #[track_caller]
    pub fn start_config(ports: &str, config: &str, extra_eal: &[&str]) -> BoxProcess {
        Self::start_run(ports, config, &[], extra_eal)
    }

    /// As [`BoxProcess::start_config`], with more `cutthrough run` options (e.g.
    /// `--stats-period 1`).
    #[track_caller]
    pub fn start_run(
        ports: &str,
        config: &str,
        run_args: &[&str],
        extra_eal: &[&str],
    ) -> BoxProcess {
        let mut eal = eal_args();
        eal.extend(extra_eal.iter().map(|s| s.to_string()));
        let kind = format!("net_{ports}");
        assert!(
            eal.iter().any(|a| a.contains(&kind)),
            "scripts/testbed.sh eal-args gave {eal:?}, not {kind} devices: is the testbed up \
             with --ports {ports}?"
        );
        let dir = TempDir::new("box");
        let (stats, stderr, stdout) = (
            dir.join("stats.json"),
            dir.join("box.stderr"),
            dir.join("box.stdout"),
        );
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .arg("--stats-json")
            .arg(&stats)
            .args(run_args)
            .arg("--")
            .args(&eal)
            .env("RUST_LOG", box_log_filter())
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout file"))
            .stderr(File::create(&stderr).expect("create stderr file"));
        eprintln!(
            "box: {BIN} run --config {config} --stats-json {} -- {}",
            stats.display(),
            eal.join(" ")
        );
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
        let mut the_box = BoxProcess {
            child,
            status: None,
            stats,
            stderr,
            stdout,
            dir,
            started: Instant::now(),
        };
        the_box.wait_ready();
        the_box
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + BOX_READY_TIMEOUT;
        // Bounded: each try takes ≤ ~1 s (ping -W 1) plus a 100 ms pause, until the deadline.
        let mut tries = 0u32;
        while Instant::now() < deadline && tries < 300 {
            tries += 1;
            if let Some(status) = self.try_status() {
                panic!(
                    "the box exited ({status}) before it answered ping on {BOX_INSIDE_ADDR}\n{}",
                    self.logs()
                );
            }
            let ping = ns(
                INSIDE,
                "ping",
                &["-c", "1", "-W", "1", BOX_INSIDE_ADDR],
                Duration::from_secs(3),
            );
            if ping.success() {
                eprintln!(
                    "box: ready after {:.1} s ({tries} pings)",
                    self.started.elapsed().as_secs_f64()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the box did not answer ping on {BOX_INSIDE_ADDR} within {} s\n{}",
            BOX_READY_TIMEOUT.as_secs(),
            self.logs()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the box is still running.
    pub fn alive(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// The temp dir holding the stats file and the box's output.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `--stats-json` file (rewritten every second while the box runs).
    pub fn stats_path(&self) -> &Path {
        &self.stats
    }

    /// The box's stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout)
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on the box");
        }
        self.status
    }

    /// The box's stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// The box's stdout, (the tail of) its stderr and, while it runs, its live statistics and
    /// flows (`cutthrough stats`, `cutthrough flows`), for panic messages.
    pub fn logs(&self) -> String {
        let live = |args: &[&str]| {
            let out = run(BIN, args, Duration::from_secs(10));
            if out.success() {
                out.stdout
            } else {
                format!("(`cutthrough {args:?}` failed: {})", out.describe())
            }
        };
        format!(
            "--- box stdout ---\n{}\n--- box stderr (tail) ---\n{}\n--- box stats ---\n{}\n\
             --- box flows ---\n{}",
            tail(&read_lossy(&self.stdout), 8000).trim_end(),
            tail(&self.stderr(), 16000).trim_end(),
            live(&["stats"]).trim_end(),
            live(&["flows", "--limit", "16"]).trim_end()
        )
    }

    /// Stops the box with SIGTERM (≤ 20 s, then SIGKILL), checks it exited with status 0, and
    /// returns the stats JSON it wrote; panics with its output if any of that fails.
    #[track_caller]
    pub fn stop(mut self) -> serde_json::Value {
        if let Some(status) = self.try_status() {
            panic!(
                "the box exited ({status}) before it was stopped\n{}",
                self.logs()
            );
        }
        let pid = self.pid().to_string();
        run("kill", &["-TERM", &pid], Duration::from_secs(5)).expect_success("kill -TERM");
        let t0 = Instant::now();
        self.status = wait_until(&mut self.child, BOX_STOP_TIMEOUT);
        let Some(status) = self.status else {
            let _ = self.child.kill();
            self.status = wait_until(&mut self.child, Duration::from_secs(5));
            panic!(
                "the box did not stop within {} s of SIGTERM (killed)\n{}",
                BOX_STOP_TIMEOUT.as_secs(),
                self.logs()
            );
        };
        eprintln!(
            "box: stopped in {:.1} s ({status})",
            t0.elapsed().as_secs_f64()
        );
        assert!(
            status.success(),
            "the box exited with {status} after SIGTERM (a graceful stop exits 0)\n{}",
            self.logs()
        );
        // For information: what the box warned about while it ran.
        let stderr = self.stderr();
        let notable: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .take(20)
            .collect();
        if !notable.is_empty() {
            eprintln!("box: warnings and errors:\n{}", notable.join("\n"));
        }
        let text = fs::read_to_string(&self.stats).unwrap_or_else(|e| {
            panic!(
                "the box wrote no stats file {}: {e}\n{}",
                self.stats.display(),
                self.logs()
            )
        });
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("the stats file is not JSON ({e}):\n{text}\n{}", self.logs())
        })
    }
}

impl Drop for BoxProcess {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = wait_until(&mut self.child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

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

/// The traffic helper of the fault and hostile-input tests (`tests/net/traffic.py`: seeded
/// streams both ways with SHA-256 at both ends; see its docstring).
pub const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/traffic.py");
/// The raw-frame helper of the hostile-input tests (`tests/net/frames.py`).
pub const FRAMES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/frames.py");
/// The NFQUEUE fault injector (`scripts/nfq_faults.py`).
pub const NFQ_FAULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nfq_faults.py");

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

/// The box's MAC address on the port that namespace `ns_name` sees (its neighbour entry for
/// the gateway, after a ping).
#[track_caller]
pub fn box_mac(ns_name: &str) -> String {
    let gw = if ns_name == INSIDE {
        BOX_INSIDE_ADDR
    } else {
        BOX_OUTSIDE_ADDR
    };
    ns(
        ns_name,
        "ping",
        &["-c", "1", "-W", "2", gw],
        Duration::from_secs(5),
    )
    .expect_success("ping the box");
    let out = ns(
        ns_name,
        "ip",
        &["neigh", "show", gw],
        Duration::from_secs(5),
    )
    .expect_success("ip neigh");
    let mac = out
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no lladdr for {gw} in {ns_name}: {}", out.stdout))
        .to_string();
    mac
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

/// One namespace's share of [`Faults`]: its device and the box's address on that side.
const FAULT_SIDES: [(&str, &str, &str); 2] = [
    (INSIDE, "ct-in1", BOX_INSIDE_ADDR),
    (OUTSIDE, "ct-out1", BOX_OUTSIDE_ADDR),
];

/// Wire faults without `tc netem` (DESIGN.md §8), for TCP on some ports in both namespaces.
///
/// In each namespace, for TCP to or from `ports` on its veth:
/// - `mangle POSTROUTING`: `TEE --gateway BOX` with probability `dup` (a clone on the wire:
///   duplication), then `NFQUEUE` with probability `sample`;
/// - `mangle PREROUTING`: `NFQUEUE` with probability `sample`.
///
/// So every packet meets the queue twice, once in the sender's namespace before the box and
/// once in the receiver's after it. `scripts/nfq_faults.py` (one per namespace) drops a queued
/// packet with probability `drop` (real loss: the sender counted it as sent, or it already
/// crossed the wire), holds it `hold_ms` with probability `hold` while later packets pass
/// (reordering), and delays the rest by `delay_ms` (delay with jitter). The rules use
/// `--queue-bypass`: if an injector dies, packets pass instead of vanishing.
///
/// On the sender's side the rules see TCP's GSO bursts (the local stack always builds them;
/// with offloads off they are cut to MSS-sized segments only when they reach the veth), so
/// `statistic` samples, and TEE clones, whole bursts; nfnetlink_queue hands each segment of a
/// queued burst to the injector separately, which decides its fate per segment. On the
/// receiver's side (GRO off) every rule sees single wire packets. Per wire packet the rates
/// come out as intended, the sender-side faults somewhat bunched.
#[derive(Debug, Clone, Copy)]
pub struct FaultSpec {
    pub sample: f64,
    pub drop: f64,
    pub hold: f64,
    pub hold_ms: (f64, f64),
    pub delay_ms: (f64, f64),
    pub dup: f64,
}

impl FaultSpec {
    /// About 1% loss, 5% reordering, 1% duplication end to end, plus 0.5-1.5 ms of delay on
    /// the sampled packets that are neither lost nor held back. With two queues on each
    /// path: each samples 6% of the packets and drops 1/12 of those (0.5% per queue, about
    /// 1% per path) and holds 5/12 (2.5% per queue, about 5% per path) 2-6 ms; TEE clones 1%
    /// of each sender's packets.
    pub const ISSUE: FaultSpec = FaultSpec {
        sample: 0.06,
        drop: 1.0 / 12.0,
        hold: 5.0 / 12.0,
        hold_ms: (2.0, 6.0),
        delay_ms: (0.5, 1.5),
        dup: 0.01,
    };

    /// Per path (sender's queue and receiver's queue): loss, reordering and delay rates.
    pub fn per_path(&self) -> (f64, f64, f64) {
        let q = self.sample;
        (
            2.0 * q * self.drop,
            2.0 * q * self.hold,
            2.0 * q * (1.0 - self.drop - self.hold),
        )
    }
}

/// What the injectors and TEE did.
#[derive(Debug, Clone, Default)]
pub struct FaultReport {
    /// Per namespace: the injector's JSON counters (`seen`, `dropped`, `held`, `delayed`, ...).
    pub queues: Vec<(String, serde_json::Value)>,
    /// Per namespace: packets TEE cloned (the rule's packet counter).
    pub duplicated: Vec<(String, u64)>,
}

impl FaultReport {
    fn sum(&self, key: &str) -> u64 {
        self.queues
            .iter()
            .map(|(_, v)| v.get(key).and_then(|x| x.as_u64()).unwrap_or(0))
            .sum()
    }
    pub fn seen(&self) -> u64 {
        self.sum("seen")
    }
    pub fn dropped(&self) -> u64 {
        self.sum("dropped")
    }
    pub fn held(&self) -> u64 {
        self.sum("held")
    }
    pub fn delayed(&self) -> u64 {
        self.sum("delayed")
    }
    pub fn dups(&self) -> u64 {
        self.duplicated.iter().map(|(_, n)| n).sum()
    }
    pub fn summary(&self) -> String {
        format!(
            "queued {} packets: dropped {}, held {}, delayed {}; TEE duplicated {}",
            self.seen(),
            self.dropped(),
            self.held(),
            self.delayed(),
            self.dups()
        )
    }
}

/// [`FaultSpec`] in force on the testbed; [`Faults::stop`] (or drop) removes the rules first,
/// then stops the injectors (which release what they hold).
pub struct Faults {
    injectors: Vec<(String, Background, PathBuf)>,
    _dir: TempDir,
    active: bool,
}

/// The NFQUEUE number the injectors use (per namespace: queues are per network namespace).
const FAULT_QUEUE: &str = "7";

impl Faults {
    /// Starts an injector in each namespace, then installs the rules for TCP `ports`.
    #[track_caller]
    pub fn start(spec: FaultSpec, ports: &[u16]) -> Faults {
        let dir = TempDir::new("faults");
        let mut faults = Faults {
            injectors: Vec::new(),
            _dir: dir,
            active: true,
        };
        for (i, (ns_name, _, _)) in FAULT_SIDES.iter().enumerate() {
            let stats = faults._dir.join(&format!("{ns_name}.json"));
            let seed = (1000 + i).to_string();
            let (drop, hold) = (spec.drop.to_string(), spec.hold.to_string());
            let hold_ms = format!("{}:{}", spec.hold_ms.0, spec.hold_ms.1);
            let delay_ms = format!("{}:{}", spec.delay_ms.0, spec.delay_ms.1);
            let bg = Background::ns(
                ns_name,
                python(),
                &[
                    NFQ_FAULTS,
                    "--queue",
                    FAULT_QUEUE,
                    "--drop",
                    &drop,
                    "--hold",
                    &hold,
                    "--hold-ms",
                    &hold_ms,
                    "--delay-ms",
                    &delay_ms,
                    "--seed",
                    &seed,
                    "--stats",
                    path_str(&stats),
                    "--max-seconds",
                    "1200",
                ],
            );
            faults.injectors.push((ns_name.to_string(), bg, stats));
        }
        for (_, bg, _) in &mut faults.injectors {
            let bound = poll(Duration::from_secs(20), Duration::from_millis(50), || {
                bg.stdout().contains("bound")
            });
            assert!(bound, "the fault injector did not start: {}", bg.describe());
        }
        let list = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (sample, dup) = (spec.sample.to_string(), spec.dup.to_string());
        for (ns_name, dev, gw) in FAULT_SIDES {
            let base = |chain: &str, dir: &str| -> Vec<String> {
                [
                    "-t",
                    "mangle",
                    "-A",
                    chain,
                    dir,
                    dev,
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--ports",
                    &list,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            };
            let mut tee = base("POSTROUTING", "-o");
            tee.extend([&dup, "-j", "TEE", "--gateway", gw].map(str::to_string));
            let queue_tail = [
                "-j",
                "NFQUEUE",
                "--queue-num",
                FAULT_QUEUE,
                "--queue-bypass",
            ];
            let mut out_q = base("POSTROUTING", "-o");
            out_q.push(sample.clone());
            out_q.extend(queue_tail.map(str::to_string));
            let mut in_q = base("PREROUTING", "-i");
            in_q.push(sample.clone());
            in_q.extend(queue_tail.map(str::to_string));
            for rule in [tee, out_q, in_q] {
                let args: Vec<&str> = rule.iter().map(String::as_str).collect();
                ns(ns_name, "iptables", &args, Duration::from_secs(10))
                    .expect_success("installing a fault rule");
            }
        }
        faults
    }

    fn remove_rules() {
        for (ns_name, _, _) in FAULT_SIDES {
            let _ = ns(
                ns_name,
                "iptables",
                &["-t", "mangle", "-F"],
                Duration::from_secs(10),
            );
        }
    }

    /// Removes the rules, stops the injectors and returns what they did.
    #[track_caller]
    pub fn stop(mut self) -> FaultReport {
        let mut report = FaultReport::default();
        for (ns_name, _, _) in FAULT_SIDES {
            let out = ns(
                ns_name,
                "iptables",
                &["-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n"],
                Duration::from_secs(10),
            );
            let n = out
                .stdout
                .lines()
                .find(|l| l.contains("TEE"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            report.duplicated.push((ns_name.to_string(), n));
        }
        Self::remove_rules();
        self.active = false;
        for (ns_name, bg, stats) in &mut self.injectors {
            let _ = run(
                "kill",
                &["-TERM", &bg.pid().to_string()],
                Duration::from_secs(5),
            );
            let status = bg.wait(Duration::from_secs(10));
            assert!(
                status.is_some_and(|s| s.success()),
                "the fault injector in {ns_name} failed: {}",
                bg.describe()
            );
            let text = fs::read_to_string(&*stats).unwrap_or_default();
            let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
                panic!("the injector's counters {text:?}: {e}: {}", bg.describe())
            });
            report.queues.push((ns_name.clone(), v));
        }
        report
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        if self.active {
            Self::remove_rules();
        }
        // The injectors (Background) are killed by their own Drop.
    }
}

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
