//! The fast-path packet rate, testpmd style: the box's worker and `dpdk-testpmd` on the same
//! two `net_pcap` devices, fed the same captures (`infinite_rx`: the PMD keeps the capture in
//! mbufs and copies each packet into a fresh mbuf on every RX, so the worker may rewrite it in
//! place and the next round still sees the original), on the same cores (`-l 0,1`: lcore 0
//! the main one, lcore 1 the forwarding one), with the same mempool size and mbuf size.
//!
//! Inside port (`net_pcap0`): the clients' segments; outside port (`net_pcap1`): the servers'.
//! Both have no TX capture, so what is transmitted is counted and freed (`tx_drop`). Both
//! directions are forwarded at once, as testpmd does with two paired ports.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::context::{Context, ForwardMode};
use dataplane::contract::{Command, Rings};
use dataplane::dpdk::{tsc, tsc_hz, Eal, Mbuf, Mempool, Port};
use dataplane::dpdk_port::DpdkQueuePair;
use dataplane::testing::{INSIDE, OUTSIDE};
use dataplane::verdict::DropCounters;
use dataplane::worker::{Worker, WorkerCounters};

use crate::l3fwd::{l3fwd_args, l3fwd_bin, l3fwd_env, l3fwd_mem, l3fwd_result_line, l3fwd_run};
use crate::testpmd::{kill_int, tail, testpmd_args, testpmd_bin, testpmd_result_line, testpmd_run};
use crate::traffic::{self, BOX_MACS, CLIENT_MAC, MIN_FRAME, SERVER, SERVER_MAC};
use crate::Args;

const HEADROOM: u16 = Mempool::HEADROOM;
/// Ethernet header and CRC: what a port adds to the MTU.
pub const L2_OVERHEAD: u16 = 18;

/// Sizes that follow from the number of flows and the frame size.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub flows: u32,
    pub size: usize,
    /// Segments in each port's capture.
    pub per_port: u32,
    pub data_room: u16,
    pub mbufs: u32,
    /// Memory the run needs, MiB (pool, capture rings, EAL).
    pub need_mb: u32,
}

impl Setup {
    pub fn new(flows: u32, size: usize) -> Result<Setup, String> {
        if !(MIN_FRAME..=1514).contains(&size) {
            return Err(format!(
                "--size {size}: frames are {MIN_FRAME} (a pure ACK with timestamps) to 1514 bytes"
            ));
        }
        if flows == 0 {
            return Err("--flows 0".into());
        }
        // The captures live in mbufs of the pool: keep them within ~half a GiB.
        let cap = if size <= 128 { 1 << 19 } else { 1 << 17 };
        let per_port = flows.min(cap);
        let data_room = HEADROOM + (size as u16).div_ceil(128) * 128;
        let mbufs = 2 * per_port + 16_384;
        let elt = u64::from(data_room) + 128 + 64;
        let need_mb = ((u64::from(mbufs) * elt) >> 20) as u32 + 96;
        Ok(Setup {
            flows,
            size,
            per_port,
            data_room,
            mbufs,
            need_mb,
        })
    }

    pub fn mtu(&self) -> u16 {
        self.data_room - HEADROOM - L2_OVERHEAD
    }
}

/// Where the EAL's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mem {
    Huge,
    /// `--no-huge -m MB`.
    NoHuge(u32),
}

impl Mem {
    pub fn arg(self) -> String {
        match self {
            Mem::Huge => "huge".into(),
            Mem::NoHuge(mb) => format!("no-huge:{mb}"),
        }
    }

    pub fn parse(s: &str, setup: &Setup) -> Result<Mem, String> {
        let free = hugepages_free_mb();
        match s {
            "huge" => Ok(Mem::Huge),
            "no-huge" => Ok(Mem::NoHuge(setup.need_mb + 256)),
            "auto" if free >= u64::from(setup.need_mb) + 128 => Ok(Mem::Huge),
            "auto" => {
                eprintln!(
                    "ct-bench: {free} MiB of hugepages free, {} MiB needed: --no-huge (slower; \
                     scripts/setup.sh reserves hugepages)",
                    setup.need_mb + 128
                );
                Ok(Mem::NoHuge(setup.need_mb + 256))
            }
            _ => s
                .strip_prefix("no-huge:")
                .and_then(|m| m.parse().ok())
                .map(Mem::NoHuge)
                .ok_or_else(|| format!("--mem {s:?}: auto, huge, no-huge or no-huge:MB")),
        }
    }
}

