//! The namespace testbed (`scripts/testbed.sh`) and the box (`cutthrough run`) on it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::process::{read_lossy, wait_until};
use super::*;

/// The testbed of DESIGN.md §9, up for the lifetime of this value: `scripts/testbed.sh up
/// --ports PORTS` (after a `down`, so leftovers of an earlier crashed run go away); dropping it
/// runs `scripts/testbed.sh down`, also when the test panics.
pub struct Testbed {
    ports: String,
}

impl Testbed {
    #[track_caller]
    pub fn up(ports: &str) -> Testbed {
        Self::up_with_queues(ports, 1)
    }

    /// As [`Testbed::up`], with `queues` queue pairs on every veth (`--queues`).
    #[track_caller]
    pub fn up_with_queues(ports: &str, queues: u8) -> Testbed {
        require_tools(TOOLS);
        testbed(&["down"]).expect_success("scripts/testbed.sh down");
        // From here on, Drop tears down whatever `up` managed to build.
        let tb = Testbed {
            ports: ports.to_string(),
        };
        let queues = queues.to_string();
        testbed(&["up", "--ports", ports, "--queues", &queues])
            .expect_success("scripts/testbed.sh up");
        tb
    }

    /// As [`Testbed::up`], with the two more ports of `scripts/testbed.sh up --multiport`
    /// (ct-inside2 on VLAN 100 behind ct-in2, ct-outside2 behind ct-out2): the testbed of
    /// `config/testbed-multiport.yaml`.
    #[track_caller]
    pub fn up_multiport(ports: &str) -> Testbed {
        require_tools(TOOLS);
        testbed(&["down"]).expect_success("scripts/testbed.sh down");
        let tb = Testbed {
            ports: ports.to_string(),
        };
        testbed(&["up", "--ports", ports, "--multiport"])
            .expect_success("scripts/testbed.sh up --multiport");
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

/// The start of a test with one box on the testbed: root and `tools` checked, the lock, a temp
/// dir named after `label`, the testbed and the box on `ports`. Bound in this order
/// (`let (_lock, tmp, _testbed, mut the_box) = ...`), they are dropped in reverse: the box is
/// killed, the testbed torn down, the dir removed, the lock released.
#[track_caller]
pub fn box_on_testbed(
    label: &str,
    ports: &str,
    tools: &[&str],
) -> (NetLock, TempDir, Testbed, BoxProcess) {
    require_root();
    require_tools(tools);
    let lock = lock();
    let tmp = TempDir::new(label);
    let testbed = Testbed::up(ports);
    let the_box = BoxProcess::start(ports);
    (lock, tmp, testbed, the_box)
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
