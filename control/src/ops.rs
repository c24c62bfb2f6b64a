//! Operating the box while it runs: live statistics (`--stats-period`, the periodic
//! `--stats-json`), the snapshots the DPDK telemetry commands read, flow listings, and the
//! SIGHUP reload. All of it runs on the control lcore, a little per turn of its loop, and
//! touches the workers only through their published slots and their command rings.
//!
//! - **Statistics**: every [`REFRESH`] control reads every worker's [`StatsSlot`] (a seqlock
//!   snapshot, `dataplane::live`), adds its own counters, and publishes a [`Stats`] and a
//!   [`Report`] to the [`Hub`]; every `--stats-period` it prints the report.
//! - **The hub** is what DPDK's telemetry threads read: snapshots behind a mutex (a telemetry
//!   request is not the fast path; the workers never touch it).
//! - **Flow listings**: a telemetry request for flows raises a flag; control sends each worker
//!   a bounded [`FlowDump`] over its command ring, gathers the answers from the reply ring
//!   (or gives up on a worker after [`FLOW_TIMEOUT`]), names the phase of the connections the
//!   participating stack holds, and hands the listing to the waiting request.
//! - **Reload**: on SIGHUP the configuration file is read again. A bad file is refused with
//!   the error `check-config` prints, and the running policy stays. A good one becomes a new
//!   [`Settings`] (policy, users, authentication; the rest needs a restart and is kept, with a
//!   warning): the participating stack takes it at once, each worker takes its [`Context`]
//!   over its command ring between two bursts (a full ring is retried on the next turn).
//!   Flows in the tables, spliced ones included, are not touched. Control keeps the old
//!   context alive until no worker holds it, so a worker never frees memory when it lets go
//!   of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::settings::Settings;
use common::config::Config;
use dataplane::context::Context;
use dataplane::contract::{Command, NewContext, Rings};
use dataplane::live::{phase_of, FlowDump, FlowFilter, Reply, StatsSlot, WorkerSnapshot};
use dataplane::packet::Packet;
use dataplane::tel_value::TelValue;

mod hub;

pub use hub::*;

use crate::plane::ControlPlane;
use crate::report::Report;
use crate::stats::{LiveInputs, PortCounters, RingStats, Stats};

/// How often the snapshots for telemetry and `--stats-json` are refreshed.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a flow listing waits for the workers' answers.
pub const FLOW_TIMEOUT: Duration = Duration::from_millis(500);
/// The most flows one telemetry reply lists (DPDK's replies are at most 16 KiB of JSON).
pub const FLOWS_MAX: usize = 80;
/// Flows listed when the request does not say.
pub const FLOWS_DEFAULT: usize = 50;

/// A request for flows: `[LIMIT][,FILTER]` after the command's comma, e.g.
/// `/cutthrough/flows,20,198.18.0.0/24`, `/cutthrough/flows,9000` (a lone number up to
/// [`FLOWS_MAX`] is a limit; use `:PORT` for a port filter that looks like one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowQuery {
    pub limit: usize,
    pub filter: FlowFilter,
}

impl Default for FlowQuery {
    fn default() -> Self {
        FlowQuery {
            limit: FLOWS_DEFAULT,
            filter: FlowFilter::default(),
        }
    }
}

impl FlowQuery {
    pub fn parse(params: &str) -> Result<FlowQuery, String> {
        let params = params.trim();
        let (first, rest) = match params.split_once(',') {
            Some((a, b)) => (a.trim(), Some(b.trim())),
            None => (params, None),
        };
        let mut q = FlowQuery::default();
        match (first.parse::<usize>(), rest) {
            (Ok(n), Some(f)) => {
                q.limit = n;
                q.filter = FlowFilter::parse(f)?;
            }
            (Ok(n), None) if n <= FLOWS_MAX => q.limit = n,
            (_, None) => q.filter = FlowFilter::parse(first)?,
            (Err(_), Some(_)) => {
                return Err(format!(
                    "bad flow request {params:?}: want [LIMIT][,FILTER]"
                ))
            }
        }
        q.limit = q.limit.min(FLOWS_MAX);
        Ok(q)
    }

