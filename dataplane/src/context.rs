//! What every worker reads and nobody writes while the box runs: the policy, the routes, the
//! interfaces and the ports' MAC addresses, the timeouts. Built by the control plane from its configuration
//! (which workers never see: users, password hashes and directory secrets stay with control)
//! and shared by `Arc`, so reading it takes no lock. A reload replaces it whole
//! ([`crate::contract::Command::Reload`]).

use std::time::Duration;

use common::config::{Config, FlowTable, Rule, SynCookies};
use common::conn::TcpState;
use common::wire::MacAddr;

use crate::iface::Ifaces;
use crate::route::Router;
use crate::steer::Steering;
use crate::track::TrackConfig;

/// How the workers treat traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardMode {
    /// The box: routing, policy, stateful inspection, the splice.
    #[default]
    Full,
    /// Port-to-port forwarding with no processing at all: the baseline against testpmd.
    Io,
    // placeholder
    Lookup,
}

#[derive(Debug)]
pub struct Context {
    /// The rules, first match wins.
    pub policy: Vec<Rule>,
    pub router: Router,
    /// The ports and VLANs, and which is which.
    pub ifaces: Ifaces,
    /// The MAC of each port (its VLANs share it).
    pub macs: Vec<MacAddr>,
    /// Idle timeout per TCP state, in milliseconds.
    pub tcp_timeouts_ms: [u32; TcpState::COUNT],
    pub track: TrackConfig,
    pub mode: ForwardMode,
    /// Flow-table slots per worker.
    pub flows_per_worker: usize,
    /// UDP flows, and ICMP echo exchanges, per worker ([`crate::datagram`]).
    pub datagrams_per_worker: usize,
    /// Idle timeouts of UDP flows and ICMP echo exchanges, in milliseconds.
    pub udp_timeout_ms: u32,
    pub icmp_timeout_ms: u32,
    /// Whether control may answer SYNs to `proxy` rules with cookies (`proxy.syn_cookies` is
    /// not `never`); whether it does right now is [`crate::contract::Rings::syn_cookies`].
    pub syn_cookies: bool,
    /// The drop capture's box-wide rate, packets per second; 0 when drops are not captured.
    pub drop_capture_rate: u32,
    pub workers: u16,
    /// How packets reach the worker that owns their flow.
    pub steering: Steering,
    /// 0 for the configuration the box started with, +1 for each reload (SIGHUP).
    pub generation: u64,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX / 2)
}

impl Context {
    /// `macs` are the ports' MAC addresses, in the order of `config.interfaces`.
    pub fn new(config: &Config, macs: &[MacAddr], mode: ForwardMode) -> Context {
        let t = &config.flow_table.timeouts;
        let mut tcp_timeouts_ms = [0u32; TcpState::COUNT];
        for (state, d) in [
            (TcpState::SynSent, t.syn_sent),
            (TcpState::SynRecv, t.syn_recv),
            (TcpState::Established, t.established),
            (TcpState::FinWait, t.fin_wait),
            (TcpState::CloseWait, t.close_wait),
            (TcpState::LastAck, t.last_ack),
            (TcpState::TimeWait, t.time_wait),
            (TcpState::Close, t.close),
        ] {
            tcp_timeouts_ms[state as usize] = ms(d);
        }
        let workers = config.workers.count.max(1);
        let min_shard = FlowTable::MIN_CAPACITY as usize;
        let flows_per_worker =
            (config.flow_table.capacity as usize / usize::from(workers)).max(min_shard);
        Context {
            policy: config.policy.clone(),
            router: Router::new(config),
            ifaces: Ifaces::new(config),
            macs: macs.to_vec(),
            tcp_timeouts_ms,
            track: TrackConfig::default(),
            mode,
            flows_per_worker,
            // Datagram flows are short and cheap (20 bytes): a quarter of the TCP capacity
            // serves a site's DNS and NTP many times over, and a flood of them fills its own
            // tables, never the one TCP connections need.
            datagrams_per_worker: (flows_per_worker / 4).max(min_shard),
            udp_timeout_ms: ms(t.udp),
            icmp_timeout_ms: ms(t.icmp),
            syn_cookies: config.proxy.syn_cookies != SynCookies::Never,
            drop_capture_rate: config.capture.drops.as_ref().map_or(0, |d| d.rate),
            workers,
            steering: Steering::One,
            generation: 0,
        }
    }

    /// Worker `worker`'s share of the drop capture's rate, packets per second: the box-wide
    /// rate split evenly, the remainder to the first workers. 0: drops are not captured.
    pub fn drop_capture_share(&self, worker: u16) -> u32 {
        let (rate, n) = (self.drop_capture_rate, u32::from(self.workers));
        rate / n + u32::from(u32::from(worker) < rate % n)
    }
}