/// Free hugepage memory in MiB (`HugePages_Free` × `Hugepagesize`).
pub fn hugepages_free_mb() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:") * field("Hugepagesize:") / 1024
}

/// The EAL arguments both the box and testpmd get.
pub fn eal_args(inside: &Path, outside: &Path, mem: Mem, prefix: &str) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-l".into(),
        "0,1".into(),
        "--no-pci".into(),
        format!("--file-prefix={prefix}"),
        "--log-level=warning".into(),
        format!(
            "--vdev=net_pcap0,rx_pcap={},infinite_rx=1",
            inside.display()
        ),
        format!(
            "--vdev=net_pcap1,rx_pcap={},infinite_rx=1",
            outside.display()
        ),
    ];
    match mem {
        Mem::Huge => a.push("--in-memory".into()),
        Mem::NoHuge(mb) => a.extend([
            "--no-huge".into(),
            "--no-shconf".into(),
            "-m".into(),
            mb.to_string(),
        ]),
    }
    a
}

/// Writes the two captures of `kind` (`spliced` or `pass`) into `dir`.
fn write_pcaps(dir: &Path, setup: &Setup, spliced: bool) -> Result<(PathBuf, PathBuf), String> {
    let tag = if spliced { "spliced" } else { "pass" };
    let inside = dir.join(format!("{tag}-inside.pcap"));
    let outside = dir.join(format!("{tag}-outside.pcap"));
    let (fi, fo) = traffic::plan(setup.flows, setup.per_port);
    let size = setup.size;
    traffic::write_pcap(
        &inside,
        fi.iter()
            .map(|&i| traffic::client_segment(&traffic::flow(i, spliced), size)),
    )
    .map_err(|e| format!("{}: {e}", inside.display()))?;
    traffic::write_pcap(
        &outside,
        fo.iter()
            .map(|&i| traffic::server_segment(&traffic::flow(i, spliced), size)),
    )
    .map_err(|e| format!("{}: {e}", outside.display()))?;
    Ok((inside, outside))
}

pub fn pcap_cmd(args: &Args) -> Result<(), String> {
    let setup = Setup::new(args.count("flows")?, args.num("size", MIN_FRAME)?)?;
    let dir = PathBuf::from(args.req("dir")?);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let spliced = args.str("kind").unwrap_or("spliced") != "pass";
    let (i, o) = write_pcaps(&dir, &setup, spliced)?;
    println!("{} {}", i.display(), o.display());
    Ok(())
}

/// What the worker's lcore hands back.
#[derive(Debug, Clone, Copy)]
struct Sample {
    before: WorkerCounters,
    after: WorkerCounters,
    cycles: u64,
    polls: u64,
    empty_polls: u64,
    flows: usize,
}

fn testbed_config() -> Result<common::config::Config, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/testbed.yaml");
    common::config::load(Path::new(path)).map_err(|e| e.to_string())
}