    /// The parameters that [`FlowQuery::parse`] reads back.
    pub fn to_params(&self) -> String {
        let f = &self.filter;
        let net = f.net.map(|(a, l)| format!("{a}/{l}")).unwrap_or_default();
        let port = f.port.map(|p| format!(":{p}")).unwrap_or_default();
        if net.is_empty() && port.is_empty() {
            self.limit.to_string()
        } else {
            format!("{},{net}{port}", self.limit)
        }
    }
}

/// One flow of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    pub worker: u64,
    /// `address:port` of the SYN's sender, and of its destination.
    pub client: String,
    pub server: String,
    /// `pass`, `spliced`, or, while the participating stack holds the connection, `auth`,
    /// `proxied`, `draining` or `full_proxy`; `udp` for a UDP flow, `icmp` for an echo
    /// exchange (its identifier in place of both ports; state `unreplied` or `replied`).
    pub phase: String,
    pub state: String,
    pub delta1: u64,
    pub delta2: u64,
    /// Since the flow's last packet, by its worker's clock.
    pub idle_ms: u64,
}

/// A flow listing: up to `limit` flows of `matched`, of `total` in the tables. Packets and
/// bytes per flow are not kept by the fast path (they are not in the 48-byte object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowListing {
    pub total: u64,
    pub matched: u64,
    /// Every worker answered in time.
    pub complete: bool,
    pub flows: Vec<FlowRow>,
}

impl FlowListing {
    /// As a telemetry dict: the counts, then one entry per flow keyed by its position.
    pub fn to_tel(&self) -> TelValue {
        let mut d = vec![
            ("total".to_string(), TelValue::U64(self.total)),
            ("matched".to_string(), TelValue::U64(self.matched)),
            ("shown".to_string(), TelValue::U64(self.flows.len() as u64)),
            (
                "complete".to_string(),
                TelValue::U64(u64::from(self.complete)),
            ),
        ];
        for (i, f) in self.flows.iter().enumerate() {
            d.push((i.to_string(), json_to_tel(&serde_json::json!(f))));
        }
        TelValue::Dict(d)
    }

    /// Reads [`FlowListing::to_tel`]'s JSON back (in the client).
    pub fn from_json(v: &serde_json::Value) -> Result<FlowListing, String> {
        let o = v.as_object().ok_or("the flow listing is not an object")?;
        let n = |k: &str| o.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let mut flows: Vec<(usize, FlowRow)> = Vec::new();
        for (k, v) in o {
            if let Ok(i) = k.parse::<usize>() {
                let row: FlowRow =
                    serde_json::from_value(v.clone()).map_err(|e| format!("flow {k}: {e}"))?;
                flows.push((i, row));
            }
        }
        flows.sort_by_key(|(i, _)| *i);
        Ok(FlowListing {
            total: n("total"),
            matched: n("matched"),
            complete: n("complete") != 0,
            flows: flows.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// A table, one flow a line.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{:<3} {:<21} {:<21} {:<10} {:<12} {:>10} {:>10} {:>9}\n",
            "W", "CLIENT", "SERVER", "PHASE", "STATE", "DELTA1", "DELTA2", "IDLE"
        );
        for f in &self.flows {
            s += &format!(
                "{:<3} {:<21} {:<21} {:<10} {:<12} {:>10} {:>10} {:>8.1}s\n",
                f.worker,
                f.client,
                f.server,
                f.phase,
                f.state,
                f.delta1,
                f.delta2,
                f.idle_ms as f64 / 1000.0
            );
        }
        s += &format!(
            "{} of {} matching flows shown ({} in the flow tables){}\n",
            self.flows.len(),
            self.matched,
            self.total,
            if self.complete {
                ""
            } else {
                "; a worker did not answer in time"
            }
        );
        s
    }
}

/// One rule on one line: `name: zone protocol source -> destination ports action`.
pub fn rule_summary(r: &common::config::Rule) -> String {
    let ports: Vec<String> = r.ports.iter().map(|p| p.to_string()).collect();
    let action = match r.action {
        common::config::Action::Proxy { auth, splice } => {
            format!("proxy auth {auth} splice {splice}")
        }
        a => format!("{a:?}").to_lowercase(),
    };
    format!(
        "{}: zone {} {} {} -> {} ports {} {action}",
        r.name.as_deref().unwrap_or("-"),
        r.zone,
        r.protocol,
        r.source,
        r.destination,
        if ports.is_empty() {
            "any".to_string()
        } else {
            ports.join(",")
        }
    )
}

/// A flow listing being gathered from the workers.
struct Gathering {
    request: u64,
    query: FlowQuery,
    started: Instant,
    waiting: Vec<bool>,
    listing: FlowListing,
}

/// The counters of control's I/O that the statistics show.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoCounters {
    pub tx_failed: u64,
    pub commands_dropped: u64,
}

