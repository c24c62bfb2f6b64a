//! What a simulation saw: the box's counters, the trace of every frame, and the reports a
//! failing test prints.

use super::*;

impl Sim {
    // --- what the box counted ---------------------------------------------------------------

    pub fn workers(&self) -> &[Worker<MemQueue>] {
        &self.the_box.workers
    }

    /// All workers' counters added up.
    pub fn counters(&self) -> WorkerCounters {
        sum_counters(self.the_box.workers.iter().map(|w| &w.counters))
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.counters().drops.get(r)
    }

    /// The drop reasons that counted anything, all workers.
    pub fn nonzero_drops(&self) -> Vec<(&'static str, u64)> {
        nonzero(&self.counters().drops)
    }

    /// The participating stack's connections by outcome (proxied, spliced, full_proxy, ...).
    pub fn proxy_connections(&self) -> Connections {
        self.the_box.plane.proxy.connections
    }

    /// The object a worker holds for `key` (either direction): (worker, a copy of it).
    pub fn installed(&self, key: &FlowKey) -> Option<(usize, Conn)> {
        self.the_box.workers.iter().enumerate().find_map(|(i, w)| {
            let (idx, _) = w.table().lookup(key)?;
            Some((i, *w.table().get(idx)))
        })
    }

    pub fn hop_stats(&self, hop: Hop) -> HopStats {
        self.wire.stats[hop as usize]
    }

    /// TCP flows each worker created, in worker order.
    pub fn flows_per_worker(&self) -> Vec<u64> {
        self.workers()
            .iter()
            .map(|w| w.counters.flows_created)
            .collect()
    }

    /// Flows in all workers' tables.
    pub fn flows(&self) -> usize {
        self.the_box.workers.iter().map(|w| w.table().len()).sum()
    }

    /// The trace entries the box dropped.
    pub fn dropped(&self) -> Vec<&TraceEntry> {
        self.trace
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Dropped(_)))
            .collect()
    }

    /// The trace of one connection (by client port), in order.
    pub fn trace_of(&self, cport: u16) -> Vec<&TraceEntry> {
        self.trace_of_since(cport, 0)
    }

    /// The trace of one connection (by client port) from index `from` of the whole trace on.
    pub fn trace_of_since(&self, cport: u16, from: usize) -> Vec<&TraceEntry> {
        self.trace[from..]
            .iter()
            .filter(|e| e.of_conn(cport))
            .collect()
    }

    /// The last `n` trace entries of one connection (by client port), a line each.
    pub fn last_segments(&self, cport: u16, n: usize) -> String {
        let t = self.trace_of(cport);
        t[t.len().saturating_sub(n)..]
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect()
    }

    /// The frames the links' faults dropped, duplicated or delayed, all hops.
    pub fn faults_injected(&self) -> u64 {
        Hop::ALL
            .iter()
            .map(|&h| {
                let s = self.hop_stats(h);
                s.dropped + s.duplicated + s.delayed
            })
            .sum()
    }

    /// Panics unless the links' faults did something: a test under faults that met none
    /// proves nothing about them. `what` starts the message.
    pub fn assert_hostile(&self, what: &str) {
        assert!(
            self.faults_injected() > 0,
            "{what}: the network was not hostile\n{}",
            self.report()
        );
    }

    /// Panics with the evidence (each drop with its connection's handshake and the segments
    /// before it) if the box dropped anything. `what` starts the message.
    pub fn assert_no_drops(&self, what: &str) {
        assert_eq!(
            self.counters().drops.total(),
            0,
            "{what}: unexpected drops {:?}\n{}\n{}",
            self.nonzero_drops(),
            self.report(),
            self.explain_drops(16, 5)
        );
    }

    /// For a dropped trace entry: it and the `context` entries of its connection before it.
    pub fn explain_drop(&self, index_in_trace: usize, context: usize) -> String {
        let e = &self.trace[index_in_trace];
        let Some(seg) = &e.seg else {
            return format!("{e}");
        };
        let cport = if seg.src == CLIENT_IP {
            seg.sport
        } else {
            seg.dport
        };
        let conn: Vec<_> = self.trace[..=index_in_trace]
            .iter()
            .filter(|x| x.of_conn(cport))
            .collect();
        let from = conn.len().saturating_sub(context + 1);
        let mut s = String::new();
        for x in &conn[..3.min(conn.len())] {
            s += &format!("  {x}\n");
        }
        if from > 3 {
            s += "  ...\n";
        }
        for x in &conn[from.max(3.min(conn.len()))..] {
            s += &format!("  {x}\n");
        }
        s
    }

    /// Every drop the box made, each with the handshake and the `context` segments of its
    /// connection before it.
    pub fn explain_drops(&self, context: usize, max: usize) -> String {
        let mut s = String::new();
        let idx: Vec<usize> = (0..self.trace.len())
            .filter(|&i| matches!(self.trace[i].outcome, Outcome::Dropped(_)))
            .collect();
        for &i in idx.iter().take(max) {
            s += &format!("drop #{i}:\n{}", self.explain_drop(i, context));
        }
        if idx.len() > max {
            s += &format!("... and {} more drops\n", idx.len() - max);
        }
        s
    }

    /// smoltcp 0.14 can leave a socket with its FIN unacknowledged and no retransmission
    /// timer (a fast retransmit that fires when only the FIN is outstanding clears the timer
    /// and sends nothing): it then never sends again. True if `ep` looks like that: a state
    /// with our FIN outstanding, nothing in flight on the links, and its host has no timer.
    pub fn fin_stalled(&mut self, ep: EpId) -> bool {
        let e = &self.endpoints[ep.0];
        let (host, handle) = (e.host, e.handle);
        let now = Instant::from_millis(self.now as i64);
        let idle = self.wire.queue.is_empty();
        let h = self.host_mut(host);
        let state = h.socket(handle).state();
        idle && matches!(
            state,
            tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
        ) && h.iface.poll_at(now, &h.sockets).is_none()
    }

    /// A summary for failure messages: time, endpoints, counters, links.
    pub fn report(&self) -> String {
        let mut s = format!("seed {} t={}ms steps={}\n", self.seed, self.now, self.steps);
        for (i, e) in self.endpoints.iter().enumerate() {
            let sock = self.host(e.host).socket(e.handle);
            s += &format!(
                "  ep{i} {:?} peer={:?} state={} written={}/{} unacked={} received={} \
                 closed={}\n",
                e.host,
                e.peer_port,
                sock.state(),
                e.written,
                e.out.len(),
                sock.send_queue(),
                e.received.len(),
                e.closed
            );
        }
        let c = self.counters();
        s += &format!(
            "  box: rx={} tx={} fwd={} ignored={} to_control={} from_control={} created={} \
             closed={} drops={:?}\n",
            c.rx,
            c.tx,
            c.forwarded,
            c.ignored,
            c.to_control,
            c.from_control,
            c.flows_created,
            c.flows_closed,
            nonzero(&c.drops)
        );
        s += &format!("  control: {:?}\n", self.the_box.plane.local.counters);
        let proxy = &self.the_box.plane.proxy;
        if proxy.connections.proxied > 0 {
            s += &format!("  proxy: {:?} {:?}\n", proxy.connections, proxy.counters);
        }
        for h in Hop::ALL {
            s += &format!("  {h:?}: {:?}\n", self.hop_stats(h));
        }
        s
    }
}

