//! The contract between the workers and the control plane: everything one says to the other.
//! Read this module first (DESIGN.md §3 draws the same picture).
//!
//! A worker owns its RX/TX queue pair on every port and its shard of the flow table; control
//! owns the participating stack, ARP, the box's own ICMP and the configuration. They share
//! nothing mutable but the bounded lock-free rings below, one published flag, and
//! [`Context`], which a worker only reads:
//!
//! | what | direction | carries |
//! |---|---|---|
//! | [`Rings::to_control`] (shared) | workers → control | [`ToControl`]: a packet and [`Why`] it is handed over |
//! | [`Rings::commands`] (one per worker) | control → worker | [`Command`]: neighbours, installs and removals, reloads, flow listings |
//! | [`Rings::from_control`] (one per worker) | control → worker | [`FromControl`]: frames to send on the worker's TX queue, packets to process as if received |
//! | [`Rings::replies`] (shared) | workers → control | answers to commands (flow listings) |
//! | [`Rings::handoff`] (one per worker) | worker → worker | [`Handoff`]: a packet for the worker that owns its flow (`crate::steer`) |
//! | [`Rings::syn_cookies`] | control → workers | whether SYNs to `proxy` rules get cookies now (no placeholder then) |
//! | [`Context`] (by `Arc`, replaced by [`Command::Reload`]) | control → workers | policy, routes, MACs, timeouts |
//!
//! Worker → control carries ARP, anything addressed to the box, SYNs for `proxy` rules,
//! segments of connections the participating stack owns, routed packets whose next hop has no
//! resolved MAC yet, and dropped packets for the drop capture (rate-limited, and never into
//! the ring's second half, which stays for the others). Control sends its own packets through
//! the workers' TX queues: virtual devices such as `net_af_packet` and `net_af_xdp` on a veth
//! have a single queue pair, so sending through the workers is the one way that works on
//! every device. Every ring is a `crossbeam` `ArrayQueue` (fixed capacity, lock-free); a push
//! onto a full ring fails at once and the pusher counts the drop: nobody ever blocks.
//!
//! Control's side of the rings is [`ControlIo`]: the local stack and the participating stack
//! write to it, the DPDK control loop and the simulation implement it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use common::config::Iface;
use common::conn::Conn;
use common::flow::FlowKey;
use common::wire::{Ipv4Addr, MacAddr};

use crate::context::Context;
use crate::live::{FlowDump, Reply};
use crate::verdict::DropReason;

/// Why a worker hands a packet to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// ARP, or IPv4 addressed to one of the box's own addresses.
    Local,
    /// A SYN that matched a `proxy` rule: the index of the rule and its action, in the
    /// worker's policy (after a reload control's policy may already be a newer one).
    ProxySyn {
        rule: u16,
        action: common::config::Action,
        /// Whether the worker made a placeholder for it (not while control answers SYNs with
        /// cookies, see [`Rings::syn_cookies`]).
        placeholder: bool,
    },
    /// An acknowledgement without a flow that matched a `proxy` rule: perhaps the answer to a
    /// SYN cookie (control kept nothing for the SYN).
    ProxyAck {
        rule: u16,
        action: common::config::Action,
    },
    /// A segment of a connection the participating stack owns.
    Proxied,
    /// Already rewritten for the next hop except its destination MAC: control resolves
    /// `next_hop` on `out`, fills the MAC in and sends it.
    Resolve { out: Iface, next_hop: Ipv4Addr },
    /// TTL expired in transit: control answers with ICMP time exceeded. The worker counts
    /// the packet as the drop [`DropReason::TtlExceeded`] (it goes no further).
    TtlExceeded,
    /// Dropped for this reason (and counted): control writes it to the drop capture.
    Dropped(DropReason),
}

/// A packet from the control plane to a worker.
#[derive(Debug)]
pub enum FromControl<P> {
    /// Send it out of this interface's port as it is (control tags it as the interface is).
    Send(Iface, P),
    /// Process it as if it had just arrived on this interface's port: packets of a connection that were
    /// queued toward control when its spliced object was installed go through the fast path
    /// (tracking and rewrite) like every later packet.
    Receive(Iface, P),
}

/// One packet on its way to the control plane.
#[derive(Debug)]
pub struct ToControl<P> {
    /// The interface it arrived on (for a packet dropped before its tag was read, its
    /// port's untagged interface).
    pub iface: Iface,
    pub worker: u16,
    pub why: Why,
    pub pkt: P,
}

/// What the control plane tells a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ip` on interface `iface` is at `mac` (or unreachable, with `None`).
    Neighbour {
        iface: Iface,
        ip: Ipv4Addr,
        mac: Option<MacAddr>,
    },
    /// Track (or splice) this connection from now on.
    Install(Conn),
    /// Forget the connection `key` belongs to.
    Remove(FlowKey),
    /// A reload: judge new connections by this context's policy from now on. Flows already
    /// in the table keep going as they are.
    Reload(NewContext),
    /// Copy (some of) the flows into this listing and hand it back on the reply ring.
    DumpFlows(Box<FlowDump>),
}

/// A reloaded [`Context`] on its way to a worker (equal when it is the same `Arc`).
#[derive(Debug, Clone)]
pub struct NewContext(pub Arc<Context>);

