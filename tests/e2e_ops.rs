#![cfg(feature = "dpdk")]
//! Operating the box on the namespace testbed, over `net_af_packet`, in one box run
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
//! `drop_capture_af_packet`, in a box run of its own with the drop capture enabled (two files
//! of 64 KiB, snaplen 64): malformed frames from `tests/net/frames.py` into the inside port
//! are dropped, handed to control and written; the ring's files are each a valid pcapng file
//! within the size, the oldest packets were overwritten, and each packet's comment names the
//! reason its bytes call for.
//!
//! Run as root: `cargo test --test e2e_ops`. `ops_af_packet` needs hugepages (scripts/setup.sh
//! reserves them): `dpdk-dumpcap` is a secondary process and cannot attach to a `--no-huge`
//! primary.

mod net;

use std::path::Path;
use std::time::{Duration, Instant};

use net::{cli_json, ns, path_str, python, run, Background, BoxProcess, TempDir, Testbed};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

const SPLICE_PORT: u16 = 9000;
const RELOAD_PORT: u16 = 7000;
/// The upload: paced at about 2 MiB/s until the test says go, so it runs through every check.
const UPLOAD_BYTES: u64 = 48 * 1024 * 1024;

/// A paced sender (`tests/net/ops_helper.py`): `python3 HELPER send HOST PORT FILE GO_FILE`. Sends 64 KiB every 30 ms until
/// `GO_FILE` exists, then the rest at full speed; shuts its side down and waits for EOF.
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/ops_helper.py");