impl TraceEntry {
    /// The entry is a segment of the connection from client port `cport`.
    pub fn of_conn(&self, cport: u16) -> bool {
        self.seg
            .as_ref()
            .is_some_and(|s| s.sport == cport || s.dport == cport)
    }
}

/// What the worker's counters say happened to the one frame it just processed.
pub(super) fn classify(b: &WorkerCounters, a: &WorkerCounters) -> Outcome {
    for r in DropReason::ALL {
        if a.drops.get(r) > b.drops.get(r) {
            return Outcome::Dropped(r);
        }
    }
    if a.ignored > b.ignored {
        Outcome::Ignored
    } else if a.to_control > b.to_control {
        Outcome::ToControl
    } else if a.forwarded > b.forwarded {
        Outcome::Forwarded
    } else {
        Outcome::Unknown
    }
}

/// Asserts a received stream equals the expected one, naming the first difference.
pub fn assert_stream(seed: u64, what: &str, expected: &[u8], got: &[u8]) {
    if expected == got {
        return;
    }
    let first = first_difference(expected, got);
    panic!(
        "seed {seed}: {what}: expected {} bytes, got {}; first difference at offset {first}",
        expected.len(),
        got.len()
    );
}

/// The offset of the first byte where `got` differs from `expected` (or where the shorter
/// one ends).
pub fn first_difference(expected: &[u8], got: &[u8]) -> usize {
    expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()))
}

/// The number of seeds a sweep runs: `SIM_SEEDS` if set, else `default`.
pub fn sweep_seeds(default: u64) -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the simulated client and server say around a login, shared by the simulations that
/// log in with `line` or `http-basic` and exchange first bytes.
pub mod script {
    // A deliberate oracle: the box's words are written out here, not taken from
    // `control::auth::line`, so a change to what the box says shows as a failure.

    /// The server's first bytes (`none`, `line`).
    pub const BANNER: &[u8] = b"220 server ready\r\n";
    /// The client's first bytes (`none`): sent at once, so they meet the drain.
    pub const HELLO: &[u8] = b"hello from the client\r\n";
    /// The client's bytes after its password (`line`): relayed to the server by the box
    /// before the splice.
    pub const LEFTOVER: &[u8] = b"first command after the password\r\n";
    pub const PASSWORD_LINE: &[u8] = b"wonderland\r\n";
    /// What the box consumes from the client on `line`, and what it says itself.
    pub const LINE_CREDENTIALS: &[u8] = b"alice\r\nwonderland\r\n";
    pub const LINE_OUTPUT: &[u8] = b"Username: Password: Authenticated as alice.\r\n";
    pub const WELCOME: &[u8] = b"Authenticated as alice.\r\n";
    pub const REQUEST: &[u8] =
        b"GET /x HTTP/1.1\r\nHost: s\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n";
    /// The request as the server must get it (the credentials taken out).
    pub const STRIPPED: &[u8] = b"GET /x HTTP/1.1\r\nHost: s\r\n\r\n";
    pub const RESPONSE_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
}

/// The most steps a simulation phase may take: far more than any run needs.
pub const MAX_STEPS: u64 = 200_000;

/// Steps until `ep` has received at least `want.len()` bytes, and checks they start with it.
pub fn expect_from_box(sim: &mut Sim, ep: EpId, want: &[u8], what: &str) {
    let n = want.len();
    sim.run_until(what, MAX_STEPS, |s| s.received(ep).len() >= n);
    let got = &sim.received(ep)[..n];
    assert!(
        got == want,
        "seed {}: {what}: expected {:?}, got {:?}\n{}",
        sim.seed,
        String::from_utf8_lossy(want),
        String::from_utf8_lossy(got),
        sim.report()
    );
}