impl PartialEq for NewContext {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NewContext {}

/// A packet a worker received for a flow another worker owns (`crate::steer`): the owner
/// processes it as if it had arrived on `port` itself.
#[derive(Debug)]
pub struct Handoff<P> {
    pub port: usize,
    pub pkt: P,
}

/// Packets a worker's handoff ring holds: a few milliseconds of another worker's traffic, so
/// that an owner descheduled for a moment (more lcores than CPUs) loses nothing.
pub const HANDOFF_DEPTH: usize = 4096;

/// The rings of one worker: its own command ring and the shared ring to control.
#[derive(Debug)]
pub struct WorkerRings<P> {
    pub to_control: Arc<ArrayQueue<ToControl<P>>>,
    pub commands: Arc<ArrayQueue<Command>>,
    /// Packets the control plane sends, with the port to send them on.
    pub from_control: Arc<ArrayQueue<FromControl<P>>>,
    /// Answers to commands (flow listings), shared by all workers.
    pub replies: Arc<ArrayQueue<Reply>>,
    pub syn_cookies: Arc<AtomicBool>,
    /// Every worker's handoff ring, by worker (this worker's own among them).
    pub handoff: Vec<Arc<ArrayQueue<Handoff<P>>>>,
}

impl<P> Clone for WorkerRings<P> {
    fn clone(&self) -> Self {
        WorkerRings {
            to_control: Arc::clone(&self.to_control),
            commands: Arc::clone(&self.commands),
            from_control: Arc::clone(&self.from_control),
            replies: Arc::clone(&self.replies),
            syn_cookies: Arc::clone(&self.syn_cookies),
            handoff: self.handoff.clone(),
        }
    }
}

/// All rings of a box: one shared worker→control ring, one command ring per worker.
#[derive(Debug)]
pub struct Rings<P> {
    pub to_control: Arc<ArrayQueue<ToControl<P>>>,
    pub commands: Vec<Arc<ArrayQueue<Command>>>,
    pub from_control: Vec<Arc<ArrayQueue<FromControl<P>>>>,
    pub replies: Arc<ArrayQueue<Reply>>,
    /// Set by control while it answers SYNs to `proxy` rules with SYN cookies: workers then
    /// make no placeholder for such a SYN (a flood leaves nothing in the flow table, and
    /// control need not remove anything).
    pub syn_cookies: Arc<AtomicBool>,
    /// One per worker: packets other workers received for flows it owns.
    pub handoff: Vec<Arc<ArrayQueue<Handoff<P>>>>,
}

impl<P> Rings<P> {
    pub fn new(workers: usize, to_control_depth: usize, command_depth: usize) -> Rings<P> {
        Rings {
            to_control: Arc::new(ArrayQueue::new(to_control_depth)),
            commands: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(command_depth)))
                .collect(),
            from_control: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(to_control_depth)))
                .collect(),
            // One outstanding listing per worker, with room to spare.
            replies: Arc::new(ArrayQueue::new(4 * workers.max(1))),
            syn_cookies: Arc::new(AtomicBool::new(false)),
            handoff: (0..workers)
                .map(|_| Arc::new(ArrayQueue::new(HANDOFF_DEPTH)))
                .collect(),
        }
    }

    pub fn worker(&self, i: usize) -> WorkerRings<P> {
        WorkerRings {
            to_control: Arc::clone(&self.to_control),
            commands: Arc::clone(&self.commands[i]),
            from_control: Arc::clone(&self.from_control[i]),
            replies: Arc::clone(&self.replies),
            syn_cookies: Arc::clone(&self.syn_cookies),
            handoff: self.handoff.clone(),
        }
    }

    /// Hands a packet to `worker` to send on interface `side` (tagged as it is); gives it back if that ring is full.
    pub fn send(&self, worker: usize, side: Iface, pkt: P) -> Result<(), P> {
        self.to_worker(worker, FromControl::Send(side, pkt))
    }

    /// Hands a packet back to `worker` as if it had arrived on interface `side`.
    pub fn reinject(&self, worker: usize, side: Iface, pkt: P) -> Result<(), P> {
        self.to_worker(worker, FromControl::Receive(side, pkt))
    }

    fn to_worker(&self, worker: usize, m: FromControl<P>) -> Result<(), P> {
        let ring = &self.from_control[worker % self.from_control.len()];
        ring.push(m).map_err(|m| match m {
            FromControl::Send(_, p) | FromControl::Receive(_, p) => p,
        })
    }

    /// Sends a command to every worker; returns how many rings were full.
    pub fn broadcast(&self, cmd: &Command) -> usize {
        self.commands
            .iter()
            .filter(|r| r.push(cmd.clone()).is_err())
            .count()
    }
}

/// Where the control plane's packets go.
pub trait ControlIo<P> {
    /// Sends a frame the control plane built.
    fn send_frame(&mut self, side: Iface, frame: &[u8]);
    /// Sends a packet a worker handed over (already rewritten).
    fn send_packet(&mut self, side: Iface, pkt: P);
    /// Tells every worker.
    fn broadcast(&mut self, cmd: Command);
    /// Tells one worker; false if its ring was full.
    fn command(&mut self, worker: u16, cmd: Command) -> bool;
    /// Hands a packet back to `worker` as if it had arrived on interface `side`.
    fn reinject(&mut self, worker: u16, side: Iface, pkt: P) -> bool;
    /// A packet holding a copy of `frame` (an mbuf from the pool, a `Vec` in tests).
    fn alloc(&mut self, frame: &[u8]) -> Option<P>;
    /// Tells the workers whether SYNs to `proxy` rules now get cookies.
    fn syn_cookies(&mut self, _on: bool) {}
}
