//! FreeRADIUS.

use super::*;

/// FreeRADIUS on 127.0.0.1 (`tests/net/freeradius.py`), its output in its directory; killed
/// on drop.
pub(crate) struct FreeRadius {
    pub(crate) server: Option<Background>,
    pub(crate) port: u16,
}

impl FreeRadius {
    /// Starts it on a free UDP port with the user carol, and waits (≤ 15 s per try) until it
    /// says it is ready.
    #[track_caller]
    pub(crate) fn start(dir: &Path) -> FreeRadius {
        let mut last = String::new();
        // Bounded: five tries (the free port found may be taken before FreeRADIUS binds it).
        for attempt in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("find a free UDP port")
                .port();
            let rdir = dir.join(format!("radius{attempt}"));
            let (port_s, user) = (port.to_string(), format!("{CAROL}:{CAROL_PASSWORD}"));
            let mut bg = Background::spawn(
                python(),
                &[
                    FREERADIUS_PY,
                    "--dir",
                    path_str(&rdir),
                    "--listen",
                    "127.0.0.1",
                    "--port",
                    &port_s,
                    "--secret",
                    RADIUS_SECRET,
                    "--client",
                    "127.0.0.0/8",
                    "--user",
                    &user,
                ],
            );
            let ready = net::poll(Duration::from_secs(15), Duration::from_millis(50), || {
                bg.stdout().contains("Ready to process requests") || bg.try_status().is_some()
            });
            if ready && bg.try_status().is_none() {
                eprintln!("freeradius: ready on 127.0.0.1:{port}");
                return FreeRadius {
                    server: Some(bg),
                    port,
                };
            }
            last = bg.describe();
        }
        panic!("FreeRADIUS did not start: {last}");
    }

    /// Stops it (SIGTERM, ≤ 5 s, then SIGKILL).
    #[track_caller]
    pub(crate) fn stop(&mut self) {
        let mut bg = self.server.take().expect("FreeRADIUS runs");
        let pid = bg.pid().to_string();
        let _ = run("kill", &["-TERM", &pid], Duration::from_secs(5));
        if bg.wait(Duration::from_secs(5)).is_none() {
            let _ = run("kill", &["-KILL", &pid], Duration::from_secs(5));
            assert!(
                bg.wait(Duration::from_secs(5)).is_some(),
                "FreeRADIUS does not stop: {}",
                bg.describe()
            );
        }
        eprintln!("freeradius: stopped");
    }
}
