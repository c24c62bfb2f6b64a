//! DPDK's `l3fwd` in exact-match mode (`-E`) on the same devices, captures and forwarding core
//! as the box (see [`crate::fastpath`]): the stateless lookup baseline. Its rule files, its
//! command line, and one run with its rate read through the EAL's telemetry socket (l3fwd
//! prints no statistics of its own).
//!
//! DPDK 22.11's l3fwd reads EM rules from `--rule_ipv4` (and needs `--rule_ipv6` beside it, or
//! it falls back to its 16 built-in rules; `--hash-entry-num` is ignored). Its table has
//! 4 M entries whatever the rules, so the 2 M rules of 1 M flows (both directions) fit at half
//! load. `scripts/setup.sh` builds it with the pool's size and mbuf size taken from
//! `CT_L3FWD_MBUFS` and `CT_L3FWD_DATA_ROOM` (stock l3fwd makes a pool of 8 k mbufs of 2 KiB,
//! which cannot hold the captures `net_pcap` keeps in mbufs, up to 1 M of them, and the box
//! and testpmd get the pool size and mbuf size set here), and asking for RX checksum offload
//! only where the port has it (`net_pcap` has not). Nothing else of it is changed.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use crate::fastpath::{eal_args, hugepages_free_mb, remove_runtime_dir, Mem, Setup, L2_OVERHEAD};
use crate::testpmd::{interrupt, tail};
use crate::traffic;

/// Where `scripts/setup.sh` builds l3fwd (`CT_L3FWD` overrides).
const DEFAULT_BIN: &str = "/usr/local/lib/cutthrough/l3fwd/dpdk-l3fwd";

/// What l3fwd allocates beyond the pool, MiB: two EM tables of 4 M entries each (IPv4 with
/// 16-byte keys, IPv6 with 48-byte ones: key store, buckets and free-slot ring; about 190 and
/// 320 MiB) and some slack.
pub const TABLES_MB: u32 = 600;

/// The largest `--max-pkt-len` l3fwd takes without asking for multi-segment TX.
const MAX_PKT_LEN: u16 = 1518;

const TELEMETRY_PY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/bench_telemetry.py"
));

pub fn l3fwd_bin() -> String {
    std::env::var("CT_L3FWD").unwrap_or_else(|_| DEFAULT_BIN.into())
}

/// The rule files: both directions of every flow (inside → outside leaves by port 1, outside
/// → inside by port 0), and the one IPv6 rule l3fwd needs to read the IPv4 file at all.
pub fn write_rules(dir: &Path, flows: u32) -> Result<(PathBuf, PathBuf), String> {
    let v4 = dir.join(format!("l3fwd-em-{flows}.v4"));
    let v6 = dir.join("l3fwd-em.v6");
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut w =
        BufWriter::with_capacity(1 << 20, std::fs::File::create(&v4).map_err(|e| io(&v4, e))?);
    // R<dst> <src> <dst port> <src port> <protocol> <out port>
    for i in 0..flows {
        let k = traffic::flow(i, true).key;
        writeln!(w, "R{} {} {} {} 6 1", k.dst, k.src, k.dport, k.sport).map_err(|e| io(&v4, e))?;
        writeln!(w, "R{} {} {} {} 6 0", k.src, k.dst, k.sport, k.dport).map_err(|e| io(&v4, e))?;
    }
    w.flush().map_err(|e| io(&v4, e))?;
    std::fs::write(&v6, "R2001:db8::2 2001:db8::1 9 9 6 0\n").map_err(|e| io(&v6, e))?;
    Ok((v4, v6))
}

/// The EAL memory of an l3fwd run: that of the box and testpmd plus its tables.
pub fn l3fwd_mem(mem: Mem, setup: &Setup) -> Result<Mem, String> {
    match mem {
        Mem::NoHuge(mb) => Ok(Mem::NoHuge(mb + TABLES_MB)),
        Mem::Huge => {
            let (free, need) = (hugepages_free_mb(), u64::from(setup.need_mb + TABLES_MB));
            if free < need {
                return Err(format!(
                    "{free} MiB of hugepages free, l3fwd needs {need} MiB (its EM tables beside \
                     the captures): raise CT_HUGEPAGES for scripts/setup.sh"
                ));
            }
            Ok(Mem::Huge)
        }
    }
}

