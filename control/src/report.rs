//! The operator's view of the box: what `--stats-period` prints, what the `/cutthrough/stats`
//! telemetry command returns and what `cutthrough stats` prints.
//!
//! One [`Report`] is made from two [`Stats`] snapshots (for the throughput "since last show",
//! as testpmd computes it). Its JSON has one level of nesting and only integers and strings,
//! the shape DPDK 22.11's telemetry can carry, so the same value goes out over the telemetry
//! socket and comes back into a `Report` in the client, which prints it with the same
//! [`Report::to_text`]: the port blocks copy `dpdk-testpmd --stats-period`'s layout, then the
//! box's own block follows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{nonzero_list, PortCounters, Stats};

/// One port, as testpmd's `show port stats` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortReport {
    pub port_id: u64,
    pub rx_packets: u64,
    pub rx_missed: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_nombuf: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_bytes: u64,
    /// Throughput since the previous report.
    pub rx_pps: u64,
    pub rx_bps: u64,
    pub tx_pps: u64,
    pub tx_bps: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub uptime_ms: u64,
    /// What the rates are computed over (milliseconds since the previous report).
    pub interval_ms: u64,
    pub policy_generation: u64,
    pub workers: u64,
    /// Each port by its name (top-level keys, so the telemetry's one level of nesting holds
    /// them; `check-config` keeps port names off the other keys).
    #[serde(flatten)]
    pub ports: BTreeMap<String, PortReport>,
    /// `active`, `pass`, `proxied`, `spliced`, and one entry per TCP state.
    pub flows: BTreeMap<String, u64>,
    /// Totals (`proxied`, `spliced`, `full_proxy`, `fallback`, `drain_timeout`,
    /// `auth_failed`, ...), gauges (`in_proxy`, `draining`), `splices_last_interval`, and the
    /// RADIUS client's counters as `radius_*` when it is configured (flat: DPDK's telemetry
    /// drops a container nested two deep).
    pub connections: BTreeMap<String, u64>,
    /// Connections kept as full proxies, by cause (every cause, zero or not).
    #[serde(default)]
    pub fallback_causes: BTreeMap<String, u64>,
    /// Drops by reason, non-zero ones only.
    pub drops: BTreeMap<String, u64>,
    /// Ring occupancy and ring drops (`crate::stats::RingStats`).
    pub rings: BTreeMap<String, u64>,
    /// The drop capture (`crate::stats::CaptureStats`, `enabled` as 0 or 1).
    #[serde(default)]
    pub capture: BTreeMap<String, u64>,
}

/// `n` events over `ms` milliseconds, per second (0 over no time).
fn per_sec(n: u64, ms: u64) -> u64 {
    if ms == 0 {
        0
    } else {
        (u128::from(n) * 1000 / u128::from(ms)) as u64
    }
}

fn port_report(id: u16, now: &PortCounters, prev: Option<&PortCounters>, ms: u64) -> PortReport {
    let d = |f: fn(&PortCounters) -> u64| prev.map_or(0, |p| f(now).saturating_sub(f(p)));
    PortReport {
        port_id: u64::from(id),
        rx_packets: now.rx_packets,
        rx_missed: now.rx_missed,
        rx_bytes: now.rx_bytes,
        rx_errors: now.rx_errors,
        rx_nombuf: now.rx_nombuf,
        tx_packets: now.tx_packets,
        tx_errors: now.tx_errors,
        tx_bytes: now.tx_bytes,
        rx_pps: per_sec(d(|p| p.rx_packets), ms),
        rx_bps: per_sec(d(|p| p.rx_bytes), ms) * 8,
        tx_pps: per_sec(d(|p| p.tx_packets), ms),
        tx_bps: per_sec(d(|p| p.tx_bytes), ms) * 8,
    }
}

