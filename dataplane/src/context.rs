//! What every worker reads and nobody writes while the box runs: the policy, the routes, the
//! ports' MAC addresses and the timeouts. Built once from the configuration and shared by
//! `Arc`, so reading it takes no lock.

use std::time::Duration;

use common::config::{Config, FlowTable};
use common::conn::TcpState;
use common::wire::MacAddr;

use crate::route::Router;
use crate::track::TrackConfig;

/// How the workers treat traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardMode {
    /// The box: routing, policy, stateful inspection, the splice.
    #[default]
    Full,
    /// Port-to-port forwarding with no processing at all: the baseline against testpmd.
    Io,
}

#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub router: Router,
    /// The MAC of the inside (0) and outside (1) port.
    pub macs: [MacAddr; 2],
    /// Idle timeout per TCP state, in milliseconds.
    pub tcp_timeouts_ms: [u32; TcpState::COUNT],
    pub track: TrackConfig,
    pub mode: ForwardMode,
    /// Flow-table slots per worker.
    pub flows_per_worker: usize,
    /// 0 for the configuration the box started with, +1 for each reload (SIGHUP).
    pub generation: u64,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX / 2)
}

impl Context {
    pub fn new(config: Config, macs: [MacAddr; 2], mode: ForwardMode) -> Context {
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
        let workers = usize::from(config.workers.count.max(1));
        let min_shard = FlowTable::MIN_CAPACITY as usize;
        let flows_per_worker = (config.flow_table.capacity as usize / workers).max(min_shard);
        Context {
            router: Router::new(&config),
            config,
            macs,
            tcp_timeouts_ms,
            track: TrackConfig::default(),
            mode,
            flows_per_worker,
            generation: 0,
        }
    }

    /// Worker `worker`'s share of the drop capture's rate, packets per second: the box-wide
    /// rate split evenly, the remainder to the first workers. 0: drops are not captured.
    pub fn drop_capture_rate(&self, worker: u16) -> u32 {
        let Some(d) = &self.config.capture.drops else {
            return 0;
        };
        let n = u32::from(self.config.workers.count.max(1));
        d.rate / n + u32::from(u32::from(worker) < d.rate % n)
    }

    /// The context of a reload: `config`'s policy, users and authentication settings, with
    /// everything that cannot change while the box runs (ports, routes, workers, flow-table
    /// size and timeouts, EAL, captures) kept from this one. Returns it and the names of the
    /// sections that differed in `config` but were kept (a restart applies them).
    pub fn reloaded(&self, config: Config) -> (Context, Vec<&'static str>) {
        let old = &self.config;
        let mut kept = Vec::new();
        if config.eal != old.eal {
            kept.push("eal");
        }
        if config.interfaces != old.interfaces {
            kept.push("interfaces");
        }
        if config.routes != old.routes {
            kept.push("routes");
        }
        if config.workers != old.workers {
            kept.push("workers");
        }
        if config.flow_table != old.flow_table {
            kept.push("flow_table");
        }
        // The capture's files are open and the workers' rate shares set: both are made once.
        if config.capture != old.capture {
            kept.push("capture");
        }
        let merged = Config {
            policy: config.policy,
            users: config.users,
            auth: config.auth,
            ..old.clone()
        };
        let mut ctx = Context::new(merged, self.macs, self.mode);
        ctx.generation = self.generation + 1;
        (ctx, kept)
    }
}