/// One in-process run of the box's worker (the `box` subcommand).
pub fn box_run(args: &Args) -> Result<(), String> {
    let kind = args.req("kind")?.to_string();
    let mode = match kind.as_str() {
        "spliced" | "pass" => ForwardMode::Full,
        // The spliced objects' table, looked up by every packet, nothing else done.
        "lookup" => ForwardMode::Lookup,
        "io" => ForwardMode::Io,
        k => return Err(format!("--kind {k:?}: spliced, pass, lookup or io")),
    };
    let spliced = kind == "spliced" || kind == "lookup";
    let setup = Setup::new(args.count("flows")?, args.num("size", MIN_FRAME)?)?;
    let secs: f64 = args.num("seconds", 3.0)?;
    let warmup: f64 = args.num("warmup", 1.0)?;
    let mem = Mem::parse(args.str("mem").unwrap_or("auto"), &setup)?;
    let inside = PathBuf::from(args.req("inside")?);
    let outside = PathBuf::from(args.req("outside")?);
    let n = setup.flows;

    let prefix = format!("ct-bench-{}", std::process::id());
    let eal = Eal::init(&eal_args(&inside, &outside, mem, &prefix)).map_err(|e| e.to_string())?;
    let lcore = eal
        .worker_lcores()
        .next()
        .ok_or("the EAL has no worker lcore (needs two CPUs)")?;
    let hz = tsc_hz();
    let pool = Mempool::new(
        &eal,
        "ct_bench",
        setup.mbufs,
        256,
        setup.data_room,
        Mempool::SOCKET_ANY,
    )
    .map_err(|e| e.to_string())?;
    let mut ports = start_ports(&eal, &setup, &pool)?;

    let rings: Rings<Mbuf> = Rings::new(1, 4096, 1 << 16);
    let mut w = box_worker(&ports, mode, n, &rings)?;
    let start = Instant::now();
    let now_ms = move || start.elapsed().as_millis() as u32;
    let install_s = install_objects(&mut w, &rings, kind != "io", n, spliced, now_ms)?;
    let s = measure(&eal, lcore, w, warmup, secs, hz, now_ms)?;
    print_box_result(&kind, &setup, mem, install_s, hz, &s, &ports);
    std::io::stdout().flush().ok();
    for p in &mut ports {
        let _ = p.stop();
    }
    drop(ports);
    remove_runtime_dir(&prefix);
    Ok(())
}

/// The two `net_pcap` ports, configured with one queue each on `pool` and started.
fn start_ports(eal: &Eal, setup: &Setup, pool: &Mempool) -> Result<Vec<Port>, String> {
    let mut ports = Vec::new();
    for name in ["net_pcap0", "net_pcap1"] {
        let mut p = Port::by_name(eal, name).map_err(|e| e.to_string())?;
        p.configure(1, 1, 1024, 1024, setup.mtu(), pool)
            .map_err(|e| e.to_string())?;
        p.start().map_err(|e| e.to_string())?;
        ports.push(p);
    }
    Ok(ports)
}

/// The worker on the testbed configuration, with room for `n` flows, on the ports' queues,
/// the neighbours (the server and every client) already on its command ring.
fn box_worker(
    ports: &[Port],
    mode: ForwardMode,
    n: u32,
    rings: &Rings<Mbuf>,
) -> Result<Worker<DpdkQueuePair>, String> {
    let mut ctx = Context::new(&testbed_config()?, &BOX_MACS, mode);
    ctx.flows_per_worker = n as usize;
    let ctx = Arc::new(ctx);
    let neighbour = |iface, ip, mac| Command::Neighbour {
        iface,
        ip,
        mac: Some(mac),
    };
    let mut cmds = vec![neighbour(OUTSIDE, SERVER, SERVER_MAC)];
    cmds.extend(
        (0..traffic::clients(n)).map(|c| neighbour(INSIDE, traffic::client_addr(c), CLIENT_MAC)),
    );
    for c in cmds {
        rings.commands[0].push(c).map_err(|_| "command ring full")?;
    }
    let pair = |p: &Port| -> Result<DpdkQueuePair, String> {
        Ok(DpdkQueuePair::new(
            p.rx_queue(0).map_err(|e| e.to_string())?,
            p.tx_queue(0).map_err(|e| e.to_string())?,
        ))
    };
    Ok(Worker::new(
        0,
        vec![pair(&ports[0])?, pair(&ports[1])?],
        ctx,
        rings.worker(0),
    ))
}

/// Installs the `n` objects (none with `install` false) and lets the worker apply every
/// command; returns the seconds it took.
fn install_objects(
    w: &mut Worker<DpdkQueuePair>,
    rings: &Rings<Mbuf>,
    install: bool,
    n: u32,
    spliced: bool,
    now_ms: impl Fn() -> u32,
) -> Result<f64, String> {
    // The objects go in the way the control plane puts them: as commands on the worker's
    // ring, applied by its own poll (which also forwards what the ports bring meanwhile:
    // those packets fall outside the measurement).
    let t_install = Instant::now();
    let mut next = 0u32;
    while (install && next < n) || !rings.commands[0].is_empty() {
        while install && next < n {
            let obj = traffic::object(&traffic::flow(next, spliced), spliced);
            if rings.commands[0].push(Command::Install(obj)).is_err() {
                break;
            }
            next += 1;
        }
        w.poll(now_ms());
        if t_install.elapsed() > Duration::from_secs(300) {
            return Err("installing the objects took more than 300 s".into());
        }
    }
    let install_s = t_install.elapsed().as_secs_f64();
    if install && (w.counters.flows_installed != u64::from(n) || w.table().len() != n as usize) {
        return Err(format!(
            "{} of {n} objects installed ({} in the table, drops {:?})",
            w.counters.flows_installed,
            w.table().len(),
            w.counters
                .drops
                .iter()
                .filter(|(_, v)| *v > 0)
                .collect::<Vec<_>>()
        ));
    }
    Ok(install_s)
}

