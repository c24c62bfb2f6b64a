//! Running commands and background processes with hard deadlines, the testbed lock, temp
//! dirs and polling.

use std::fs::{self, File};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ROOT;

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

pub(super) fn quote(args: &[&str]) -> String {
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
pub(super) fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
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

pub(super) fn read_lossy(path: &Path) -> String {
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