/// What [`Ops`] is set up with.
#[derive(Debug, Clone, Default)]
pub struct OpsConfig {
    /// Print a report this often.
    pub stats_period: Option<Duration>,
    /// Rewrite this JSON file every [`REFRESH`].
    pub stats_json: Option<PathBuf>,
    /// The configuration file SIGHUP reloads.
    pub config_file: Option<PathBuf>,
    /// Each port's name and DPDK port id, in the configuration's order.
    pub ports: Vec<(String, u16)>,
    /// Each worker's lcore.
    pub lcores: Vec<u32>,
}

/// Live statistics, telemetry snapshots, flow listings and reloads (see the module docs).
pub struct Ops {
    cfg: OpsConfig,
    pub hub: Arc<Hub>,
    slots: Vec<Arc<StatsSlot>>,
    last: Vec<WorkerSnapshot>,
    start: Instant,
    next_refresh: Instant,
    prev_refresh: Option<Stats>,
    next_print: Option<Instant>,
    prev_print: Option<Stats>,
    gathering: Option<Gathering>,
    requests: u64,
    /// Set by the SIGHUP handler.
    pub reload_requested: Arc<AtomicBool>,
    /// Workers that still have to be sent the newest context.
    reload_pending: Vec<bool>,
    /// The context of the last reload, until every worker has been sent it.
    newest: Option<Arc<Context>>,
    retired: Vec<Arc<Context>>,
    last_reload: String,
    /// Commands this module could not queue (full command rings).
    commands_dropped: u64,
}

impl Ops {
    /// `slots` are the workers' published slots, in worker order.
    pub fn new(cfg: OpsConfig, slots: Vec<Arc<StatsSlot>>) -> Ops {
        let now = Instant::now();
        let n = slots.len();
        Ops {
            next_print: cfg.stats_period.map(|p| now + p),
            cfg,
            hub: Arc::new(Hub::default()),
            last: vec![WorkerSnapshot::default(); n],
            slots,
            start: now,
            next_refresh: now,
            prev_refresh: None,
            prev_print: None,
            gathering: None,
            requests: 0,
            reload_requested: Arc::new(AtomicBool::new(false)),
            reload_pending: vec![false; n],
            newest: None,
            retired: Vec::new(),
            last_reload: "none".into(),
            commands_dropped: 0,
        }
    }

