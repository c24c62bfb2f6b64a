//! The client side of `cutthrough stats` and `cutthrough flows`: DPDK's telemetry protocol
//! (v2) over the running box's socket.
//!
//! The socket is a `SOCK_SEQPACKET` Unix socket at `<runtime dir>/dpdk_telemetry.v2`, the
//! runtime dir being `/var/run/dpdk/<file prefix>` for root (`$XDG_RUNTIME_DIR/dpdk/<prefix>`
//! or `/tmp/dpdk/<prefix>` otherwise; the prefix is `rte` unless the box was started with
//! `--file-prefix`). On connecting, the server sends one JSON message (`version`, `pid`,
//! `max_output_len`); then each message sent is a command (`/cutthrough/stats`, or
//! `/cutthrough/flows,PARAMS`) and each message received its JSON reply,
//! `{"<command>": value}` (`null` for an unknown command or a failed callback).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

/// The telemetry socket of the DPDK process with this `--file-prefix`.
pub fn socket_path(file_prefix: &str) -> PathBuf {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false);
    let base = if is_root {
        PathBuf::from("/var/run")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    base.join("dpdk")
        .join(file_prefix)
        .join("dpdk_telemetry.v2")
}

/// A connection to a telemetry socket.
pub struct Telemetry {
    sock: Socket,
    buf: Vec<u8>,
    /// What the server said on connecting.
    pub hello: serde_json::Value,
}

impl Telemetry {
    pub fn connect(path: &Path) -> Result<Telemetry, String> {
        let what = |e: std::io::Error| {
            format!(
                "cannot connect to {}: {e} (is the box running, with this --file-prefix?)",
                path.display()
            )
        };
        let sock = Socket::new(Domain::UNIX, Type::SEQPACKET, None).map_err(what)?;
        let addr = SockAddr::unix(path).map_err(what)?;
        sock.connect(&addr).map_err(what)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(what)?;
        let mut t = Telemetry {
            sock,
            buf: vec![0; 1 << 16],
            hello: serde_json::Value::Null,
        };
        t.hello = t.receive()?;
        if let Some(n) = t.hello.get("max_output_len").and_then(|n| n.as_u64()) {
            if n as usize > t.buf.len() {
                t.buf.resize(n as usize, 0);
            }
        }
        Ok(t)
    }

    fn receive(&mut self) -> Result<serde_json::Value, String> {
        let n = self
            .sock
            .read(&mut self.buf)
            .map_err(|e| format!("telemetry read: {e}"))?;
        if n == 0 {
            return Err("the telemetry socket closed (too many clients?)".into());
        }
        serde_json::from_slice(&self.buf[..n])
            .map_err(|e| format!("telemetry sent something that is not JSON: {e}"))
    }

    /// Sends `command` (with `,PARAMS` if any) and returns its value from the reply.
    pub fn command(&mut self, command: &str) -> Result<serde_json::Value, String> {
        self.sock
            .write_all(command.as_bytes())
            .map_err(|e| format!("telemetry write: {e}"))?;
        let mut reply = self.receive()?;
        let name = command.split(',').next().unwrap_or(command);
        match reply.get_mut(name).map(serde_json::Value::take) {
            Some(serde_json::Value::Null) | None => Err(format!(
                "the box does not answer {name} (an older box, or another DPDK process?): {reply}"
            )),
            Some(v) => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_follow_dpdk() {
        let p = socket_path("rte");
        assert!(p.ends_with("dpdk/rte/dpdk_telemetry.v2"), "{}", p.display());
    }

    /// A stand-in for DPDK's telemetry server: the hello, then one reply per command.
    #[test]
    fn speaks_the_telemetry_protocol() {
        let dir = std::env::temp_dir().join(format!("ct-tel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dpdk_telemetry.v2");
        let _ = std::fs::remove_file(&path);
        let server = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        server.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        server.listen(1).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            c.write_all(br#"{"version": "DPDK 22.11.0", "pid": 1, "max_output_len": 16384}"#)
                .unwrap();
            let mut buf = [0u8; 256];
            for _ in 0..2 {
                let n = c.read(&mut buf).unwrap();
                let cmd = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = match cmd.as_str() {
                    "/cutthrough/flows,5" => r#"{"/cutthrough/flows": {"total": 3}}"#,
                    _ => r#"{"/nope": null}"#,
                };
                c.write_all(reply.as_bytes()).unwrap();
            }
        });
        let mut tel = Telemetry::connect(&path).unwrap();
        assert_eq!(tel.hello["pid"], 1);
        let v = tel.command("/cutthrough/flows,5").unwrap();
        assert_eq!(v["total"], 3);
        assert!(tel.command("/nope").is_err());
        t.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_box_is_a_clear_error() {
        let Err(e) = Telemetry::connect(Path::new("/nonexistent/dpdk_telemetry.v2")) else {
            panic!("connected to nothing")
        };
        assert!(e.contains("is the box running"), "{e}");
    }
}