/// To a JSON object of integers (a struct of `u64` fields).
fn int_map<T: Serialize>(v: &T) -> BTreeMap<String, u64> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_u64().map(|n| (k, n)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

impl Report {
    /// The report of `now`, with rates since `prev` (none: rates are zero). `ports` are the
    /// ports' names with their DPDK port ids.
    pub fn new(now: &Stats, prev: Option<&Stats>, ports: &[(String, u16)]) -> Report {
        let ms = prev.map_or(0, |p| now.uptime_ms.saturating_sub(p.uptime_ms));
        let port = |name: &str, id: u16| {
            let cur = now.ports.get(name).copied().unwrap_or_default();
            let before = prev.and_then(|p| p.ports.get(name));
            (name.to_string(), port_report(id, &cur, before, ms))
        };
        let f = &now.flows;
        let mut flows: BTreeMap<String, u64> = [
            ("active", f.active),
            ("pass", f.pass),
            ("proxied", f.proxied),
            ("spliced", f.spliced),
            ("udp", f.udp),
            ("icmp", f.icmp),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        flows.extend(f.by_state.iter().map(|(k, v)| (k.to_string(), *v)));
        let mut connections = int_map(&now.connections);
        let splices = prev.map_or(0, |p| {
            now.connections
                .spliced
                .saturating_sub(p.connections.spliced)
        });
        connections.insert("splices_last_interval".into(), splices);
        if let Some(r) = &now.connections.radius {
            connections.extend(
                int_map(r)
                    .into_iter()
                    .map(|(k, v)| (format!("radius_{k}"), v)),
            );
        }
        Report {
            uptime_ms: now.uptime_ms,
            interval_ms: ms,
            policy_generation: now.policy_generation,
            workers: now.workers.len() as u64,
            ports: ports.iter().map(|(name, id)| port(name, *id)).collect(),
            flows,
            connections,
            fallback_causes: now
                .connections
                .fallback_causes
                .iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            drops: now
                .drops
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            rings: int_map(&now.rings),
            capture: {
                let mut m = int_map(&now.capture);
                m.insert("enabled".into(), u64::from(now.capture.enabled));
                m
            },
        }
    }

    /// Splices per second over the last interval.
    pub fn splices_per_sec(&self) -> f64 {
        let n = self.connections.get("splices_last_interval").copied();
        match (n, self.interval_ms) {
            (Some(n), ms) if ms > 0 => n as f64 * 1000.0 / ms as f64,
            _ => 0.0,
        }
    }

    /// testpmd's port blocks, then the box's own block.
    pub fn to_text(&self) -> String {
        let mut s = String::from("\nPort statistics ====================================");
        let mut ports: Vec<&PortReport> = self.ports.values().collect();
        ports.sort_by_key(|p| p.port_id);
        for p in ports {
            s += &nic_block(p);
        }
        s += &self.box_block();
        s
    }

    fn box_block(&self) -> String {
        let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let f = &self.flows;
        let c = &self.connections;
        let r = &self.rings;
        let states = common::conn::TcpState::ALL[1..]
            .iter()
            .map(|st| (st.name(), g(f, st.name())));
        let list = |m: &BTreeMap<String, u64>| nonzero_list(m.iter().map(|(k, n)| (k, *n)));
        let mut s = format!("\n  {BORDER}{:^28}{BORDER}\n", "cutthrough statistics");
        s += &format!(
            "  Flows: {:<10} pass: {:<10} proxied: {:<10} spliced: {}\n",
            g(f, "active"),
            g(f, "pass"),
            g(f, "proxied"),
            g(f, "spliced")
        );
        s += &format!("  By state: {}\n", nonzero_list(states));
        s += &format!(
            "  UDP flows: {:<6} ICMP echo: {}\n",
            g(f, "udp"),
            g(f, "icmp")
        );
        s += &format!(
            "  Proxied now: {:<6} draining: {:<6} spliced: {:<10} splices/s: {:.2}\n",
            g(c, "in_proxy"),
            g(c, "draining"),
            g(c, "spliced"),
            self.splices_per_sec()
        );
        s += &format!(
            "  Connections: proxied {}, full proxy {}, fallback {} ({}), drain timeout {}, auth failed {}\n",
            g(c, "proxied"),
            g(c, "full_proxy"),
            g(c, "fallback"),
            list(&self.fallback_causes),
            g(c, "drain_timeout"),
            g(c, "auth_failed")
        );
        s += &format!("  Drops: {}\n", list(&self.drops));
        s += &format!(
            "  Rings: to control {}/{}, commands {}/{}, from control {}/{}\n",
            g(r, "to_control"),
            g(r, "to_control_capacity"),
            g(r, "commands"),
            g(r, "commands_capacity"),
            g(r, "from_control"),
            g(r, "from_control_capacity"),
        );
        s += &format!(
            "  Ring drops: to control full {}, command ring full {}, control TX failed {}\n",
            g(r, "to_control_full"),
            g(r, "command_ring_full"),
            g(r, "control_tx_failed"),
        );
        let cap = &self.capture;
        if g(cap, "enabled") == 1 || g(cap, "errors") > 0 {
            s += &format!(
                "  Drop capture: {} written of {} handed over, ring full {}, files rotated {}, errors {}\n",
                g(cap, "captured"),
                g(cap, "handed_over"),
                g(cap, "ring_full"),
                g(cap, "files_rotated"),
                g(cap, "errors"),
            );
        }
        s += &format!(
            "  Uptime: {} s, policy generation {}, {} worker(s)\n",
            self.uptime_ms / 1000,
            self.policy_generation,
            self.workers
        );
        s += &format!("  {BORDER}{}{BORDER}\n", "#".repeat(28));
        s
    }
}

const BORDER: &str = "########################";

/// testpmd's `nic_stats_display`, field for field.
fn nic_block(p: &PortReport) -> String {
    let mut s = format!(
        "\n  {BORDER} NIC statistics for port {:<2} {BORDER}\n",
        p.port_id
    );
    s += &format!(
        "  RX-packets: {:<10} RX-missed: {:<10} RX-bytes:  {}\n",
        p.rx_packets, p.rx_missed, p.rx_bytes
    );
    s += &format!("  RX-errors: {}\n", p.rx_errors);
    s += &format!("  RX-nombuf:  {:<10}\n", p.rx_nombuf);
    s += &format!(
        "  TX-packets: {:<10} TX-errors: {:<10} TX-bytes:  {}\n",
        p.tx_packets, p.tx_errors, p.tx_bytes
    );
    s += "\n  Throughput (since last show)\n";
    s += &format!(
        "  Rx-pps: {:>12}          Rx-bps: {:>12}\n  Tx-pps: {:>12}          Tx-bps: {:>12}\n",
        p.rx_pps, p.rx_bps, p.tx_pps, p.tx_bps
    );
    s += &format!("  {BORDER}{}{BORDER}\n", "#".repeat(28));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Flows;

    /// Copied from `dpdk-testpmd --stats-period 2` on two `net_null` ports (DPDK 22.11).
    const TESTPMD: &str = "
  ######################## NIC statistics for port 0  ########################
  RX-packets: 417664     RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 864        TX-errors: 0          TX-bytes:  0

  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  Tx-pps:            0          Tx-bps:            0
  ############################################################################
";

    #[test]
    fn port_block_is_testpmds() {
        let p = PortReport {
            rx_packets: 417664,
            tx_packets: 864,
            ..Default::default()
        };
        assert_eq!(nic_block(&p), TESTPMD);
    }

    /// The testbed's ports, by name, with their DPDK ids.
    fn two_ports() -> Vec<(String, u16)> {
        vec![("inside".into(), 0), ("outside".into(), 1)]
    }

    fn stats(uptime_ms: u64, rx: u64, rx_bytes: u64, spliced: u64) -> Stats {
        let mut s = Stats::new(
            vec![
                (
                    "inside".to_string(),
                    PortCounters {
                        rx_packets: rx,
                        rx_bytes,
                        tx_packets: rx / 2,
                        ..Default::default()
                    },
                ),
                ("outside".to_string(), PortCounters::default()),
            ],
            vec![],
            &Default::default(),
            crate::stats::Connections {
                spliced,
                in_proxy: 2,
                draining: 1,
                ..Default::default()
            },
            Default::default(),
        );
        s.uptime_ms = uptime_ms;
        s.flows = Flows::new(
            3,
            &dataplane::live::FlowCensus {
                pass: 1,
                spliced: 2,
                by_state: [0, 0, 0, 3, 0, 0, 0, 0, 0],
                ..Default::default()
            },
        );
        s.drops.insert("policy_deny", 4);
        s
    }

    #[test]
    fn rates_are_since_the_previous_report() {
        let a = stats(1_000, 100, 10_000, 1);
        let b = stats(3_000, 2_100, 1_010_000, 5);
        let r = Report::new(&b, Some(&a), &two_ports());
        assert_eq!(r.interval_ms, 2_000);
        assert_eq!(r.ports["inside"].rx_pps, 1_000);
        assert_eq!(r.ports["inside"].rx_bps, 4_000_000);
        assert_eq!(r.ports["inside"].tx_pps, 500);
        assert_eq!(r.ports["outside"].port_id, 1);
        assert_eq!(r.connections["splices_last_interval"], 4);
        assert!((r.splices_per_sec() - 2.0).abs() < 1e-9);
        // The first report has no rates.
        let r0 = Report::new(&a, None, &two_ports());
        assert_eq!((r0.ports["inside"].rx_pps, r0.splices_per_sec()), (0, 0.0));
    }

    #[test]
    fn radius_counters_are_flat_under_connections_and_read_back() {
        let mut now = stats(3_000, 2_100, 1_010_000, 5);
        let r = Report::new(&now, None, &two_ports());
        let v = serde_json::to_value(&r).unwrap();
        assert!(
            v["connections"].get("radius").is_none(),
            "none configured: {v}"
        );
        now.connections.radius = Some(crate::auth::radius::RadiusStats {
            accepts: 2,
            unavailable: 1,
            ..Default::default()
        });
        let r = Report::new(&now, None, &two_ports());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["connections"]["radius_accepts"], 2, "{v}");
        assert_eq!(v["connections"]["radius_unavailable"], 1, "{v}");
        assert_eq!(v["connections"]["radius_requests"], 0, "{v}");
        assert_eq!(v["connections"]["in_proxy"], 2, "{v}");
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_drop_capture_has_its_line_when_configured() {
        let mut now = stats(3_000, 2_100, 1_010_000, 5);
        now.capture = crate::stats::CaptureStats {
            enabled: true,
            handed_over: 12,
            ring_full: 1,
            writer: crate::dropcap::CaptureCounters {
                captured: 11,
                files_rotated: 2,
                ..Default::default()
            },
        };
        let r = Report::new(&now, None, &two_ports());
        assert_eq!(r.capture["enabled"], 1);
        assert_eq!(r.capture["handed_over"], 12);
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let text = back.to_text();
        assert!(
            text.contains("  Drop capture: 11 written of 12 handed over, ring full 1, files rotated 2, errors 0\n"),
            "{text}"
        );
    }

    #[test]
    fn survives_the_json_round_trip_and_prints_the_box_block() {
        let r = Report::new(
            &stats(3_000, 2_100, 1_010_000, 5),
            Some(&stats(1_000, 100, 10_000, 1)),
            &two_ports(),
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let text = back.to_text();
        assert!(text.starts_with("\nPort statistics ===================================="));
        assert!(text.contains("NIC statistics for port 0  "));
        assert!(text.contains("NIC statistics for port 1  "));
        assert!(
            text.contains("  Flows: 3          pass: 1          proxied: 0          spliced: 2\n")
        );
        assert!(text.contains("  By state: established 3\n"));
        assert!(text.contains("draining: 1"), "{text}");
        assert!(text.contains("splices/s: 2.00"), "{text}");
        assert!(text.contains("  Drops: policy_deny 4\n"), "{text}");
        assert!(!text.contains("Drop capture"), "not configured: {text}");
        // Every line of the box block is as wide as testpmd's borders at most.
        for line in text.lines().filter(|l| l.contains("####")) {
            assert_eq!(line.len(), 78, "{line:?}");
        }
    }
}