/// The command line of one run. l3fwd opens one TX queue per lcore and a `net_pcap` port
/// without a TX capture has one, so it gets lcore 1 alone: its main lcore is its forwarding
/// lcore, the one the box's worker and testpmd's forwarding core use.
pub fn l3fwd_args(setup: &Setup, eal: Vec<String>, rules: &(PathBuf, PathBuf)) -> Vec<String> {
    let mut a: Vec<String> = eal
        .into_iter()
        .map(|v| if v == "0,1" { "1".into() } else { v })
        .collect();
    a.extend([
        "--".to_string(),
        "-p".into(),
        "0x3".into(),
        "-E".into(),
        // net_pcap sets no packet types: l3fwd classifies in an RX callback.
        "--parse-ptype".into(),
        "--config=(0,0,1),(1,0,1)".into(),
        format!("--rule_ipv4={}", rules.0.display()),
        format!("--rule_ipv6={}", rules.1.display()),
        // Above 1518 bytes l3fwd asks for multi-segment TX, which net_pcap has not; 1518
        // holds the largest frame measured.
        format!(
            "--max-pkt-len={}",
            (setup.mtu() + L2_OVERHEAD).min(MAX_PKT_LEN)
        ),
    ]);
    a
}

/// The environment the patched build reads its pool from.
pub fn l3fwd_env(setup: &Setup) -> [(&'static str, String); 2] {
    [
        ("CT_L3FWD_MBUFS", setup.mbufs.to_string()),
        ("CT_L3FWD_DATA_ROOM", setup.data_room.to_string()),
    ]
}

/// What one run measured: packets per second transmitted and received by both ports.
#[derive(Debug, Clone, Copy)]
pub struct L3fwdResult {
    pub mpps: f64,
    pub rx_mpps: f64,
    pub secs: f64,
}

/// Runs l3fwd, waits for its ports to forward, lets `warmup` seconds pass and measures the
/// next `secs`, then stops it with SIGINT.
pub fn l3fwd_run(
    setup: &Setup,
    (inside, outside, mem): (&Path, &Path, Mem),
    rules: &(PathBuf, PathBuf),
    (warmup, secs): (f64, f64),
    log: &Path,
) -> Result<L3fwdResult, String> {
    let prefix = format!("ct-bench-l3-{}", std::process::id());
    let args = l3fwd_args(setup, eal_args(inside, outside, mem, &prefix), rules);
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Proc::new(l3fwd_bin())
        .args(&args)
        .envs(l3fwd_env(setup))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e} (scripts/setup.sh builds it)", l3fwd_bin()))?;
    // l3fwd prints a line per rule (2 M at 1 M flows): keep the others for error messages.
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut kept = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !line.starts_with("EM: Adding route") {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        kept
    });
    let sock = format!("/var/run/dpdk/{prefix}/dpdk_telemetry.v2");
    let r = sample(&mut child, &sock, warmup, secs);
    interrupt(&mut child);
    let transcript = reader.join().unwrap_or_default();
    remove_runtime_dir(&prefix);
    r.map_err(|e| {
        let err = std::fs::read_to_string(log).unwrap_or_default();
        format!("{e}; its output: {}{}", tail(&transcript), tail(&err))
    })
}

/// The telemetry reader's one line, unless l3fwd exits first.
fn sample(child: &mut Child, sock: &str, warmup: f64, secs: f64) -> Result<L3fwdResult, String> {
    let timeout = 300.0;
    let mut py = Proc::new("python3")
        .args(["-c", TELEMETRY_PY, sock, "2"])
        .args([warmup, secs, timeout].map(|v| v.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout + warmup + secs + 30.0);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = py.kill();
            let _ = py.wait();
            return Err(format!("l3fwd exited ({status}) before it was measured"));
        }
        if let Ok(Some(_)) = py.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = py.kill();
            let _ = py.wait();
            return Err("no rate from the telemetry socket in time".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = py.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RATE "))
        .ok_or_else(|| format!("telemetry: {}", String::from_utf8_lossy(&out.stderr).trim()))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    let [tx, rx, s] = v[..] else {
        return Err(format!("telemetry: {line:?}"));
    };
    Ok(L3fwdResult {
        mpps: tx / s / 1e6,
        rx_mpps: rx / s / 1e6,
        secs: s,
    })
}

pub fn l3fwd_result_line(setup: &Setup, mem: Mem, r: &L3fwdResult) -> String {
    format!(
        "RESULT impl=l3fwd kind=em flows={} size={} mpps={:.3} rx_mpps={:.3} secs={:.3} mem={} \
         per_port={} rules={}",
        setup.flows,
        setup.size,
        r.mpps,
        r.rx_mpps,
        r.secs,
        mem.arg(),
        setup.per_port,
        2 * u64::from(setup.flows)
    )
}
