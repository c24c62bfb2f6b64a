//! `cutthrough run`: brings the box up on DPDK ports and runs it until SIGINT/SIGTERM.
//!
//! Threads (DESIGN.md §3): the EAL main lcore runs the control plane (this function's loop);
//! each worker lcore runs one [`Worker`] over RX/TX queue *i* of both ports. Login attempts
//! are verified on [`verifier::DEFAULT_THREADS`] plain threads started here, after EAL
//! init, so they inherit the main lcore's CPU set (see [`crate::verifier`]). The control plane
//! sends through worker 0's queues (over its ring), so every device works with one queue pair
//! per worker. Shutdown: the first signal sets a flag the
//! loops check once per burst; workers publish their last counters and stop, the ports are
//! stopped and EAL is cleaned up; a second signal exits at once.
//!
//! While it runs (see [`crate::ops`]): statistics every `--stats-period`, `--stats-json`
//! rewritten every second, the `/cutthrough/*` DPDK telemetry commands, the pdump server for
//! `dpdk-dumpcap`, and SIGHUP reloads the policy and users.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::config::Config;
use dataplane::context::{Context, ForwardMode};
use dataplane::contract::{Rings, HANDOFF_DEPTH};
use dataplane::dpdk::telemetry::{self, TelValue};
use dataplane::dpdk::{DpdkError, Eal, Mbuf, Mempool, Pdump, Port};
use dataplane::dpdk_port::DpdkQueuePair;
use dataplane::steer::Steering;
use dataplane::worker::Worker;

use crate::eal_args;
use crate::ops::{json_to_tel, AuthOp, FlowQuery, Hub, IoCounters, Ops, OpsConfig, FLOW_TIMEOUT};
use crate::plane::{ControlPlane, RingIo};
use crate::settings::Settings;
use crate::stats::{PortCounters, Stats};
use crate::verifier::{self, Verifier};

/// Why the box could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot write {path}: {source}")]
    Stats {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Options of `cutthrough run` beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub eal: Vec<String>,
    pub stats_json: Option<PathBuf>,
    pub mode: ForwardMode,
    /// Print the statistics this often.
    pub stats_period: Option<Duration>,
    /// The file the configuration came from: SIGHUP reads it again.
    pub config_file: Option<PathBuf>,
}

/// The ring from workers to control: deep enough for a few bursts from every worker.
const TO_CONTROL_DEPTH: usize = 4096;
const COMMAND_DEPTH: usize = 1024;

/// Milliseconds since `start`, wrapping (the fast path's clock).
fn now_ms(start: Instant) -> u32 {
    start.elapsed().as_millis() as u32
}

/// What a telemetry command answers: from the hub's snapshots and the command's parameters.
type TelHandler = fn(&Hub, &str) -> TelValue;

/// The `/cutthrough/*` telemetry commands: name, help, handler.
const TELEMETRY: [(&str, &str, TelHandler); 6] = [
    (
        "/cutthrough/stats",
        "The box's statistics: ports, flows by state, connections, drops, rings. No parameters",
        |h, _| h.stats(),
    ),
    (
        "/cutthrough/drops",
        "Packets dropped, by reason. No parameters",
        |h, _| h.drops(),
    ),
    (
        "/cutthrough/config",
        "The configuration in force: file, policy generation, rules. No parameters",
        |h, _| h.config(),
    ),
    (
        "/cutthrough/flows",
        "Flows: quad, phase, deltas, state, idle time. Parameters: [LIMIT][,CIDR|PORT|CIDR:PORT]",
        |h, params| match FlowQuery::parse(params) {
            Ok(q) => h.flows(q, FLOW_TIMEOUT * 2).to_tel(),
            Err(e) => TelValue::Str(e),
        },
    ),
    (
        "/cutthrough/auth",
        "Logins: user, client, method, since, idle, connections. No parameters",
        |h, _| json_to_tel(&h.auth(AuthOp::List, FLOW_TIMEOUT * 2)),
    ),
    (
        "/cutthrough/auth_clear",
        "Ends logins. Parameter: all, user=NAME or a client address",
        |h, params| match AuthOp::parse_clear(params) {
            Ok(op) => json_to_tel(&h.auth(op, FLOW_TIMEOUT * 2)),
            Err(e) => TelValue::Str(e),
        },
    ),
];

/// Registers [`TELEMETRY`], each command reading `hub`.
fn register_telemetry(eal: &Eal, hub: &Arc<Hub>) -> Result<(), DpdkError> {
    for (cmd, help, handler) in TELEMETRY {
        let h = Arc::clone(hub);
        telemetry::register(eal, cmd, help, move |params| handler(&h, params))?;
    }
    Ok(())
}

