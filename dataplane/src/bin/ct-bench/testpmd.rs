//! `dpdk-testpmd` on the same devices as the box (see [`crate::fastpath`]): its arguments,
//! one run with its rate read from `--stats-period` output, and the `testpmd` subcommand.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use crate::fastpath::{eal_args, remove_runtime_dir, Mem, Setup, L2_OVERHEAD};
use crate::traffic::MIN_FRAME;
use crate::Args;

/// What one testpmd run measured.
#[derive(Debug, Clone)]
pub struct TestpmdResult {
    pub mpps: f64,
    pub rx_mpps: f64,
    pub samples: usize,
}

/// The testpmd binary (`CT_TESTPMD` overrides).
pub fn testpmd_bin() -> String {
    std::env::var("CT_TESTPMD").unwrap_or_else(|_| "dpdk-testpmd".into())
}

/// The command line of one testpmd run (also printed into the report).
pub fn testpmd_args(mode: &str, setup: &Setup, eal: Vec<String>) -> Vec<String> {
    let mut a = eal;
    a.extend([
        "--".to_string(),
        format!("--forward-mode={mode}"),
        "--nb-cores=1".into(),
        "--rxq=1".into(),
        "--txq=1".into(),
        "--burst=32".into(),
        format!("--total-num-mbufs={}", setup.mbufs),
        format!("--mbuf-size={}", setup.data_room),
        format!("--max-pkt-len={}", setup.mtu() + L2_OVERHEAD),
        "--stats-period=1".into(),
    ]);
    a
}

pub fn kill_int(child: &Child) {
    let _ = Proc::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

/// SIGINT (testpmd and l3fwd stop their ports and exit), then SIGKILL after 20 s.
pub fn interrupt(child: &mut Child) {
    kill_int(child);
    let stop = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            _ if Instant::now() > stop => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs testpmd for `warmup` + `secs` one-second periods after its first statistics, and
/// averages the forwarding rate (both ports' Tx-pps) over the last `secs` of them.
pub fn testpmd_run(
    mode: &str,
    setup: &Setup,
    (inside, outside, mem): (&Path, &Path, Mem),
    warmup: f64,
    secs: f64,
    log: &Path,
) -> Result<TestpmdResult, String> {
    let prefix = format!("ct-bench-tp-{}", std::process::id());
    let args = testpmd_args(mode, setup, eal_args(inside, outside, mem, &prefix));
    let mut child = Proc::new(testpmd_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log).map_err(|e| format!("{}: {e}", log.display()))?)
        .spawn()
        .map_err(|e| format!("{}: {e}", testpmd_bin()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let skip = 1 + warmup.ceil() as usize;
    let want = skip + secs.ceil().max(1.0) as usize;
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_secs_f64(secs);
    let mut tx_pps: Vec<f64> = Vec::new();
    let mut rx_pps: Vec<f64> = Vec::new();
    let mut transcript = String::new();
    while tx_pps.len() < 2 * want && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "testpmd exited ({status}) before {want} statistics periods; its output: {}",
                    tail(&transcript)
                ));
            }
            continue;
        };
        transcript.push_str(&line);
        transcript.push('\n');
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Tx-pps:") => {
                tx_pps.push(words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0))
            }
            Some("Rx-pps:") => {
                rx_pps.push(words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0))
            }
            _ => {}
        }
    }
    interrupt(&mut child);
    drop(rx);
    let _ = reader.join();
    remove_runtime_dir(&prefix);
    if tx_pps.len() < 2 * want {
        return Err(format!(
            "testpmd printed {} port statistics, {} wanted; its output: {}",
            tx_pps.len(),
            2 * want,
            tail(&transcript)
        ));
    }
    // Two ports per period, in port order.
    let per_period = |v: &[f64]| -> Vec<f64> { v.chunks(2).map(|c| c.iter().sum()).collect() };
    let t = per_period(&tx_pps[..2 * want]);
    let r = per_period(&rx_pps[..(2 * want).min(rx_pps.len())]);
    let used = &t[skip..];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(TestpmdResult {
        mpps: mean(used) / 1e6,
        rx_mpps: mean(r.get(skip..).unwrap_or(&[])) / 1e6,
        samples: used.len(),
    })
}

pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

pub fn testpmd_cmd(args: &Args) -> Result<(), String> {
    let setup = Setup::new(args.count("flows")?, args.num("size", MIN_FRAME)?)?;
    let mode = args.str("mode").unwrap_or("io");
    let mem = Mem::parse(args.str("mem").unwrap_or("auto"), &setup)?;
    let inside = PathBuf::from(args.req("inside")?);
    let outside = PathBuf::from(args.req("outside")?);
    let log = std::env::temp_dir().join(format!("ct-bench-testpmd-{}.log", std::process::id()));
    let r = testpmd_run(
        mode,
        &setup,
        (&inside, &outside, mem),
        args.num("warmup", 1.0)?,
        args.num("seconds", 3.0)?,
        &log,
    )?;
    let _ = std::fs::remove_file(&log);
    println!("{}", testpmd_result_line(mode, &setup, mem, &r));
    Ok(())
}

pub fn testpmd_result_line(mode: &str, setup: &Setup, mem: Mem, r: &TestpmdResult) -> String {
    format!(
        "RESULT impl=testpmd kind={mode} flows={} size={} mpps={:.3} rx_mpps={:.3} samples={} mem={} per_port={}",
        setup.flows,
        setup.size,
        r.mpps,
        r.rx_mpps,
        r.samples,
        mem.arg(),
        setup.per_port
    )
}