/// Runs the worker on `lcore`: `warmup` seconds, then `secs` seconds counted; returns what
/// it counted.
fn measure(
    eal: &Eal,
    lcore: u32,
    mut w: Worker<DpdkQueuePair>,
    warmup: f64,
    secs: f64,
    hz: u64,
    now_ms: impl Fn() -> u32 + Copy + Send + 'static,
) -> Result<Sample, String> {
    let out: Arc<Mutex<Option<Sample>>> = Arc::new(Mutex::new(None));
    let out2 = Arc::clone(&out);
    let (warm_cycles, run_cycles) = ((warmup * hz as f64) as u64, (secs * hz as f64) as u64);
    eal.launch_on_lcore(lcore, move || {
        let t0 = tsc();
        while tsc() - t0 < warm_cycles {
            w.turn(now_ms);
        }
        let before = w.counters;
        let (mut polls, mut empty_polls) = (0u64, 0u64);
        let s = tsc();
        let mut e = s;
        while e - s < run_cycles {
            let got = w.turn(now_ms);
            polls += 1;
            empty_polls += u64::from(got == 0);
            e = tsc();
        }
        let sample = Sample {
            before,
            after: w.counters,
            cycles: e - s,
            polls,
            empty_polls,
            flows: w.table().len(),
        };
        if let Ok(mut o) = out2.lock() {
            *o = Some(sample);
        }
        0
    })
    .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs_f64(warmup + secs + 0.05));
    let rc = eal.wait_lcore(lcore).map_err(|e| e.to_string())?;
    let s = out
        .lock()
        .ok()
        .and_then(|o| *o)
        .ok_or(format!("the worker lcore returned {rc} without a sample"))?;
    Ok(s)
}

/// The `RESULT impl=box` line of a run: rates, drops by reason, the worker's and the ports'
/// counters.
fn print_box_result(
    kind: &str,
    setup: &Setup,
    mem: Mem,
    install_s: f64,
    hz: u64,
    s: &Sample,
    ports: &[Port],
) {
    let n = setup.flows;
    let (b, a) = (&s.before, &s.after);
    let secs = s.cycles as f64 / hz as f64;
    let rx = a.rx - b.rx;
    let tx = a.tx - b.tx;
    let fwd = a.forwarded - b.forwarded;
    let mut drops = DropCounters::default();
    for (i, d) in drops.0.iter_mut().enumerate() {
        *d = a.drops.0[i] - b.drops.0[i];
    }
    let reasons: Vec<String> = drops
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    let stats: Vec<_> = ports
        .iter()
        .map(|p| p.stats().unwrap_or_default())
        .collect();
    println!(
        "RESULT impl=box kind={kind} flows={n} size={} mpps={:.3} rx_mpps={:.3} cpp={:.1} \
         rx={rx} tx={tx} forwarded={fwd} drops={} drop_reasons={} to_control={} ignored={} \
         polls={} empty_polls={} table={} installed={} install_s={install_s:.2} secs={secs:.3} \
         hz={hz} mem={} per_port={} port_ipackets={} port_opackets={} rx_nombuf={}",
        setup.size,
        tx as f64 / secs / 1e6,
        rx as f64 / secs / 1e6,
        s.cycles as f64 / rx.max(1) as f64,
        drops.total(),
        if reasons.is_empty() {
            "none".to_string()
        } else {
            reasons.join(",")
        },
        a.to_control - b.to_control,
        a.ignored - b.ignored,
        s.polls,
        s.empty_polls,
        s.flows,
        a.flows_installed,
        mem.arg(),
        setup.per_port,
        stats[0].ipackets + stats[1].ipackets,
        stats[0].opackets + stats[1].opackets,
        stats[0].rx_nombuf + stats[1].rx_nombuf,
    );
}