/// Runs the box until a signal; returns after a clean shutdown.
pub fn run(config: Config, opts: RunOptions) -> Result<Stats, RunError> {
    let (term, reload) = signals()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hugepages = eal_args::hugepages_free();
    let plan = eal_args::plan(&config, &opts.eal, cpus, hugepages);
    if plan.no_huge {
        log::warn!("no hugepages: running with --no-huge (slower; scripts/setup.sh reserves them)");
    }
    log::info!("EAL arguments: {}", plan.args.join(" "));
    let eal = Eal::init(&plan.args)?;
    let pdump = pdump(&eal);
    let workers = usize::from(config.workers.count.max(1));
    let lcores = worker_lcores(&eal, workers)?;

    let (pool, mut ports, macs, steering) = start_ports(&eal, &config, &plan.ports, workers)?;
    let settings = Arc::new(Settings::new(config.clone(), &macs, opts.mode).steered(steering));
    let rings: Rings<Mbuf> = Rings::new(workers, TO_CONTROL_DEPTH, COMMAND_DEPTH);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let slots = launch_workers(
        &eal,
        &lcores[..workers],
        &ports,
        &pool,
        &settings.workers,
        &rings,
        &stop,
        start,
    )?;
    log::info!(
        "cutthrough running: {workers} worker(s) on lcores {:?}",
        &lcores[..workers]
    );

    let mut ops = Ops::new(
        OpsConfig {
            stats_period: opts.stats_period,
            stats_json: opts.stats_json.clone(),
            config_file: opts.config_file.clone(),
            ports: config
                .interfaces
                .iter()
                .zip(&ports)
                .map(|(c, p)| (c.name.clone(), p.id()))
                .collect(),
            lcores: lcores[..workers].to_vec(),
        },
        slots,
    );
    ops.reload_requested = reload;
    ops.publish_config(&settings);
    if let Err(e) = register_telemetry(&eal, &ops.hub) {
        log::warn!("telemetry commands unavailable: {e}");
    }
    let port_stats = || {
        config
            .interfaces
            .iter()
            .zip(&ports)
            .map(|(c, p)| {
                let s = p.stats().map(|s| port_counters(&s)).unwrap_or_default();
                (c.name.clone(), s)
            })
            .collect()
    };

    let mut plane: ControlPlane<Mbuf> = ControlPlane::new(settings);
    start_verifier(&mut plane);
    let mut io = RingIo::new(&rings, |frame: &[u8]| Mbuf::from_slice(&pool, frame).ok());
    // Resolve the static routes' gateways ahead of traffic.
    for r in &config.routes {
        plane
            .local
            .prime(r.interface, r.via, now_ms(start), &mut io);
    }
    while !term.load(Ordering::Relaxed) {
        let busy = plane.poll(&rings, now_ms(start), &mut io) > 0;
        let counters = IoCounters {
            tx_failed: io.tx_failed,
            commands_dropped: io.commands_dropped,
        };
        ops.turn(&mut plane, &rings, counters, &port_stats);
        if !busy {
            // The control lcore shares a CPU with a worker on small machines: yield it.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    log::info!("stopping");
    stop.store(true, Ordering::Relaxed);
    plane.proxy.shutdown_verifier();
    eal.wait_all()?;
    let counters = IoCounters {
        tx_failed: io.tx_failed,
        commands_dropped: io.commands_dropped,
    };
    // Packets still queued between control and the workers go back to the pool before the
    // ports close; dropped ones are captured first.
    plane.finish(&rings);
    for r in &rings.from_control {
        while r.pop().is_some() {}
    }
    for r in &rings.handoff {
        while r.pop().is_some() {}
    }
    while rings.replies.pop().is_some() {}

    let mut port_counters = Vec::with_capacity(ports.len());
    for (c, p) in config.interfaces.iter().zip(&ports) {
        port_counters.push((c.name.clone(), self::port_counters(&p.stats()?)));
    }
    let stats = ops.stats(&plane, &rings, counters, port_counters);
    drop(pdump);
    for p in &mut ports {
        if let Err(e) = p.stop() {
            log::warn!("stopping port {}: {e}", p.name());
        }
    }
    drop(ports);
    if let Some(path) = &opts.stats_json {
        stats.write_json(path).map_err(|source| RunError::Stats {
            path: path.clone(),
            source,
        })?;
    }
    Ok(stats)
}

/// dpdk-dumpcap's server: it attaches as a secondary process, only to a primary on
/// hugepages, so it may be unavailable.
fn pdump(eal: &Eal) -> Option<Pdump> {
    match Pdump::init(eal) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("packet capture (pdump) unavailable: {e}");
            None
        }
    }
}

/// The first `workers` worker lcores EAL has.
fn worker_lcores(eal: &Eal, workers: usize) -> Result<Vec<u32>, RunError> {
    let lcores: Vec<u32> = eal.worker_lcores().take(workers).collect();
    if lcores.len() < workers {
        return Err(RunError::Setup(format!(
            "{workers} workers configured but EAL has {} worker lcores",
            lcores.len()
        )));
    }
    Ok(lcores)
}

/// SIGINT/SIGTERM (stop; a second one exits at once) and SIGHUP (reload) as flags.
fn signals() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), RunError> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while the first is being handled exits at once (status 1).
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&term))
            .map_err(|e| RunError::Setup(format!("signal handler: {e}")))?;
        signal_hook::flag::register(sig, Arc::clone(&term))
            .map_err(|e| RunError::Setup(format!("signal handler: {e}")))?;
    }

    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| RunError::Setup(format!("signal handler: {e}")))?;
    Ok((term, reload))
}

