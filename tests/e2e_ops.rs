//! Operating the box on the namespace testbed (issue 7), over `net_af_packet`, in one box run
//! on a copy of `config/testbed.yaml` with `--stats-period 1`:
//!
//! 1. while a paced upload through the auth-`none` splice on 9000 runs:
//!    - `cutthrough stats --json` shows the splice and the ports' traffic; `cutthrough flows
//!      --json --filter :9000` lists the connection as `spliced`, `established`;
//!    - `dpdk-telemetry.py` (DPDK's own client, the command piped on its stdin) reads
//!      `/cutthrough/stats`;
//!    - `dpdk-dumpcap` captures packets of the transfer on port 0 into a pcapng file, which a
//!      small pcapng reader here opens (blocks, interface, TCP segments of port 9000);
//!    - SIGHUP with a broken file is refused with `check-config`'s error text and the policy
//!      stays (TCP 7000 still denied); SIGHUP with a rule that passes 7000 takes effect for a
//!      new connection (policy generation 1);
//! 2. the upload then completes byte-exact (SHA-256): the reload did not touch the spliced
//!    flow;
//! 3. the box printed testpmd-style blocks every second, and rewrote `--stats-json` while it
//!    ran.
//!
//! Run as root: `cargo test --test e2e_ops`. Needs hugepages (scripts/setup.sh reserves
//! them): `dpdk-dumpcap` is a secondary process and cannot attach to a `--no-huge` primary.

mod net;

use std::path::Path;
use std::time::{Duration, Instant};

use net::{ns, run, Background, BoxProcess, TempDir, Testbed};
use net::{INSIDE, OUTSIDE, SERVER_ADDR};

const SPLICE_PORT: u16 = 9000;
const RELOAD_PORT: u16 = 7000;
/// The upload: paced at about 2 MiB/s until the test says go, so it runs through every check.
const UPLOAD_BYTES: u64 = 48 * 1024 * 1024;

/// A paced sender: `python3 HELPER send HOST PORT FILE GO_FILE`. Sends 64 KiB every 30 ms until
/// `GO_FILE` exists, then the rest at full speed; shuts its side down and waits for EOF.
const HELPER: &str = r#####"
import os, socket, sys, time

def send(host, port, path, go):
    s = socket.create_connection((host, int(port)), timeout=30)
    sent = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            s.sendall(chunk)
            sent += len(chunk)
            if not os.path.exists(go):
                time.sleep(0.03)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    print("sent %d bytes" % sent, flush=True)

def probe(host, port):
    """Exit 0 if a TCP connection to host:port opens within 3 s."""
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        print("connect: %s" % e, flush=True)
        sys.exit(1)

if __name__ == "__main__":
    {"send": send, "probe": probe}[sys.argv[1]](*sys.argv[2:])
"#####;

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `cutthrough ARGS...`, which must succeed; its stdout as JSON.
#[track_caller]
fn cutthrough_json(args: &[&str]) -> serde_json::Value {
    let out = run(net::BIN, args, Duration::from_secs(20));
    assert!(out.success(), "{}", out.describe());
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()))
}

/// Whether a new TCP connection from the client to the server's `port` opens.
fn connects(helper: &Path, port: u16) -> bool {
    ns(
        INSIDE,
        python(),
        &[s(helper), "probe", SERVER_ADDR, &port.to_string()],
        Duration::from_secs(10),
    )
    .success()
}

fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The policy of `config/testbed.yaml` with TCP 7000 passed (before the default deny).
fn with_7000_passed(testbed: &str) -> String {
    let anchor = "  - name: default-deny";
    assert!(
        testbed.contains(anchor),
        "testbed.yaml changed its last rule"
    );
    testbed.replace(
        anchor,
        "  - name: reloaded-7000\n    protocol: tcp\n    ports: [7000]\n    action: pass\n\n  - name: default-deny",
    )
}

