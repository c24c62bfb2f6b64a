//! The box's counters as one snapshot: printed at exit and written as JSON (`--stats-json`,
//! keys fixed by DESIGN.md §9: `ports`, `workers`, `connections`, `drops`, plus `control`,
//! the live views `flows` and `rings`, and the drop capture's `capture`). While the box runs
//! the same snapshot is built from the workers' published slots (`dataplane::live`) every
//! statistics period.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use dataplane::live::{FlowCensus, WorkerSnapshot};
use dataplane::verdict::{DropCounters, DropReason};
use dataplane::worker::WorkerCounters;

use crate::dropcap::CaptureCounters;
use crate::local::LocalCounters;

/// One port's counters as the NIC reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

/// One worker in the statistics: its counters as the worker keeps them (flattened: each is a
/// top-level key of the worker's object, `drops` an object of reason and count), so a counter
/// added to [`WorkerCounters`] appears here with no change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    pub id: u16,
    pub lcore: u32,
    /// Flows in the worker's table now (a gauge).
    pub flows_active: u64,
    #[serde(flatten)]
    pub counters: WorkerCounters,
}

/// Proxied connections by outcome (filled by the participating stack).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub proxied: u64,
    pub spliced: u64,
    pub full_proxy: u64,
    /// Kept as full proxies because their options could not be reconciled (the total of
    /// `fallback_causes`).
    pub fallback: u64,
    /// Those by cause.
    pub fallback_causes: crate::proxy::splice::FallbackCounters,
    pub drain_timeout: u64,
    pub auth_failed: u64,
    /// Login attempts verified (argon2), on the verifier threads or inline.
    pub auth_verified: u64,
    /// Attempts with the verifier threads now (a gauge).
    pub auth_pending: u64,
    /// Attempts refused unverified because the verifiers had too many pending.
    pub auth_queue_full: u64,
    /// Verdicts that came back after their connection had gone.
    pub auth_discarded: u64,
    /// Login attempts refused because no directory server answered.
    pub auth_unavailable: u64,
    /// HTTP requests sent to the virtual HTTP origin to log in, and logins made there.
    pub auth_redirected: u64,
    pub portal_logins: u64,
    /// The RADIUS client's counters, when `auth.radius` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius: Option<crate::auth::radius::RadiusStats>,
    /// Now in the participating stack (a gauge; the others count events).
    pub in_proxy: u64,
    /// Of those, draining on their way to the splice (a gauge).
    pub draining: u64,
}

/// The flows in the workers' tables. `active` is exact; the rest are counted by each
/// worker's housekeeping sweep and lag by at most one sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Flows {
    /// TCP connections in the tables.
    pub active: u64,
    /// UDP flows and ICMP echo exchanges in the tables.
    pub udp: u64,
    pub icmp: u64,
    pub pass: u64,
    pub proxied: u64,
    pub spliced: u64,
    pub by_state: BTreeMap<&'static str, u64>,
}

impl Flows {
    pub fn new(active: u64, c: &FlowCensus) -> Flows {
        Flows {
            active,
            udp: 0,
            icmp: 0,
            pass: c.pass,
            proxied: c.proxied,
            spliced: c.spliced,
            by_state: common::conn::TcpState::ALL[1..]
                .iter()
                .map(|s| (s.name(), c.by_state[*s as usize]))
                .collect(),
        }
    }
}

/// The rings between the workers and control: what is queued now, and what was lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RingStats {
    /// Packets queued toward control, and the ring's size.
    pub to_control: u64,
    pub to_control_capacity: u64,
    /// Commands queued toward the workers (all rings), and their total size.
    pub commands: u64,
    pub commands_capacity: u64,
    /// Packets control handed the workers to send or process, queued, and the total size.
    pub from_control: u64,
    pub from_control_capacity: u64,
    /// Packets the workers dropped because the ring to control was full.
    pub to_control_full: u64,
    /// Commands control could not queue (a full command ring).
    pub command_ring_full: u64,
    /// Packets control could not send (no mbuf, or a full ring toward a worker).
    pub control_tx_failed: u64,
}