/// The EAL's runtime directory of a `--no-shconf` / `--in-memory` run (empty by then).
pub fn remove_runtime_dir(prefix: &str) {
    for base in ["/var/run/dpdk", "/tmp/dpdk"] {
        let _ = std::fs::remove_dir_all(format!("{base}/{prefix}"));
    }
}

/// Runs `exe args` with stdout and stderr to files in `dir`, waiting at most `limit`.
fn run_logged(
    exe: &Path,
    args: &[String],
    dir: &Path,
    tag: &str,
    limit: Duration,
) -> Result<String, String> {
    let out_path = dir.join(format!("{tag}.out"));
    let err_path = dir.join(format!("{tag}.err"));
    let open = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut child = Proc::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(open(&out_path)?)
        .stderr(open(&err_path)?)
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            kill_int(&child);
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{tag}: still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        return Err(format!("{tag}: {status}: {}", tail(&err)));
    }
    Ok(out)
}

/// A `key=value` field of a RESULT line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// What every run of the `fastpath` subcommand shares.
struct Bench {
    setup: Setup,
    secs: f64,
    warmup: f64,
    mem: Mem,
    /// Where the captures and the runs' logs go.
    dir: PathBuf,
    /// This binary, run as `box` for each of the box's kinds.
    exe: PathBuf,
    /// The captures (inside, outside) of spliced flows, and of pass flows if a kind needs them.
    spliced: (PathBuf, PathBuf),
    pass: Option<(PathBuf, PathBuf)>,
    /// l3fwd's rule files (IPv4, IPv6) if it runs.
    rules: Option<(PathBuf, PathBuf)>,
}

