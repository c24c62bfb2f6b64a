//! Chromium.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::*;

/// A headless Chromium in ct-inside, in a process group of its own, with its profile and
/// HOME in `dir`. Dropping it kills the group and then any process that still names `dir`
/// (Chromium starts its crash handler in a session of its own).
pub(crate) struct Chromium {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) stderr: PathBuf,
}

impl Chromium {
    #[track_caller]
    pub(crate) fn start(dir: &Path, port: u16) -> Chromium {
        let home = dir.join("home");
        let profile = dir.join("profile");
        for d in [&home, &profile] {
            std::fs::create_dir_all(d).expect("create Chromium's directories");
        }
        let stderr = dir.join("chromium.stderr");
        let user_data = format!("--user-data-dir={}", path_str(&profile));
        let debug_port = format!("--remote-debugging-port={port}");
        let child = Command::new("ip")
            .args(["netns", "exec", INSIDE, CHROMIUM])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &user_data,
                &debug_port,
                "about:blank",
            ])
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .process_group(0)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("chromium.stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CHROMIUM}: {e}"));
        Chromium {
            child,
            dir: dir.to_path_buf(),
            stderr,
        }
    }

    /// The tail of Chromium's stderr, for panic messages.
    pub(crate) fn describe(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let useful: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        format!(
            "--- chromium stderr (without dbus noise, tail) ---\n{}",
            net::tail(&useful.join("\n"), 4000)
        )
    }

    /// The processes whose command line names the profile directory.
    pub(crate) fn stragglers(&self) -> Vec<u32> {
        let marker = path_str(&self.dir).to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
            })
            .collect()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The process group Chromium leads (process_group(0): its id is the child's).
        let group = format!("-{}", self.child.id());
        let _ = run("kill", &["-KILL", "--", &group], Duration::from_secs(5));
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Bounded: three rounds.
        for _ in 0..3 {
            let left = self.stragglers();
            if left.is_empty() {
                break;
            }
            for pid in left {
                let _ = run("kill", &["-KILL", &pid.to_string()], Duration::from_secs(5));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
