//! The box's own link and network layer on the control lcore, on every interface (port or
//! VLAN, its frames tagged as the interface is): ARP (answering for the interfaces'
//! addresses, resolving next hops with a bounded pending queue), ICMP echo to the box's own
//! addresses, and ICMP time exceeded for transit packets whose TTL ran out.
//!
//! No I/O inside: packets and the time come in, frames and worker commands go out through
//! [`ControlIo`] (the workers' contract), so the same code runs on DPDK ports and in the simulation.
//!
//! Neighbour cache: an entry is resolved by ARP (a request per second, three tries); packets
//! waiting for it are held (at most [`PENDING_PER_NEIGHBOUR`] each) and dropped, counted, if
//! resolution fails — never held forever. A resolved entry is trusted for
//! [`REACHABLE_MS`]; after that it is refreshed with a new request while still in use, and
//! removed from the workers if nobody answers.

use std::collections::HashMap;

use common::config::Iface;
use common::wire::arp::{ArpPacket, ArpRepr, Operation};
use common::wire::ethernet::{build_frame as ethernet, EtherType, EthernetFrame};
use common::wire::icmp::{IcmpEchoRepr, IcmpErrorRepr, IcmpPacket};
use common::wire::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use common::wire::{Ipv4Addr, MacAddr};
use dataplane::context::Context;
use dataplane::contract::{Command, ControlIo, ToControl, Why};
use dataplane::iface::Ifaces;
use dataplane::packet::Packet;
use dataplane::rate::TokenBucket;
use dataplane::route::Router;

/// Packets held per unresolved neighbour.
pub const PENDING_PER_NEIGHBOUR: usize = 32;
/// ARP requests sent before a neighbour is given up.
pub const ARP_TRIES: u32 = 3;
/// Time between ARP requests while resolving.
pub const ARP_RETRY_MS: u32 = 1000;
/// How long a resolved neighbour is trusted before it is refreshed.
pub const REACHABLE_MS: u32 = 300_000;

/// What the local stack counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocalCounters {
    pub arp_requests_answered: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_received: u64,
    pub icmp_echo_answered: u64,
    pub icmp_time_exceeded_sent: u64,
    /// Time-exceeded errors not sent: over the rate limit.
    pub icmp_rate_limited: u64,
    pub resolved_forwarded: u64,
    pub resolve_failed_drops: u64,
    pub pending_full_drops: u64,
    /// Packets for the box that it does not serve (other protocols, other ICMP types).
    pub local_unhandled: u64,
    pub malformed: u64,
}

enum State {
    Resolving {
        tries: u32,
        last_ms: u32,
    },
    Reachable {
        mac: MacAddr,
        since_ms: u32,
    },
    /// Resolved, now being re-checked; still used meanwhile.
    Refreshing {
        mac: MacAddr,
        tries: u32,
        last_ms: u32,
    },
}

struct Neighbour<P> {
    state: State,
    pending: Vec<P>,
}

pub struct LocalStack<P> {
    router: Router,
    ifaces: Ifaces,
    /// Per port.
    macs: Vec<MacAddr>,
    neighbours: HashMap<(Iface, Ipv4Addr), Neighbour<P>>,
    ident: u16,
    icmp_errors: TokenBucket,
    pub counters: LocalCounters,
}

/// ICMP errors the box sends at most per second, and in a burst (Linux: `icmp_ratelimit`
/// 1000 ms per message per destination, `icmp_msgs_per_sec` 1000 with a burst of 50; one
/// bucket for the box is enough to keep it from being used as a reflector).
pub const ICMP_ERRORS_PER_S: u32 = 100;

impl<P: Packet> LocalStack<P> {
    /// Answers and resolves on the interfaces of `ctx` (the workers' view of the ports).
    pub fn new(ctx: &Context) -> Self {
        LocalStack {
            router: ctx.router.clone(),
            ifaces: ctx.ifaces.clone(),
            macs: ctx.macs.clone(),
            neighbours: HashMap::new(),
            ident: 1,
            icmp_errors: TokenBucket::new(ICMP_ERRORS_PER_S),
            counters: LocalCounters::default(),
        }
    }