/// The `fastpath` subcommand: everything for one (flows, size), several runs, one summary.
pub fn orchestrate(args: &Args) -> Result<(), String> {
    let setup = Setup::new(args.count("flows")?, args.num("size", MIN_FRAME)?)?;
    let runs: usize = args.num("runs", 5)?;
    let secs: f64 = args.num("seconds", 3.0)?;
    let warmup: f64 = args.num("warmup", 1.0)?;
    let kinds: Vec<String> = args
        .str("kinds")
        .unwrap_or("spliced,pass,lookup,io,testpmd-io,testpmd-5tswap,l3fwd-em")
        .split(',')
        .map(String::from)
        .collect();
    let mem = Mem::parse(args.str("mem").unwrap_or("auto"), &setup)?;
    let dir = match args.str("dir") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("ct-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut results = match args.str("results") {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{p}: {e}"))?,
        ),
        None => None,
    };

    let t = Instant::now();
    let spliced = write_pcaps(&dir, &setup, true)?;
    let pass = if kinds.iter().any(|k| k == "pass") {
        Some(write_pcaps(&dir, &setup, false)?)
    } else {
        None
    };
    let rules = if kinds.iter().any(|k| k == "l3fwd-em") {
        Some(crate::l3fwd::write_rules(&dir, setup.flows)?)
    } else {
        None
    };
    eprintln!(
        "fastpath: {} flows, {}-byte frames, {} segments per port, mem {}: captures in {:.1} s",
        setup.flows,
        setup.size,
        setup.per_port,
        mem.arg(),
        t.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bench = Bench {
        setup,
        secs,
        warmup,
        mem,
        dir,
        exe,
        spliced,
        pass,
        rules,
    };
    print_commands(&bench, &kinds);
    let limit = Duration::from_secs_f64(warmup + secs + 600.0);
    let mut lines: Vec<String> = Vec::new();
    let mut l3fwd_runs = true;
    for run in 0..runs {
        for kind in &kinds {
            if kind == "l3fwd-em" && !l3fwd_runs {
                continue;
            }
            let line = match run_kind(&bench, kind, run, limit) {
                Ok(l) => l,
                // A baseline that cannot run here (not built, too few hugepages for its
                // tables) leaves its column empty rather than the box's unmeasured.
                Err(e) if kind == "l3fwd-em" => {
                    eprintln!("fastpath: l3fwd-em left out: {e}");
                    l3fwd_runs = false;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let line = format!("{line} run={run}");
            println!("{line}");
            if let Some(f) = results.as_mut() {
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
            }
            lines.push(line);
        }
    }
    print!("{}", crate::report::fastpath_table(&lines));
    if args.str("keep").is_none() {
        let _ = std::fs::remove_dir_all(&bench.dir);
    }
    Ok(())
}

/// The exact command line of each kind, once (the file prefix carries the pid of each run).
fn print_commands(bench: &Bench, kinds: &[String]) {
    let Bench {
        setup,
        secs,
        warmup,
        mem,
        exe,
        spliced,
        pass,
        rules,
        ..
    } = bench;
    let mem = *mem;
    for kind in kinds {
        if let (Some(rules), true) = (rules, kind == "l3fwd-em") {
            let Ok(mem) = l3fwd_mem(mem, setup) else {
                continue;
            };
            let eal = eal_args(&spliced.0, &spliced.1, mem, "ct-bench-l3-PID");
            let env: Vec<String> = l3fwd_env(setup)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "COMMAND {} {} {}",
                env.join(" "),
                l3fwd_bin(),
                l3fwd_args(setup, eal, rules).join(" ")
            );
        } else if let Some(mode) = kind.strip_prefix("testpmd-") {
            let eal = eal_args(&spliced.0, &spliced.1, mem, "ct-bench-tp-PID");
            println!(
                "COMMAND {} {}",
                testpmd_bin(),
                testpmd_args(mode, setup, eal).join(" ")
            );
        } else {
            let (i, o) = if kind == "pass" {
                pass.as_ref()
                    .map_or((&spliced.0, &spliced.1), |p| (&p.0, &p.1))
            } else {
                (&spliced.0, &spliced.1)
            };
            println!(
                "COMMAND {} box --kind {kind} --flows {} --size {} --inside {} --outside {} \
                 --seconds {secs} --warmup {warmup} --mem {}   # EAL: {}",
                exe.display(),
                setup.flows,
                setup.size,
                i.display(),
                o.display(),
                mem.arg(),
                eal_args(i, o, mem, "ct-bench-PID").join(" ")
            );
        }
    }
}

/// One run of `kind` (the box's worker in a child process, or testpmd): its RESULT line.
fn run_kind(bench: &Bench, kind: &str, run: usize, limit: Duration) -> Result<String, String> {
    let (setup, dir, spliced) = (&bench.setup, &bench.dir, &bench.spliced);
    let (secs, warmup, mem) = (bench.secs, bench.warmup, bench.mem);
    let line = match kind {
        "spliced" | "pass" | "lookup" | "io" => {
            let (i, o) = if kind == "pass" {
                bench.pass.as_ref().ok_or("no pass captures")?
            } else {
                spliced
            };
            let a: Vec<String> = [
                "box",
                "--kind",
                kind,
                "--flows",
                &setup.flows.to_string(),
                "--size",
                &setup.size.to_string(),
                "--inside",
                &i.display().to_string(),
                "--outside",
                &o.display().to_string(),
                "--seconds",
                &secs.to_string(),
                "--warmup",
                &warmup.to_string(),
                "--mem",
                &mem.arg(),
            ]
            .map(String::from)
            .to_vec();
            let out = run_logged(&bench.exe, &a, dir, &format!("box-{kind}-{run}"), limit)?;
            out.lines()
                .find(|l| l.starts_with("RESULT "))
                .ok_or(format!("box {kind}: no RESULT line in {out:?}"))?
                .to_string()
        }
        "l3fwd-em" => {
            let rules = bench.rules.as_ref().ok_or("no l3fwd rules")?;
            let mem = l3fwd_mem(mem, setup)?;
            let log = dir.join(format!("l3fwd-em-{run}.err"));
            let r = l3fwd_run(
                setup,
                (&spliced.0, &spliced.1, mem),
                rules,
                (warmup, secs),
                &log,
            )?;
            l3fwd_result_line(setup, mem, &r)
        }
        k => {
            let mode = k
                .strip_prefix("testpmd-")
                .ok_or(format!("unknown kind {k:?}"))?;
            let log = dir.join(format!("testpmd-{mode}-{run}.err"));
            let r = testpmd_run(
                mode,
                setup,
                (&spliced.0, &spliced.1, mem),
                warmup,
                secs,
                &log,
            )?;
            testpmd_result_line(mode, setup, mem, &r)
        }
    };
    Ok(line)
}