/// The drop capture (`capture.drops`): what the workers handed over and what was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Configured, and writing (an I/O error stops it).
    pub enabled: bool,
    /// Dropped packets the workers handed to control, within the rate.
    pub handed_over: u64,
    /// Dropped packets within the rate that the ring to control had no room for.
    pub ring_full: u64,
    #[serde(flatten)]
    pub writer: CaptureCounters,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// By port name.
    pub ports: BTreeMap<String, PortCounters>,
    pub workers: Vec<WorkerStats>,
    pub connections: Connections,
    pub drops: BTreeMap<&'static str, u64>,
    pub control: LocalCounters,
    /// The participating stack's own counters (stragglers handed back, unknown packets, ...).
    pub proxy: crate::proxy::ProxyCounters,
    pub flows: Flows,
    pub rings: RingStats,
    pub capture: CaptureStats,
    /// The policy in force: 0 as started, +1 per reload.
    pub policy_generation: u64,
    pub uptime_ms: u64,
}

fn drops_map(d: &DropCounters) -> BTreeMap<&'static str, u64> {
    d.iter().collect()
}

impl WorkerStats {
    pub fn new(id: u16, lcore: u32, c: &WorkerCounters, flows_active: usize) -> WorkerStats {
        WorkerStats {
            id,
            lcore,
            flows_active: flows_active as u64,
            counters: *c,
        }
    }
}

/// What a live snapshot is made of, besides the workers' published slots.
#[derive(Debug, Clone, Default)]
pub struct LiveInputs {
    /// Each port's name and counters.
    pub ports: Vec<(String, PortCounters)>,
    pub connections: Connections,
    pub control: LocalCounters,
    pub proxy: crate::proxy::ProxyCounters,
    pub rings: RingStats,
    /// The drop capture's writer: whether it is writing, and its counters.
    pub capture: Option<(bool, CaptureCounters)>,
    pub policy_generation: u64,
    pub uptime_ms: u64,
}

impl Stats {
    /// A snapshot from the workers' published snapshots (`(id, lcore, snapshot)`) and
    /// control's own counters: what `--stats-period`, the periodic `--stats-json` and the
    /// telemetry show, and what the box prints when it stops.
    pub fn collect(workers: &[(u16, u32, WorkerSnapshot)], live: LiveInputs) -> Stats {
        let mut all_drops = DropCounters::default();
        let mut census = FlowCensus::default();
        let (mut active, mut udp, mut icmp) = (0, 0, 0);
        let mut capture = CaptureStats::default();
        let mut wstats = Vec::with_capacity(workers.len());
        for (id, lcore, w) in workers {
            all_drops.add(&w.counters.drops);
            capture.handed_over += w.counters.drops_captured;
            capture.ring_full += w.counters.capture_ring_full;
            census.add(&w.census);
            active += w.flows_active;
            udp += w.udp_flows_active;
            icmp += w.icmp_flows_active;
            wstats.push(WorkerStats::new(
                *id,
                *lcore,
                &w.counters,
                w.flows_active as usize,
            ));
        }
        let mut stats = Stats::new(
            live.ports,
            wstats,
            &all_drops,
            live.connections,
            live.control,
        );
        stats.proxy = live.proxy;
        stats.flows = Flows {
            udp,
            icmp,
            ..Flows::new(active, &census)
        };
        stats.rings = RingStats {
            to_control_full: all_drops.get(DropReason::ControlRingFull),
            ..live.rings
        };
        stats
            .drops
            .insert("control_tx_failed", live.rings.control_tx_failed);
        stats
            .drops
            .insert("command_ring_full", live.rings.command_ring_full);
        if let Some((writing, counters)) = live.capture {
            capture.enabled = writing;
            capture.writer = counters;
        }
        stats.capture = capture;
        stats.policy_generation = live.policy_generation;
        stats.uptime_ms = live.uptime_ms;
        stats
    }