/// Whether a new TCP connection from the client to the server's `port` opens.
fn connects(helper: &Path, port: u16) -> bool {
    ns(
        INSIDE,
        python(),
        &[path_str(helper), "probe", SERVER_ADDR, &port.to_string()],
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
    let helper = Path::new(HELPER);
    let src = tmp.join("upload.bin");
    net::random_file(&src, UPLOAD_BYTES);
    let src_sha = net::sha256(&src);
    let go = tmp.join("go");
    let config = tmp.join("box.yaml");
    let testbed_yaml =
        std::fs::read_to_string(format!("{}/config/testbed.yaml", net::ROOT)).expect("testbed");
    std::fs::write(&config, &testbed_yaml).expect("write the config copy");

    let _testbed = Testbed::up("af_packet");
    let the_box = BoxProcess::start_run(
        "af_packet",
        path_str(&config),
        &["--stats-period", "1"],
        &[],
    );
    let t0 = Instant::now();

    let dst = tmp.join("received.bin");
    let (mut server, mut client) = start_upload(helper, &src, &go, &dst);
    stats_json(&the_box, &mut client);
    flows_json();
    telemetry(&mut client);
    dumpcap(&tmp, &the_box, &mut client);
    let _listener = reload_refused(&the_box, &config, helper);
    reload_7000_passed(&the_box, &config, &testbed_yaml, helper);
    still_running(&mut client, "the reloads");
    eprintln!(
        "checks done while the upload ran ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );

    upload_finishes(&mut client, &mut server, &go, &dst, &src_sha);
    live_statistics(the_box);
}

/// Panics unless the paced upload still runs (it must outlast the check `what`).
fn still_running(client: &mut Background, what: &str) {
    assert!(
        client.try_status().is_none(),
        "the upload ended before {what}: {}",
        client.describe()
    );
}

/// The upload through the splice, paced so that it runs through the checks below. Returns the
/// server and the client.
fn start_upload(helper: &Path, src: &Path, go: &Path, dst: &Path) -> (Background, Background) {
    let listen = format!("TCP-LISTEN:{SPLICE_PORT},reuseaddr");
    let sink = format!("OPEN:{},creat,trunc", dst.display());
    let server = net::start_server(OUTSIDE, SPLICE_PORT, "socat", &["-u", &listen, &sink]);
    let client = Background::ns(
        INSIDE,
        python(),
        &[
            path_str(helper),
            "send",
            SERVER_ADDR,
            &SPLICE_PORT.to_string(),
            path_str(src),
            path_str(go),
        ],
    );
    (server, client)
}

/// 1a. stats --json: the splice is counted, traffic crosses the ports.
fn stats_json(the_box: &BoxProcess, client: &mut Background) {
    let mut stats = serde_json::Value::Null;
    let spliced = net::poll(Duration::from_secs(15), Duration::from_millis(300), || {
        stats = cli_json(&["stats", "--json"]);
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
    still_running(client, "stats --json");
}

/// 1b. flows --json: the connection, spliced. The text forms work too.
fn flows_json() {
    let flows = cli_json(&["flows", "--json", "--filter", ":9000"]);
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
}

/// 1c. DPDK's own client reads the command.
fn telemetry(client: &mut Background) {
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
    still_running(client, "dpdk-telemetry.py");
}

/// 1d. dpdk-dumpcap captures the transfer on port 0 (inside).
fn dumpcap(tmp: &TempDir, the_box: &BoxProcess, client: &mut Background) {
    let pcap = tmp.join("inside.pcapng");
    let cap = run(
        "dpdk-dumpcap",
        &[
            "-i",
            "0",
            "-c",
            "50",
            "-a",
            "duration:20",
            "-w",
            path_str(&pcap),
        ],
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
    still_running(client, "dpdk-dumpcap");
}

/// 1e. SIGHUP with a broken file: refused with check-config's words; 7000 stays denied. Returns the
/// listener on 7000, which the next step needs.
fn reload_refused(the_box: &BoxProcess, config: &Path, helper: &Path) -> Background {
    assert!(
        !connects(helper, RELOAD_PORT),
        "7000 is open before any reload"
    );
    let pid = the_box.pid().to_string();
    std::fs::write(config, "policy:\n  - action: maybe\n").expect("break the config");
    let check = run(
        net::BIN,
        &["check-config", path_str(config)],
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
    let listener = Background::ns(
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
        !connects(helper, RELOAD_PORT),
        "7000 opened after a refused reload"
    );
    let stats = cli_json(&["stats", "--json"]);
    assert_eq!(net::counter(&stats, &["policy_generation"]), 0, "{stats:#}");

    listener
}

/// 1f. SIGHUP with 7000 passed: new connections to 7000 go through.
fn reload_7000_passed(the_box: &BoxProcess, config: &Path, testbed_yaml: &str, helper: &Path) {
    let pid = the_box.pid().to_string();
    std::fs::write(config, with_7000_passed(testbed_yaml)).expect("write the new config");
    let check = run(
        net::BIN,
        &["check-config", path_str(config)],
        Duration::from_secs(10),
    );
    assert!(check.success(), "{}", check.describe());
    run("kill", &["-HUP", &pid], Duration::from_secs(5)).expect_success("kill -HUP");
    let mut stats = serde_json::Value::Null;
    let reloaded = net::poll(Duration::from_secs(10), Duration::from_millis(200), || {
        stats = cli_json(&["stats", "--json"]);
        net::counter(&stats, &["policy_generation"]) == 1
    });
    assert!(
        reloaded,
        "no policy generation 1: {stats:#}\n{}",
        the_box.logs()
    );
    assert!(
        connects(helper, RELOAD_PORT),
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
}

/// 2. The upload finishes byte-exact across both reloads.
fn upload_finishes(
    client: &mut Background,
    server: &mut Background,
    go: &Path,
    dst: &Path,
    src_sha: &str,
) {
    std::fs::write(go, b"go").expect("write the go file");
    let status = client.wait(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "the upload failed: {}",
        client.describe()
    );
    let status = server.wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{}", server.describe());
    assert_eq!(
        std::fs::metadata(dst).map(|m| m.len()).unwrap_or(0),
        UPLOAD_BYTES,
        "the server got a different length"
    );
    assert_eq!(net::sha256(dst), src_sha, "the upload arrived corrupted");
}

/// 3. Statistics while running: printed every second, and the JSON rewritten.
fn live_statistics(the_box: BoxProcess) {
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

/// The drop capture's ring: two files of this size.
const DROPCAP_FILE_SIZE: u64 = 64 * 1024;
/// Malformed frames of each kind `frames.py` makes, and their pace (frames per second).
const DROPCAP_EACH: &str = "150";
const DROPCAP_PPS: &str = "2000";

fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_micros() as u64
}

#[test]
fn drop_capture_af_packet() {
    net::require_root();
    net::require_tools(&[python()]);
    let _lock = net::lock();
    let tmp = TempDir::new("e2e-dropcap");
    // A directory the box has to make.
    let ring = tmp.join("ring");
    let path = ring.join("drops.pcapng");
    let config = tmp.join("box.yaml");
    let testbed_yaml =
        std::fs::read_to_string(format!("{}/config/testbed.yaml", net::ROOT)).expect("testbed");
    // The rate is above what is sent: every drop is captured, and the ring goes round.
    let capture = format!(
        "\ncapture:\n  drops:\n    path: {}\n    file_size: {DROPCAP_FILE_SIZE}\n    files: 2\n    rate: 10000\n    snaplen: 64\n",
        path.display()
    );
    std::fs::write(&config, testbed_yaml + &capture).expect("write the config");

    let _testbed = Testbed::up("af_packet");
    let t0 = wall_clock_us();
    let the_box = BoxProcess::start_config("af_packet", path_str(&config), &[]);
    send_malformed(&the_box);
    let end = the_box.stop();
    let t1 = wall_clock_us();
    let cap = |k: &str| net::counter(&end, &["capture", k]);
    assert_eq!(end["capture"]["enabled"], true, "{:#}", end["capture"]);
    assert_eq!((cap("errors"), cap("lost")), (0, 0), "{:#}", end["capture"]);
    assert_eq!(
        cap("captured"),
        cap("handed_over"),
        "control wrote every drop handed over: {:#}",
        end["capture"]
    );
    assert!(cap("files_rotated") >= 2, "{:#}", end["capture"]);

    check_ring(&ring, &end, t0..=t1);
}

/// Sends the malformed frames from the inside and waits until the workers have handed over
/// (or found the ring full for) every frame that is certainly dropped.
fn send_malformed(the_box: &BoxProcess) {
    let mac = net::box_mac(INSIDE);
    let args = [
        net::FRAMES,
        "malformed",
        "ct-in1",
        &mac,
        CLIENT_ADDR,
        SERVER_ADDR,
        DROPCAP_EACH,
        DROPCAP_PPS,
    ];
    let out = ns(INSIDE, python(), &args, Duration::from_secs(30)).expect_success("frames.py");
    let sent: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("frames.py printed no JSON ({e}): {}", out.describe()));
    // Drops for certain: not TTL 0/1 (answered), nor fragments (af_packet's kernel side holds
    // lone fragments), nor random bytes (any reason, or none).
    let certain: u64 = sent["expect"]
        .as_object()
        .expect("frames.py's expect")
        .iter()
        .filter(|(k, _)| !["icmp_time_exceeded", "fragment", "any_drop"].contains(&k.as_str()))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    assert!(certain >= 1500, "{sent}");
    let mut stats = serde_json::Value::Null;
    let handed = net::poll(Duration::from_secs(15), Duration::from_millis(300), || {
        stats = cli_json(&["stats", "--json"]);
        net::counter(&stats, &["capture", "handed_over"])
            + net::counter(&stats, &["capture", "ring_full"])
            >= certain
    });
    assert!(
        handed,
        "the workers did not hand over {certain} drops: {stats:#}\n{}",
        the_box.logs()
    );
}

/// The ring: two files, each a capture of its own within the size, every packet of it a drop
/// of `end`'s capture between the times `during`.
fn check_ring(ring: &Path, end: &serde_json::Value, during: std::ops::RangeInclusive<u64>) {
    let cap = |k: &str| net::counter(end, &["capture", k]);
    let mut names: Vec<String> = std::fs::read_dir(ring)
        .expect("the ring's directory")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["drops.pcapng", "drops.pcapng.1"]);
    let known: Vec<&str> = dataplane::verdict::DropReason::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    let (mut in_files, mut largest) = (0, 0);
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut not_for_us, mut version_6, mut denied_7000, mut cut) = (0, 0, 0, 0);
    for name in &names {
        let file = ring.join(name);
        let size = std::fs::metadata(&file).expect("stat").len();
        assert!(size <= DROPCAP_FILE_SIZE, "{name}: {size} bytes");
        largest = largest.max(size);
        let p = read_pcapng_file(&file);
        assert_eq!(p.interfaces, ["inside", "outside"], "{name}");
        in_files += p.packets.len() as u64;
        for c in &p.packets {
            let comment = c.comment.as_deref().unwrap_or_default();
            let reason = comment
                .strip_prefix("drop: ")
                .and_then(|r| r.strip_suffix(", worker 0"))
                .unwrap_or_else(|| panic!("{name}: comment {comment:?}"));
            assert!(known.contains(&reason), "{name}: comment {comment:?}");
            *reasons.entry(reason.to_string()).or_default() += 1;
            assert_eq!((c.interface, c.flags), (0, Some(1)), "inside, inbound");
            assert!(during.contains(&c.ts_us), "{name}: timestamp {}", c.ts_us);
            let f = &c.data;
            assert_eq!(f.len(), (c.orig_len as usize).min(64), "snaplen 64");
            cut += u64::from(c.orig_len > 64);
            // What the bytes say the reason must be.
            if f[0..6] == [0x02, 0x00, 0x00, 0xde, 0xad, 0x01] {
                assert_eq!(reason, "not_for_us");
                not_for_us += 1;
            } else if f[12..14] == [0x08, 0x00] && c.orig_len >= 14 + 20 && f[14] >> 4 == 6 {
                // Long enough for an IPv4 header: the version is checked first.
                assert_eq!(reason, "bad_ip_header");
                version_6 += 1;
            }
            if reason == "policy_deny" {
                let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
                assert_eq!(f[23], 6, "a denied TCP SYN");
                assert_eq!(u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]), 7000);
                denied_7000 += 1;
            }
        }
    }
    eprintln!(
        "drop capture: {} written ({} files rotated), {in_files} in the ring: {reasons:?}",
        cap("captured"),
        cap("files_rotated")
    );
    assert!(
        in_files < cap("captured"),
        "the oldest packets were overwritten"
    );
    // The file closed last could not take one more packet (a block here is under 160 bytes).
    assert!(largest > DROPCAP_FILE_SIZE - 160, "{largest} bytes");
    assert!(
        not_for_us > 0 && version_6 > 0 && denied_7000 > 0 && cut > 0,
        "{reasons:?}"
    );
}

/// One packet of a pcapng file.
struct Captured {
    interface: u32,
    /// In the interface's resolution (the drop capture's: microseconds since the epoch).
    ts_us: u64,
    orig_len: u32,
    data: Vec<u8>,
    comment: Option<String>,
    flags: Option<u32>,
}

/// A pcapng file read back: its interfaces' names (in order) and its packets. Panics on a
/// malformed file: a block whose lengths disagree or overrun, options past their block, a
/// file that does not start with a section header.
struct Pcapng {
    interfaces: Vec<String>,
    packets: Vec<Captured>,
}

fn read_pcapng_file(path: &Path) -> Pcapng {
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
    let u16_at = |o: usize| {
        let a = [b[o], b[o + 1]];
        if le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    // The options from `o` to the block's trailer at `end`: (code, value offset, length).
    let options = |mut o: usize, end: usize| {
        let mut v = Vec::new();
        while o + 4 <= end {
            let (code, len) = (u16_at(o), usize::from(u16_at(o + 2)));
            if code == 0 {
                break;
            }
            assert!(o + 4 + len <= end, "an option overruns its block at {o}");
            v.push((code, o + 4, len));
            o += 4 + len.div_ceil(4) * 4;
        }
        v
    };
    let text = |o: usize, len: usize| String::from_utf8_lossy(&b[o..o + len]).into_owned();
    let mut out = Pcapng {
        interfaces: Vec::new(),
        packets: Vec::new(),
    };
    let mut off = 0usize;
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
        let end = off + len - 4;
        match ty {
            1 => {
                let name = options(off + 16, end)
                    .into_iter()
                    .find(|(c, _, _)| *c == 2)
                    .map(|(_, o, l)| text(o, l))
                    .unwrap_or_default();
                out.interfaces.push(name);
            }
            6 => {
                // Enhanced packet block: interface, timestamp (2), captured and original
                // lengths, the frame padded to 32 bits, options.
                let cap = u32_at(off + 20) as usize;
                assert!(off + 28 + cap <= end, "a frame overruns its block at {off}");
                let opts = options(off + 28 + cap.div_ceil(4) * 4, end);
                let opt = |code: u16| opts.iter().find(|(c, _, _)| *c == code);
                out.packets.push(Captured {
                    interface: u32_at(off + 8),
                    ts_us: u64::from(u32_at(off + 12)) << 32 | u64::from(u32_at(off + 16)),
                    orig_len: u32_at(off + 24),
                    data: b[off + 28..off + 28 + cap].to_vec(),
                    comment: opt(1).map(|&(_, o, l)| text(o, l)),
                    flags: opt(2).map(|&(_, o, _)| u32_at(o)),
                });
            }
            _ => {}
        }
        off += len;
    }
    assert_eq!(off, b.len(), "{} ends in a partial block", path.display());
    assert!(!out.interfaces.is_empty(), "no interface description block");
    out
}

/// Reads a pcapng file: (packets, packets of TCP port 9000). Panics on a malformed file.
fn read_pcapng(path: &Path) -> (u64, u64) {
    let p = read_pcapng_file(path);
    let on_port = p
        .packets
        .iter()
        .filter(|c| {
            let f = &c.data;
            if f.len() < 14 + 20 + 4 || f[12..14] != [0x08, 0x00] || f[23] != 6 {
                return false;
            }
            let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
            let port = |o: usize| u16::from_be_bytes([f[l4 + o], f[l4 + o + 1]]);
            f.len() >= l4 + 4 && (port(0) == SPLICE_PORT || port(2) == SPLICE_PORT)
        })
        .count();
    (p.packets.len() as u64, on_port as u64)
}