    /// The workers' snapshots now (the last good one where a slot could not be read).
    fn read_workers(&mut self) -> Vec<(u16, u32, WorkerSnapshot)> {
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(snap) = s.read() {
                self.last[i] = snap;
            }
        }
        self.last
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u16, self.cfg.lcores.get(i).copied().unwrap_or(0), *s))
            .collect()
    }

    /// A snapshot of everything now.
    pub fn stats<P: Packet>(
        &mut self,
        plane: &ControlPlane<P>,
        rings: &Rings<P>,
        io: IoCounters,
        ports: Vec<(String, PortCounters)>,
    ) -> Stats {
        let workers = self.read_workers();
        let mut connections = plane.proxy.connections;
        connections.in_proxy = plane.proxy.active() as u64;
        connections.draining = plane.proxy.phases().get("draining").copied().unwrap_or(0);
        let mut proxy = plane.proxy.counters;
        proxy.active = connections.in_proxy;
        let cap = |q: &crossbeam::queue::ArrayQueue<_>| q.capacity() as u64;
        let live = LiveInputs {
            ports,
            connections,
            control: plane.local.counters,
            proxy,
            rings: RingStats {
                to_control: rings.to_control.len() as u64,
                to_control_capacity: cap(&rings.to_control),
                commands: rings.commands.iter().map(|r| r.len() as u64).sum(),
                commands_capacity: rings.commands.iter().map(|r| r.capacity() as u64).sum(),
                from_control: rings.from_control.iter().map(|r| r.len() as u64).sum(),
                from_control_capacity: rings.from_control.iter().map(|r| r.capacity() as u64).sum(),
                to_control_full: 0,
                command_ring_full: io.commands_dropped + self.commands_dropped,
                control_tx_failed: io.tx_failed,
            },
            capture: plane.dropcap.as_ref().map(|c| (c.is_writing(), c.counters)),
            policy_generation: plane.proxy.settings().generation(),
            uptime_ms: self.start.elapsed().as_millis() as u64,
        };
        Stats::collect(&workers, live)
    }

    /// One turn of the control loop's operations; cheap when nothing is due.
    pub fn turn<P: Packet>(
        &mut self,
        plane: &mut ControlPlane<P>,
        rings: &Rings<P>,
        io: IoCounters,
        ports: &dyn Fn() -> Vec<(String, PortCounters)>,
    ) {
        if self.reload_requested.swap(false, Ordering::AcqRel) {
            let _ = self.reload(plane); // logged there
        }
        self.send_reloads(rings);
        self.gather_flows(plane, rings);
        if let Some(op) = self.hub.take_auth_op() {
            let now = plane.clock();
            let reply = match op {
                AuthOp::List => logins_reply(&plane.proxy.logins(now)),
                AuthOp::Clear(which) => {
                    serde_json::json!({ "ended": plane.proxy.clear_logins(&which, now) })
                }
            };
            self.hub.publish_auth(reply);
        }
        let now = Instant::now();
        let print_due = self.next_print.is_some_and(|t| now >= t);
        if now < self.next_refresh && !print_due {
            return;
        }
        let stats = self.stats(plane, rings, io, ports());
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH;
            let report = Report::new(&stats, self.prev_refresh.as_ref(), &self.cfg.ports);
            self.hub.publish_stats(&stats, report);
            if let Some(path) = &self.cfg.stats_json {
                if let Err(e) = stats.write_json_with(path, false) {
                    log::warn!("cannot write {}: {e}", path.display());
                }
            }
            self.prev_refresh = Some(stats.clone());
        }
        if let (true, Some(period)) = (print_due, self.cfg.stats_period) {
            self.next_print = Some(now + period);
            let report = Report::new(&stats, self.prev_print.as_ref(), &self.cfg.ports);
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(report.to_text().as_bytes());
            let _ = out.flush();
            self.prev_print = Some(stats);
        }
    }

    /// Publishes the configuration snapshot (at start and after each reload).
    pub fn publish_config(&self, settings: &Settings) {
        self.hub
            .publish_config(self.cfg.config_file.as_ref(), settings, &self.last_reload);
    }

    /// Reads the configuration file again and, if it is valid, makes it the running policy
    /// (see the module documentation). Returns the new generation, or the error text.
    pub fn reload<P: Packet>(&mut self, plane: &mut ControlPlane<P>) -> Result<u64, String> {
        let Some(path) = self.cfg.config_file.clone() else {
            return Err("no configuration file to reload".into());
        };
        log::info!("SIGHUP: reloading {}", path.display());
        let result = common::config::load(&path)
            .map_err(|e| e.to_string())
            .map(|cfg| self.apply(plane, cfg));
        match &result {
            Ok(generation) => {
                self.last_reload = format!("ok: generation {generation}");
            }
            Err(e) => {
                log::error!("reload refused, the running configuration stays: {e}");
                self.last_reload = format!("refused: {e}");
            }
        }
        self.publish_config(plane.proxy.settings());
        result
    }

    /// Makes `cfg` the running policy; returns its generation.
    pub fn apply<P: Packet>(&mut self, plane: &mut ControlPlane<P>, cfg: Config) -> u64 {
        let old = Arc::clone(&plane.proxy.settings().workers);
        let (settings, kept) = plane.proxy.settings().reloaded(cfg);
        if !kept.is_empty() {
            log::warn!(
                "reload: changes to {} take effect only after a restart",
                kept.join(", ")
            );
        }
        log::info!(
            "reload: policy generation {} in force for new connections ({} rules, {} users)",
            settings.generation(),
            settings.config.policy.len(),
            settings.config.users.len()
        );
        let ctx = Arc::clone(&settings.workers);
        plane.proxy.set_settings(Arc::new(settings));
        self.retired.push(old);
        self.newest = Some(Arc::clone(&ctx));
        self.reload_pending.iter_mut().for_each(|p| *p = true);
        ctx.generation
    }

    /// Sends the newest context to the workers that do not have it yet; lets go of old
    /// contexts no worker holds any more.
    fn send_reloads<P>(&mut self, rings: &Rings<P>) {
        if self.reload_pending.iter().any(|p| *p) {
            let newest = self.newest.clone();
            for (i, pending) in self.reload_pending.iter_mut().enumerate() {
                if !*pending {
                    continue;
                }
                let Some(ctx) = newest.clone() else {
                    *pending = false;
                    continue;
                };
                match rings.commands[i].push(Command::Reload(NewContext(ctx))) {
                    Ok(()) => *pending = false,
                    Err(_) => self.commands_dropped += 1,
                }
            }
            if self.reload_pending.iter().all(|p| !*p) {
                self.newest = None;
            }
        }
        if !self.retired.is_empty() {
            self.retired.retain(|c| Arc::strong_count(c) > 1);
        }
    }

    /// Starts, advances or finishes a flow listing.
    fn gather_flows<P: Packet>(&mut self, plane: &ControlPlane<P>, rings: &Rings<P>) {
        if self.gathering.is_none() {
            let Some(query) = self.hub.take_flow_query() else {
                return;
            };
            self.requests += 1;
            let mut waiting = vec![false; rings.commands.len()];
            for (i, ring) in rings.commands.iter().enumerate() {
                let d = FlowDump::new(self.requests, query.filter, query.limit);
                match ring.push(Command::DumpFlows(d)) {
                    Ok(()) => waiting[i] = true,
                    Err(_) => self.commands_dropped += 1,
                }
            }
            self.gathering = Some(Gathering {
                request: self.requests,
                query,
                started: Instant::now(),
                listing: FlowListing {
                    complete: waiting.iter().all(|w| *w),
                    ..Default::default()
                },
                waiting,
            });
        }
        let Some(g) = self.gathering.as_mut() else {
            return;
        };
        while let Some(Reply::Flows(d)) = rings.replies.pop() {
            if d.request != g.request {
                continue; // the answer to a listing that timed out
            }
            if let Some(w) = g.waiting.get_mut(usize::from(d.worker)) {
                *w = false;
            }
            g.listing.total += d.total;
            g.listing.matched += d.matched;
            // The timeouts never change while the box runs, so these are the worker's.
            let timeouts = &plane.proxy.settings().workers.tcp_timeouts_ms;
            for c in &d.flows {
                let mut phase = phase_of(c);
                if phase == "proxied" {
                    phase = plane.proxy.phase_of(&c.key()).unwrap_or(phase);
                }
                g.listing.flows.push(FlowRow {
                    worker: u64::from(d.worker),
                    client: format!("{}:{}", c.client, c.client_port),
                    server: format!("{}:{}", c.server, c.server_port),
                    phase: phase.to_string(),
                    state: c.state().name().to_string(),
                    delta1: u64::from(c.delta1),
                    delta2: u64::from(c.delta2),
                    idle_ms: c.idle_ms(d.now_ms, timeouts),
                });
            }
            for (kind, f) in &d.datagrams {
                g.listing.flows.push(FlowRow {
                    worker: u64::from(d.worker),
                    client: format!("{}:{}", f.key.src, f.key.sport),
                    server: format!("{}:{}", f.key.dst, f.key.dport),
                    phase: kind.name().to_string(),
                    state: f.state.name().to_string(),
                    delta1: 0,
                    delta2: 0,
                    idle_ms: u64::from(d.now_ms.wrapping_sub(f.last_seen)),
                });
            }
        }
        let done = g.waiting.iter().all(|w| !*w);
        if done || g.started.elapsed() >= FLOW_TIMEOUT {
            let mut listing = std::mem::take(&mut g.listing);
            listing.complete &= done;
            listing
                .flows
                .sort_by(|a, b| (&a.client, &a.server).cmp(&(&b.client, &b.server)));
            listing.flows.truncate(g.query.limit);
            self.gathering = None;
            self.hub.publish_flows(listing);
        }
    }
}

#[cfg(test)]
mod tests;