    /// Sums the workers' drops (and the control plane's) into the top-level `drops`.
    pub fn new(
        ports: Vec<(String, PortCounters)>,
        workers: Vec<WorkerStats>,
        worker_drops: &DropCounters,
        connections: Connections,
        control: LocalCounters,
    ) -> Stats {
        let mut drops = drops_map(worker_drops);
        drops.insert("resolve_failed", control.resolve_failed_drops);
        drops.insert("pending_full", control.pending_full_drops);
        Stats {
            ports: ports.into_iter().collect(),
            workers,
            connections,
            drops,
            control,
            proxy: Default::default(),
            flows: Flows::default(),
            rings: RingStats::default(),
            capture: CaptureStats::default(),
            policy_generation: 0,
            uptime_ms: 0,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Writes the JSON atomically (a temporary file renamed over the target) and durably.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        self.write_json_with(path, true)
    }

    /// Writes the JSON atomically; `sync` also flushes it to disk before the rename (the
    /// periodic writes while the box runs skip that: a reader never sees a partial file
    /// either way, and the control lcore does not wait for the disk every period).
    pub fn write_json_with(&self, path: &Path, sync: bool) -> std::io::Result<()> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.to_json().as_bytes())?;
        f.write_all(b"\n")?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// A human-readable summary (non-zero drops only).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (name, p) in &self.ports {
            s += &format!(
                "port {name}: rx {} pkts {} bytes, tx {} pkts {} bytes, missed {}, rx errors {}, tx errors {}, no mbuf {}\n",
                p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_missed, p.rx_errors, p.tx_errors, p.rx_nombuf
            );
        }
        for w in &self.workers {
            s += &format!(
                "worker {} (lcore {}): rx {} tx {} forwarded {} to control {}; flows created {} closed {} expired {} installed {} active {}\n",
                w.id, w.lcore, w.counters.rx, w.counters.tx, w.counters.forwarded, w.counters.to_control, w.counters.flows_created, w.counters.flows_closed, w.counters.flows_expired, w.counters.flows_installed, w.flows_active
            );
        }
        let c = &self.connections;
        s += &format!(
            "connections: proxied {} spliced {} full proxy {} fallback {} ({}) drain timeout {} auth failed {}\n",
            c.proxied, c.spliced, c.full_proxy, c.fallback,
            nonzero_list(c.fallback_causes.iter()),
            c.drain_timeout, c.auth_failed
        );
        s += &format!(
            "auth: verified {} pending {} queue full {} discarded {}\n",
            c.auth_verified, c.auth_pending, c.auth_queue_full, c.auth_discarded
        );
        s += &format!(
            "drops: {}\n",
            nonzero_list(self.drops.iter().map(|(k, n)| (k, *n)))
        );
        s
    }
}

/// The non-zero counters of `items` as `name count, name count`, or `none`: one way for
/// every list of causes, states or drop reasons the summaries print.
pub(crate) fn nonzero_list<K: std::fmt::Display>(
    items: impl IntoIterator<Item = (K, u64)>,
) -> String {
    let v: Vec<String> = items
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters with distinct non-zero values (the drops too).
    fn distinct_counters() -> WorkerCounters {
        let mut c = WorkerCounters::default();
        for (i, v) in c.values_mut().into_iter().enumerate() {
            *v = 101 + i as u64;
        }
        for (i, d) in c.drops.0.iter_mut().enumerate() {
            *d = 1000 + i as u64;
        }
        c
    }

    #[test]
    fn worker_counters_are_top_level_keys_of_the_worker_object() {
        let c = distinct_counters();
        let w = WorkerStats::new(3, 7, &c, 42);
        let json = serde_json::to_string_pretty(&w).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = v.as_object().expect("a worker is a JSON object");

        // The keys in the order they are written (the format of `--stats-json`): the
        // worker's own, then every counter by its field name, in declaration order.
        let expected: Vec<(&str, u64)> = [("id", 3), ("lcore", 7), ("flows_active", 42)]
            .into_iter()
            .chain(WorkerCounters::NAMES.into_iter().zip(c.values()))
            .collect();
        assert_eq!(expected[3], ("rx", 101));
        for &(key, value) in &expected {
            assert_eq!(obj.get(key).and_then(|x| x.as_u64()), Some(value), "{key}");
        }
        let mut at = 0;
        for key in expected.iter().map(|(k, _)| *k).chain(["drops"]) {
            let pos = json[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order in {json}"));
            at += pos + 1;
        }
        assert_eq!(obj.len(), expected.len() + 1, "unexpected keys in {json}");
        assert!(obj.get("counters").is_none());

        // `drops`: every reason by name, zero or not, sorted by name.
        let drops = obj["drops"].as_object().expect("drops is an object");
        assert_eq!(drops.len(), DropReason::COUNT);
        for (name, n) in c.drops.iter() {
            assert_eq!(drops.get(name).and_then(|x| x.as_u64()), Some(n), "{name}");
        }
        let mut sorted: Vec<&str> = c.drops.iter().map(|(k, _)| k).collect();
        sorted.sort_unstable();
        let mut at = 0;
        for name in sorted {
            at += json[at..].find(&format!("\"{name}\":")).expect(name) + 1;
        }

        // Any counter (a future one too) is a top-level key with its value.
        let counters = serde_json::to_value(c).unwrap();
        for (key, value) in counters.as_object().unwrap() {
            assert_eq!(obj.get(key), Some(value), "{key}");
        }
    }
}