#[test]
fn ops_af_packet() {
    net::require_root();
    net::require_tools(&["socat", python(), "dpdk-telemetry.py", "dpdk-dumpcap"]);
    assert!(
        hugepages_free() > 0,
        "no free hugepages: dpdk-dumpcap cannot attach to a --no-huge box (run scripts/setup.sh)"
    );
    let _lock = net::lock();
    let tmp = TempDir::new("e2e-ops");
    let helper = tmp.join("helper.py");
    std::fs::write(&helper, HELPER).expect("write the helper");
    let src = tmp.join("upload.bin");
    net::random_file(&src, UPLOAD_BYTES);
    let src_sha = net::sha256(&src);
    let go = tmp.join("go");
    let config = tmp.join("box.yaml");
    let testbed_yaml =
        std::fs::read_to_string(format!("{}/config/testbed.yaml", net::ROOT)).expect("testbed");
    std::fs::write(&config, &testbed_yaml).expect("write the config copy");

    let _testbed = Testbed::up("af_packet");
    let the_box = BoxProcess::start_run("af_packet", s(&config), &["--stats-period", "1"], &[]);
    let t0 = Instant::now();

    // The upload through the splice, paced so that it runs through the checks below.
    let dst = tmp.join("received.bin");
    let listen = format!("TCP-LISTEN:{SPLICE_PORT},reuseaddr");
    let sink = format!("OPEN:{},creat,trunc", dst.display());
    let mut server = Background::ns(OUTSIDE, "socat", &["-u", &listen, &sink]);
    assert!(
        net::wait_listening(OUTSIDE, SPLICE_PORT, Duration::from_secs(20)),
        "the upload server does not listen: {}",
        server.describe()
    );
    let mut client = Background::ns(
        INSIDE,
        python(),
        &[
            s(&helper),
            "send",
            SERVER_ADDR,
            &SPLICE_PORT.to_string(),
            s(&src),
            s(&go),
        ],
    );
    let still_running = |client: &mut Background, what: &str| {
        assert!(
            client.try_status().is_none(),
            "the upload ended before {what}: {}",
            client.describe()
        );
    };

    // 1a. stats --json: the splice is counted, traffic crosses the ports.
    let mut stats = serde_json::Value::Null;
    let spliced = net::poll(Duration::from_secs(15), Duration::from_millis(300), || {
        stats = cutthrough_json(&["stats", "--json"]);
        net::counter(&stats, &["connections", "spliced"]) >= 1
            && net::counter(&stats, &["flows", "spliced"]) >= 1
    });
    assert!(
        spliced,
        "stats --json never showed the splice: {stats:#}\n{}",
        the_box.logs()
    );
    assert!(
        net::counter(&stats, &["inside", "rx_packets"]) > 0,
        "{stats:#}"
    );
    assert!(
        net::counter(&stats, &["outside", "tx_bytes"]) > 0,
        "{stats:#}"
    );
    assert!(
        net::has(&stats, &["rings", "to_control_capacity"]),
        "{stats:#}"
    );
    eprintln!("stats --json: {stats}");
    still_running(&mut client, "stats --json");

    // 1b. flows --json: the connection, spliced.
    let flows = cutthrough_json(&["flows", "--json", "--filter", ":9000"]);
    let list = flows["flows"].as_array().cloned().unwrap_or_default();
    let spliced_flow = list.iter().find(|f| {
        f["server"] == format!("{SERVER_ADDR}:{SPLICE_PORT}")
            && f["phase"] == "spliced"
            && f["state"] == "established"
    });
    assert!(
        spliced_flow.is_some(),
        "flows --json lists no spliced, established connection to {SPLICE_PORT}: {flows:#}"
    );
    assert!(flows["complete"] == true, "{flows:#}");
    let f = spliced_flow.unwrap();
    assert!(
        f["delta1"].is_u64() && f["delta2"].is_u64() && f["idle_ms"].is_u64(),
        "{f}"
    );
    eprintln!("flows --json: {flows}");
    // The text forms work too.
    let text = run(
        net::BIN,
        &["flows", "--limit", "5"],
        Duration::from_secs(20),
    );
    assert!(
        text.success() && text.stdout.contains("spliced"),
        "{}",
        text.describe()
    );
    let text = run(net::BIN, &["stats"], Duration::from_secs(20));
    assert!(
        text.success() && text.stdout.contains("NIC statistics for port 0"),
        "{}",
        text.describe()
    );

    // 1c. DPDK's own client reads the command.
    let tel = run(
        "sh",
        &["-c", "echo /cutthrough/stats | dpdk-telemetry.py"],
        Duration::from_secs(20),
    );
    assert!(tel.success(), "{}", tel.describe());
    assert!(
        tel.stdout.contains("\"/cutthrough/stats\"") && tel.stdout.contains("\"rx_packets\""),
        "dpdk-telemetry.py did not get /cutthrough/stats: {}",
        tel.describe()
    );
    still_running(&mut client, "dpdk-telemetry.py");

    // 1d. dpdk-dumpcap captures the transfer on port 0 (inside).
    let pcap = tmp.join("inside.pcapng");
    let cap = run(
        "dpdk-dumpcap",
        &["-i", "0", "-c", "50", "-a", "duration:20", "-w", s(&pcap)],
        Duration::from_secs(40),
    );
    assert!(
        cap.success(),
        "dpdk-dumpcap failed: {}\n{}",
        cap.describe(),
        the_box.logs()
    );
    let (packets, on_9000) = read_pcapng(&pcap);
    assert!(
        packets >= 10 && on_9000 >= 10,
        "the capture has {packets} packets, {on_9000} of TCP port {SPLICE_PORT}: {}",
        cap.describe()
    );
    eprintln!("dpdk-dumpcap: {packets} packets, {on_9000} of port {SPLICE_PORT}");
    still_running(&mut client, "dpdk-dumpcap");

    // 1e. SIGHUP with a broken file: refused with check-config's words; 7000 stays denied.
    assert!(
        !connects(&helper, RELOAD_PORT),
        "7000 is open before any reload"
    );
    let pid = the_box.pid().to_string();
    std::fs::write(&config, "policy:\n  - action: maybe\n").expect("break the config");
    let check = run(
        net::BIN,
        &["check-config", s(&config)],
        Duration::from_secs(10),
    );
    assert_eq!(
        check.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        check.describe()
    );
    let words = check.stderr.trim().to_string();
    assert!(!words.is_empty(), "{}", check.describe());
    run("kill", &["-HUP", &pid], Duration::from_secs(5)).expect_success("kill -HUP");
    let refused = net::poll(Duration::from_secs(10), Duration::from_millis(100), || {
        the_box.stderr().contains(&words)
    });
    assert!(
        refused,
        "the box did not log `{words}` after SIGHUP\n{}",
        the_box.logs()
    );
    let _listener = Background::ns(
        OUTSIDE,
        "socat",
        &[
            &format!("TCP-LISTEN:{RELOAD_PORT},reuseaddr,fork"),
            "SYSTEM:true",
        ],
    );
    assert!(net::wait_listening(
        OUTSIDE,
        RELOAD_PORT,
        Duration::from_secs(20)
    ));
    assert!(
        !connects(&helper, RELOAD_PORT),
        "7000 opened after a refused reload"
    );
    let stats = cutthrough_json(&["stats", "--json"]);
    assert_eq!(net::counter(&stats, &["policy_generation"]), 0, "{stats:#}");

    // 1f. SIGHUP with 7000 passed: new connections to 7000 go through.
    std::fs::write(&config, with_7000_passed(&testbed_yaml)).expect("write the new config");
    let check = run(
        net::BIN,
        &["check-config", s(&config)],
        Duration::from_secs(10),
    );
    assert!(check.success(), "{}", check.describe());
    run("kill", &["-HUP", &pid], Duration::from_secs(5)).expect_success("kill -HUP");
    let mut stats = serde_json::Value::Null;
    let reloaded = net::poll(Duration::from_secs(10), Duration::from_millis(200), || {
        stats = cutthrough_json(&["stats", "--json"]);
        net::counter(&stats, &["policy_generation"]) == 1
    });
    assert!(
        reloaded,
        "no policy generation 1: {stats:#}\n{}",
        the_box.logs()
    );
    assert!(
        connects(&helper, RELOAD_PORT),
        "7000 still closed after the reload\n{}",
        the_box.logs()
    );
    let config_tel = run(
        "sh",
        &["-c", "echo /cutthrough/config | dpdk-telemetry.py"],
        Duration::from_secs(20),
    );
    assert!(
        config_tel.stdout.contains("reloaded-7000"),
        "/cutthrough/config does not show the new rule: {}",
        config_tel.describe()
    );
    still_running(&mut client, "the reloads");
    eprintln!(
        "checks done while the upload ran ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );

    // 2. The upload finishes byte-exact across both reloads.
    std::fs::write(&go, b"go").expect("write the go file");
    let status = client.wait(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "the upload failed: {}",
        client.describe()
    );
    let status = server.wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{}", server.describe());
    assert_eq!(
        std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0),
        UPLOAD_BYTES,
        "the server got a different length"
    );
    assert_eq!(net::sha256(&dst), src_sha, "the upload arrived corrupted");

    // 3. Statistics while running: printed every second, and the JSON rewritten.
    let live: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(the_box.stats_path()).expect("--stats-json while running"),
    )
    .expect("the periodic stats JSON");
    assert!(
        net::counter(&live, &["connections", "spliced"]) >= 1,
        "{live:#}"
    );
    let out = the_box.stdout();
    let blocks = out.matches("NIC statistics for port 0").count();
    assert!(
        blocks >= 3,
        "{blocks} statistics blocks printed\n{}",
        the_box.logs()
    );
    assert!(out.contains("cutthrough statistics") && out.contains("Rx-pps:"));
    let end = the_box.stop();
    assert!(net::counter(&end, &["connections", "spliced"]) >= 1);
    assert_eq!(net::counter(&end, &["policy_generation"]), 1);
}

