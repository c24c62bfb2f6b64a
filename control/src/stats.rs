//! The box's counters as one snapshot: printed at exit and written as JSON (`--stats-json`,
//! keys fixed by DESIGN.md §9: `ports`, `workers`, `connections`, `drops`, plus `control`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use dataplane::verdict::DropCounters;
use dataplane::worker::WorkerCounters;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    pub id: u16,
    pub lcore: u32,
    pub rx: u64,
    pub tx: u64,
    pub forwarded: u64,
    pub to_control: u64,
    pub from_control: u64,
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_closed: u64,
    pub flows_installed: u64,
    pub flows_active: u64,
    pub options_malformed: u64,
    pub ignored: u64,
    pub icmp_quotes_rewritten: u64,
    pub drops: BTreeMap<&'static str, u64>,
}

/// Proxied connections by outcome (filled by the participating stack).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub proxied: u64,
    pub spliced: u64,
    pub full_proxy: u64,
    pub fallback: u64,
    pub drain_timeout: u64,
    pub auth_failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub ports: BTreeMap<&'static str, PortCounters>,
    pub workers: Vec<WorkerStats>,
    pub connections: Connections,
    pub drops: BTreeMap<&'static str, u64>,
    pub control: LocalCounters,
    /// The participating stack's own counters (stragglers handed back, unknown packets, ...).
    pub proxy: crate::proxy::ProxyCounters,
}

fn drops_map(d: &DropCounters) -> BTreeMap<&'static str, u64> {
    d.iter().collect()
}

impl WorkerStats {
    pub fn new(id: u16, lcore: u32, c: &WorkerCounters, flows_active: usize) -> WorkerStats {
        WorkerStats {
            id,
            lcore,
            rx: c.rx,
            tx: c.tx,
            forwarded: c.forwarded,
            to_control: c.to_control,
            from_control: c.from_control,
            flows_created: c.flows_created,
            flows_expired: c.flows_expired,
            flows_closed: c.flows_closed,
            flows_installed: c.flows_installed,
            flows_active: flows_active as u64,
            options_malformed: c.options_malformed,
            ignored: c.ignored,
            icmp_quotes_rewritten: c.icmp_quotes_rewritten,
            drops: drops_map(&c.drops),
        }
    }
}

impl Stats {
    /// Sums the workers' drops (and the control plane's) into the top-level `drops`.
    pub fn new(
        ports: [PortCounters; 2],
        workers: Vec<WorkerStats>,
        worker_drops: &DropCounters,
        connections: Connections,
        control: LocalCounters,
    ) -> Stats {
        let mut drops = drops_map(worker_drops);
        drops.insert("resolve_failed", control.resolve_failed_drops);
        drops.insert("pending_full", control.pending_full_drops);
        Stats {
            ports: [("inside", ports[0]), ("outside", ports[1])]
                .into_iter()
                .collect(),
            workers,
            connections,
            drops,
            control,
            proxy: Default::default(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Writes the JSON atomically (a temporary file renamed over the target).
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.to_json().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
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
                w.id, w.lcore, w.rx, w.tx, w.forwarded, w.to_control, w.flows_created, w.flows_closed, w.flows_expired, w.flows_installed, w.flows_active
            );
        }
        let c = &self.connections;
        s += &format!(
            "connections: proxied {} spliced {} full proxy {} fallback {} drain timeout {} auth failed {}\n",
            c.proxied, c.spliced, c.full_proxy, c.fallback, c.drain_timeout, c.auth_failed
        );
        let drops: Vec<String> = self
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        s += &format!(
            "drops: {}\n",
            if drops.is_empty() {
                "none".to_string()
            } else {
                drops.join(", ")
            }
        );
        s
    }
}