    /// The interface the route to `dst` leaves by.
    pub fn egress(&self, dst: Ipv4Addr) -> Option<Iface> {
        self.router.lookup(dst).map(|h| h.out)
    }

    /// The MAC of a resolved neighbour.
    pub fn neighbour(&self, iface: Iface, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.neighbours.get(&(iface, ip))?.state {
            State::Reachable { mac, .. } | State::Refreshing { mac, .. } => Some(mac),
            State::Resolving { .. } => None,
        }
    }

    /// Handles a packet a worker handed over for one of the local reasons.
    pub fn on_packet(&mut self, msg: ToControl<P>, now_ms: u32, io: &mut impl ControlIo<P>) {
        match msg.why {
            Why::Local => self.local(msg.iface, msg.pkt, now_ms, io),
            Why::Resolve { out, next_hop } => self.resolve(out, next_hop, msg.pkt, now_ms, io),
            Why::TtlExceeded => self.time_exceeded(msg.iface, msg.pkt.data(), now_ms, io),
            Why::ProxySyn { .. } | Why::ProxyAck { .. } | Why::Proxied | Why::Dropped(_) => {
                self.counters.local_unhandled += 1
            }
        }
    }

    /// Starts resolving `ip` on `iface` ahead of traffic (the workers' first packet then finds
    /// it known).
    pub fn prime(&mut self, iface: Iface, ip: Ipv4Addr, now_ms: u32, io: &mut impl ControlIo<P>) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.neighbours.entry((iface, ip)) {
            e.insert(Neighbour {
                state: State::Resolving {
                    tries: 1,
                    last_ms: now_ms,
                },
                pending: Vec::new(),
            });
            self.send_arp_request(iface, ip, io);
        }
    }

    fn local(&mut self, iface: Iface, pkt: P, now_ms: u32, io: &mut impl ControlIo<P>) {
        let frame = pkt.data();
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed += 1;
            return;
        };
        match eth.ethertype() {
            EtherType::ARP => self.arp(iface, eth.payload(), now_ms, io),
            EtherType::IPV4 => self.ipv4(iface, eth.src(), eth.payload(), io),
            _ => self.counters.local_unhandled += 1,
        }
    }

    fn arp(&mut self, iface: Iface, bytes: &[u8], now_ms: u32, io: &mut impl ControlIo<P>) {
        let Ok(repr) = ArpPacket::new_checked(bytes).and_then(|p| ArpRepr::parse(&p)) else {
            self.counters.malformed += 1;
            return;
        };
        let mine = self.router.is_own(repr.tpa)
            && self.router.own_address(iface, repr.tpa) == Some(repr.tpa);
        // Learn the sender if it asked us, or if we were waiting for it (RFC 826 merge).
        if mine || self.neighbours.contains_key(&(iface, repr.spa)) {
            if repr.op == Operation::REPLY {
                self.counters.arp_replies_received += 1;
            }
            self.learn(iface, repr.spa, repr.sha, now_ms, io);
        }
        if mine && repr.op == Operation::REQUEST {
            let reply = ArpRepr {
                op: Operation::REPLY,
                sha: self.mac(iface),
                spa: repr.tpa,
                tha: repr.sha,
                tpa: repr.spa,
            };
            let mut b = [0u8; ArpRepr::BUFFER_LEN];
            reply.emit(&mut b);
            io.send_frame(iface, &self.frame(iface, repr.sha, EtherType::ARP, &b));
            self.counters.arp_requests_answered += 1;
        }
    }

    fn learn(
        &mut self,
        iface: Iface,
        ip: Ipv4Addr,
        mac: MacAddr,
        now_ms: u32,
        io: &mut impl ControlIo<P>,
    ) {
        let changed = self.neighbour(iface, ip) != Some(mac);
        let entry = self
            .neighbours
            .entry((iface, ip))
            .or_insert_with(|| Neighbour {
                state: State::Reachable {
                    mac,
                    since_ms: now_ms,
                },
                pending: Vec::new(),
            });
        entry.state = State::Reachable {
            mac,
            since_ms: now_ms,
        };
        let pending = std::mem::take(&mut entry.pending);
        if changed {
            io.broadcast(Command::Neighbour {
                iface,
                ip,
                mac: Some(mac),
            });
        }
        for mut p in pending {
            if let Ok(mut eth) = EthernetFrame::new_checked(p.data_mut()) {
                eth.set_dst(mac);
            }
            io.send_packet(iface, p);
            self.counters.resolved_forwarded += 1;
        }
    }

    /// Sends an IP datagram the control plane built (the participating stack's segments)
    /// towards its destination on `iface`, resolving the next hop if needed.
    pub fn send_ip(&mut self, iface: Iface, ip: &[u8], now_ms: u32, io: &mut impl ControlIo<P>) {
        let Ok(p) = Ipv4Packet::new_checked(ip) else {
            self.counters.malformed += 1;
            return;
        };
        let dst = p.dst();
        let next_hop = match self.router.lookup(dst) {
            Some(h) if h.out == iface => h.ip,
            _ => dst,
        };
        match self.neighbour(iface, next_hop) {
            Some(mac) => io.send_frame(iface, &self.frame(iface, mac, EtherType::IPV4, ip)),
            None => {
                let frame = self.frame(iface, MacAddr::ZERO, EtherType::IPV4, ip);
                if let Some(pkt) = io.alloc(&frame) {
                    self.resolve(iface, next_hop, pkt, now_ms, io);
                }
            }
        }
    }

    fn resolve(
        &mut self,
        out: Iface,
        ip: Ipv4Addr,
        mut pkt: P,
        now_ms: u32,
        io: &mut impl ControlIo<P>,
    ) {
        if let Some(mac) = self.neighbour(out, ip) {
            // Learned after the worker looked: send it on now and make sure the worker knows.
            if let Ok(mut eth) = EthernetFrame::new_checked(pkt.data_mut()) {
                eth.set_dst(mac);
            }
            io.send_packet(out, pkt);
            io.broadcast(Command::Neighbour {
                iface: out,
                ip,
                mac: Some(mac),
            });
            self.counters.resolved_forwarded += 1;
            return;
        }
        self.prime(out, ip, now_ms, io);
        let Some(n) = self.neighbours.get_mut(&(out, ip)) else {
            return;
        };
        if n.pending.len() >= PENDING_PER_NEIGHBOUR {
            self.counters.pending_full_drops += 1;
        } else {
            n.pending.push(pkt);
        }
    }

    /// Retries ARP, gives up on dead neighbours and refreshes old ones. Call every few ms.
    pub fn tick(&mut self, now_ms: u32, io: &mut impl ControlIo<P>) {
        let mut requests = Vec::new();
        let mut dead = Vec::new();
        for (&(iface, ip), n) in self.neighbours.iter_mut() {
            match n.state {
                State::Resolving { tries, last_ms }
                    if now_ms.wrapping_sub(last_ms) >= ARP_RETRY_MS =>
                {
                    if tries >= ARP_TRIES {
                        dead.push((iface, ip));
                    } else {
                        n.state = State::Resolving {
                            tries: tries + 1,
                            last_ms: now_ms,
                        };
                        requests.push((iface, ip));
                    }
                }
                State::Reachable { mac, since_ms }
                    if now_ms.wrapping_sub(since_ms) >= REACHABLE_MS =>
                {
                    n.state = State::Refreshing {
                        mac,
                        tries: 1,
                        last_ms: now_ms,
                    };
                    requests.push((iface, ip));
                }
                State::Refreshing {
                    mac,
                    tries,
                    last_ms,
                } if now_ms.wrapping_sub(last_ms) >= ARP_RETRY_MS => {
                    if tries >= ARP_TRIES {
                        dead.push((iface, ip));
                    } else {
                        n.state = State::Refreshing {
                            mac,
                            tries: tries + 1,
                            last_ms: now_ms,
                        };
                        requests.push((iface, ip));
                    }
                }
                _ => {}
            }
        }
        for (iface, ip) in requests {
            self.send_arp_request(iface, ip, io);
        }
        for key in dead {
            if let Some(n) = self.neighbours.remove(&key) {
                self.counters.resolve_failed_drops += n.pending.len() as u64;
                if matches!(n.state, State::Refreshing { .. }) {
                    io.broadcast(Command::Neighbour {
                        iface: key.0,
                        ip: key.1,
                        mac: None,
                    });
                }
            }
        }
    }

    fn send_arp_request(&mut self, iface: Iface, ip: Ipv4Addr, io: &mut impl ControlIo<P>) {
        let Some(spa) = self.router.own_address(iface, ip) else {
            return;
        };
        let req = ArpRepr {
            op: Operation::REQUEST,
            sha: self.mac(iface),
            spa,
            tha: MacAddr::ZERO,
            tpa: ip,
        };
        let mut b = [0u8; ArpRepr::BUFFER_LEN];
        req.emit(&mut b);
        let frame = self.frame(iface, MacAddr::BROADCAST, EtherType::ARP, &b);
        io.send_frame(iface, &frame);
        self.counters.arp_requests_sent += 1;
    }

    fn ipv4(&mut self, iface: Iface, src_mac: MacAddr, bytes: &[u8], io: &mut impl ControlIo<P>) {
        let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
            self.counters.malformed += 1;
            return;
        };
        if ip.protocol() != Protocol::ICMP || ip.is_fragment() {
            self.counters.local_unhandled += 1;
            return;
        }
        let Ok(icmp) = IcmpPacket::new_checked(ip.payload()) else {
            self.counters.malformed += 1;
            return;
        };
        let Some(echo) = IcmpEchoRepr::parse(&icmp).filter(|e| !e.is_reply) else {
            self.counters.local_unhandled += 1;
            return;
        };
        if !icmp.verify_checksum() {
            self.counters.malformed += 1;
            return;
        }
        let reply = echo.to_reply();
        let mut body = vec![0u8; reply.buffer_len()];
        reply.emit(&mut body);
        let frame = self.ip_frame(iface, src_mac, ip.dst(), ip.src(), &body);
        io.send_frame(iface, &frame);
        self.counters.icmp_echo_answered += 1;
    }

    fn time_exceeded(
        &mut self,
        iface: Iface,
        frame: &[u8],
        now_ms: u32,
        io: &mut impl ControlIo<P>,
    ) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed += 1;
            return;
        };
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            self.counters.malformed += 1;
            return;
        };
        // Never an ICMP error about an ICMP error (RFC 1122 §3.2.2).
        if ip.protocol() == Protocol::ICMP {
            if let Ok(i) = IcmpPacket::new_checked(ip.payload()) {
                if i.is_error() {
                    return;
                }
            }
        }
        let Some(own) = self.router.own_address(iface, ip.src()) else {
            return;
        };
        if !self.icmp_errors.take(now_ms) {
            self.counters.icmp_rate_limited += 1;
            return;
        }
        let err = IcmpErrorRepr::time_exceeded(eth.payload());
        let mut body = vec![0u8; err.buffer_len()];
        err.emit(&mut body);
        let out = self.ip_frame(iface, eth.src(), own, ip.src(), &body);
        io.send_frame(iface, &out);
        self.counters.icmp_time_exceeded_sent += 1;
    }

    fn ip_frame(
        &mut self,
        iface: Iface,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp: &[u8],
    ) -> Vec<u8> {
        let repr = Ipv4Repr {
            src,
            dst,
            protocol: Protocol::ICMP,
            payload_len: icmp.len(),
            ttl: 64,
            ident: self.ident,
        };
        self.ident = self.ident.wrapping_add(1);
        let mut ip = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ip);
        ip[20..].copy_from_slice(icmp);
        self.frame(iface, dst_mac, EtherType::IPV4, &ip)
    }

    /// The MAC the box has on `iface` (its port's).
    fn mac(&self, iface: Iface) -> MacAddr {
        self.macs[self.ifaces.port_of(iface)]
    }

    /// A frame from the box on `iface`, tagged as the interface is.
    fn frame(&self, iface: Iface, dst: MacAddr, ty: EtherType, payload: &[u8]) -> Vec<u8> {
        let mut f = ethernet(self.mac(iface), dst, ty, payload);
        if let Some(id) = self.ifaces.get(iface).vlan {
            let [tpid_hi, tpid_lo] = EtherType::VLAN.0.to_be_bytes();
            let [hi, lo] = id.to_be_bytes();
            f.splice(12..12, [tpid_hi, tpid_lo, hi, lo]);
        }
        f
    }
}

#[cfg(test)]
mod tests;