/// Reads a pcapng file: (packets, packets of TCP port 9000). Panics on a malformed file.
fn read_pcapng(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(b.len() >= 28, "{} is too short for pcapng", path.display());
    assert_eq!(
        &b[0..4],
        &[0x0a, 0x0d, 0x0d, 0x0a],
        "no section header block"
    );
    let le = match &b[8..12] {
        [0x4d, 0x3c, 0x2b, 0x1a] => true,
        [0x1a, 0x2b, 0x3c, 0x4d] => false,
        m => panic!("bad byte-order magic {m:?}"),
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let (mut off, mut packets, mut on_port, mut interfaces) = (0usize, 0, 0, 0);
    while off + 12 <= b.len() {
        let (ty, len) = (u32_at(off), u32_at(off + 4) as usize);
        assert!(
            len >= 12 && len % 4 == 0 && off + len <= b.len(),
            "bad block at {off}"
        );
        assert_eq!(
            u32_at(off + len - 4) as usize,
            len,
            "block trailer at {off}"
        );
        match ty {
            1 => interfaces += 1,
            6 => {
                // Enhanced packet block: interface, timestamp (2), captured and original
                // lengths, then the frame.
                let cap = u32_at(off + 20) as usize;
                let frame = &b[off + 28..off + 28 + cap];
                packets += 1;
                if frame.len() >= 14 + 20 + 4 && frame[12..14] == [0x08, 0x00] && frame[23] == 6 {
                    let l4 = 14 + usize::from(frame[14] & 0x0f) * 4;
                    let port = |o: usize| u16::from_be_bytes([frame[l4 + o], frame[l4 + o + 1]]);
                    if frame.len() >= l4 + 4 && (port(0) == SPLICE_PORT || port(2) == SPLICE_PORT) {
                        on_port += 1;
                    }
                }
            }
            _ => {}
        }
        off += len;
    }
    assert!(interfaces >= 1, "no interface description block");
    (packets, on_port)
}