/// The mbuf pool and every port, configured and started; their MACs, and how packets reach
/// the worker that owns their flow: the NICs' symmetric RSS if every port does it, else the
/// workers' handoff rings for every packet.
#[allow(clippy::type_complexity)]
fn start_ports(
    eal: &Eal,
    config: &Config,
    names: &[String],
    workers: usize,
) -> Result<(Mempool, Vec<Port>, Vec<common::wire::MacAddr>, Steering), RunError> {
    let ifaces = &config.interfaces;
    let per_port: u32 = ifaces
        .iter()
        .map(|i| (u32::from(i.rx_descriptors) + u32::from(i.tx_descriptors)) * workers as u32)
        .sum();
    let in_rings = TO_CONTROL_DEPTH + (4096 + HANDOFF_DEPTH) * workers;
    let n_mbufs = (per_port + in_rings as u32 + 8192).next_power_of_two() - 1;
    let pool = Mempool::new(
        eal,
        "ct_mbufs",
        n_mbufs,
        256,
        Mempool::DEFAULT_DATA_ROOM,
        Mempool::SOCKET_ANY,
    )?;

    let mut ports = Vec::new();
    let mut macs = Vec::with_capacity(names.len());
    let mut reta = Some(u16::MAX);
    for (i, name) in names.iter().enumerate() {
        let iface = &ifaces[i];
        let mut port = Port::by_name(eal, name)?;
        let rxq = iface.rx_queues.max(workers as u16);
        let txq = iface.tx_queues.max(workers as u16);
        let c = port.configure(
            rxq,
            txq,
            iface.rx_descriptors,
            iface.tx_descriptors,
            iface.mtu,
            &pool,
        )?;
        reta = match (c.rss, reta) {
            (true, Some(r)) => Some(r.min(c.reta_size)),
            _ => None,
        };
        if let Some(mac) = iface.mac {
            port.set_mac_addr(mac)?;
        }
        port.promiscuous(true)?;
        port.start()?;
        let mac = port.mac_addr()?;
        macs.push(mac);
        let vlans: Vec<u16> = iface.vlans.iter().map(|v| v.id).collect();
        log::info!(
            "port {} ({name}, zone {}, vlans {vlans:?}): mac {mac}, {rxq} rx / {txq} tx queues, rss {}, link {:?}",
            iface.name,
            iface.zone,
            c.rss,
            port.link().ok()
        );
        ports.push(port);
    }
    let steering = match reta {
        _ if workers == 1 => Steering::One,
        Some(reta_size) if reta_size > 0 => Steering::Rss { reta_size },
        _ => Steering::Software,
    };
    if steering == Steering::Software {
        log::info!(
            "the ports do not spread flows by symmetric RSS: each of the {workers} workers hands \
             the packets of flows it does not own to their owner"
        );
    }
    Ok((pool, ports, macs, steering))
}

/// One worker per lcore, each polling its queue pair of every port until `stop`; their
/// statistics slots.
#[allow(clippy::too_many_arguments)]
fn launch_workers(
    eal: &Eal,
    lcores: &[u32],
    ports: &[Port],
    pool: &Mempool,
    ctx: &Arc<Context>,
    rings: &Rings<Mbuf>,
    stop: &Arc<AtomicBool>,
    start: Instant,
) -> Result<Vec<Arc<dataplane::live::StatsSlot>>, RunError> {
    let mut slots = Vec::with_capacity(lcores.len());
    for (i, &lcore) in lcores.iter().enumerate() {
        let q = i as u16;
        let pair = |p: &Port| -> Result<DpdkQueuePair, DpdkError> {
            Ok(DpdkQueuePair::new(p.rx_queue(q)?, p.tx_queue(q)?).with_pool(pool.clone()))
        };
        let queues = ports.iter().map(pair).collect::<Result<Vec<_>, _>>()?;
        let mut w = Worker::new(q, queues, Arc::clone(ctx), rings.worker(i));
        slots.push(w.stats_slot());
        let stop = Arc::clone(stop);
        eal.launch_on_lcore(lcore, move || {
            while !stop.load(Ordering::Relaxed) {
                w.turn(|| now_ms(start));
            }
            // The last word: control reads the final counters from the slot.
            w.publish(now_ms(start));
            0
        })?;
    }
    Ok(slots)
}

/// The login verifier threads (or, failing them, verification on the control lcore).
fn start_verifier(plane: &mut ControlPlane<Mbuf>) {
    // The directory's threads start even without `auth.radius`: a reload may add it.
    match Verifier::pool(
        verifier::DEFAULT_THREADS,
        verifier::DIRECTORY_THREADS,
        verifier::DEFAULT_CAPACITY,
        verifier::directory_check(),
    ) {
        Ok(v) => {
            log::info!("{} login verifier thread(s)", v.threads());
            plane.proxy.set_verifier(v);
        }
        Err(e) => log::warn!(
            "cannot start the password verifier threads ({e}): verifying on the control lcore"
        ),
    }
}

fn port_counters(s: &dataplane::dpdk::PortStats) -> PortCounters {
    PortCounters {
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}
