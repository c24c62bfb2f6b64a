//! The fast path's vector: a received burst of the common case, processed in stages.
//!
//! 1. One template test per packet, at fixed offsets: an untagged frame to the port's own MAC,
//!    IPv4 without options and unfragmented with a TTL above 1, TCP with no options or exactly
//!    NOP, NOP, timestamps and none of SYN, FIN, RST, URG. What fits gives its key, hashed once,
//!    and its tag line is prefetched.
//! 2. With every tag line on its way, one 16-tag compare per packet finds the slot of its
//!    flow ([`FlowTable::probe`]); that slot's lines are prefetched.
//! 3. In order, each packet is looked up in the slot found (one key compare), tracked and
//!    rewritten at fixed offsets ([`rewrite_fixed`]), and buffered for its port. Its next
//!    hop comes from a cache by destination (`worker::hops`); an in-window segment of an
//!    established flow is tracked by one branch-free step ([`track_established`]), anything
//!    else by the whole tracker.
//!
//! Anything else takes [`Worker::process`], the slow path and the reference: packets outside
//! the template, packets for the box, without a route, a resolved next hop or a flow, flows
//! the participating stack owns or whose options the box translates, tagged egress. The
//! decision is taken before anything changes, so the slow path sees the packet as it came.
//! Packets keep their order: a slow-path packet is handled where it stands in the burst, and
//! a table change it makes (a new flow, a removal that moves entries) voids the probes taken
//! before it ([`FlowTable::changes`]).

use common::conn::EstablishedStamp;
use common::rewrite::fixed::{rewrite_fixed, IP, TCP, TCP_WITH_TS};
use common::wire::{be16, be32, MacAddr};

use super::*;
use crate::flow_table::Probe;
use crate::track::track_established;

/// How many packets ahead of the one processed its slot is probed and asked for (every tag
/// line of a burst is asked for in stage 1).
const SLOT_AHEAD: usize = 16;

/// NOP, NOP, and the kind and length of the timestamps option.
const TS_LEAD: [u8; 4] = [1, 1, 8, 10];

/// A packet that fits the template, as stage 1 read it.
#[derive(Debug, Clone, Copy)]
struct Fit {
    key: FlowKey,
    hash: u32,
    /// 20, or [`TCP_WITH_TS`].
    tcp_len: u8,
}

/// The template test: `Some` for a frame the vector path may carry.
#[inline(always)]
fn fits(f: &[u8], mac: MacAddr) -> Option<Fit> {
    if f.len() < TCP + 20 || f[0..6] != mac.0 || f[12..14] != [0x08, 0x00] || f[IP] != 0x45 {
        return None;
    }
    let total = usize::from(be16(f, IP + 2));
    let fl = f[TCP + 13];
    let tcp_len = match f[TCP + 12] >> 4 {
        5 => 20,
        8 if f[TCP + 20..TCP + 24] == TS_LEAD => TCP_WITH_TS,
        _ => return None,
    };
    let fits = total >= 20 + tcp_len
        && IP + total <= f.len()
        && be16(f, IP + 6) & 0x3fff == 0
        && f[IP + 8] > 1
        && f[IP + 9] == Protocol::TCP.0
        && fl & (flags::SYN | flags::FIN | flags::RST | flags::URG) == 0;
    if !fits {
        return None;
    }
    let key = FlowKey::new(
        Ipv4Addr(be32(f, IP + 12)),
        be16(f, TCP),
        Ipv4Addr(be32(f, IP + 16)),
        be16(f, TCP + 2),
    );
    Some(Fit {
        key,
        hash: key.symmetric_hash(),
        tcp_len: tcp_len as u8,
    })
}

/// What every packet of one burst shares.
struct BurstCtx {
    ingress: Iface,
    now_ms: u32,
    stamp: EstablishedStamp,
    /// The last destination this burst routed, and its answer: consecutive packets of one
    /// flow (or to one server) skip even the cache.
    last_hop: Option<(Ipv4Addr, Option<(usize, Hop)>)>,
}

impl<Q: PortQueue> Worker<Q> {
    /// Receives nothing, sends nothing: gives every packet of `rx` (from `port`) its fate,
    /// the common case by the vector path, the rest by [`Worker::handle`].
    pub(super) fn vector_burst(&mut self, port: usize, rx: &mut Burst<Q::Pkt, BURST>, now_ms: u32) {
        let mut bc = BurstCtx {
            ingress: self.ctx.ifaces.untagged(port),
            now_ms,
            stamp: EstablishedStamp::new(now_ms, &self.ctx.tcp_timeouts_ms),
            last_hop: None,
        };
        let n = rx.len();
        let (fit, mut probes) = self.pipeline_start(port, rx);
        for (i, pkt) in rx.drain().enumerate() {
            self.pipeline_step(&fit, &mut probes, i, n);
            match fit[i] {
                Some(f) => {
                    let (probe, changes) = probes[i];
                    if let Err(pkt) = self.fast(pkt, &f, probe, changes, &mut bc) {
                        self.handle(port, pkt, now_ms, Some((f.key, f.hash)));
                    }
                }
                None => self.handle(port, pkt, now_ms, None),
            }
        }
    }

    /// Stage 1 for every packet of `rx` (from `port`), each tag line asked for as its hash
    /// is known, and the first [`SLOT_AHEAD`] packets probed. Then a rolling pipeline
    /// ([`Worker::pipeline_step`]): packet i is processed while the slot of packet
    /// i + [`SLOT_AHEAD`] is on its way.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn pipeline_start(
        &self,
        port: usize,
        rx: &Burst<Q::Pkt, BURST>,
    ) -> ([Option<Fit>; BURST], [(Probe, u64); BURST]) {
        let mac = self.ctx.macs[port];
        let n = rx.len();
        let mut fit = [None; BURST];
        for (slot, pkt) in fit.iter_mut().zip(rx.iter()) {
            *slot = fits(pkt.data(), mac);
            if let Some(f) = slot {
                crate::hint::prefetch(self.table.tag_line(f.hash));
            }
        }
        let mut probes = [(Probe::Absent, 0u64); BURST];
        for i in 0..n.min(SLOT_AHEAD) {
            self.probe_ahead(&fit, &mut probes, i);
        }
        (fit, probes)
    }

    /// What goes ahead of packet `i` of `n`.
    #[inline(always)]
    fn pipeline_step(
        &self,
        fit: &[Option<Fit>; BURST],
        probes: &mut [(Probe, u64); BURST],
        i: usize,
        n: usize,
    ) {
        if i + SLOT_AHEAD < n {
            self.probe_ahead(fit, probes, i + SLOT_AHEAD);
        }
    }

    #[inline(always)]
    fn probe_ahead(
        &self,
        fit: &[Option<Fit>; BURST],
        probes: &mut [(Probe, u64); BURST],
        i: usize,
    ) {
        if let Some(f) = fit[i] {
            let p = self.table.probe(f.hash);
            if let Probe::At(at) = p {
                self.table.prefetch_slot(at);
            }
            probes[i] = (p, self.table.changes());
        }
    }

    /// The next hop of `dst` for a packet from `ingress` if the vector path can send it
    /// there: routed, not back where it came from, untagged, resolved.
    #[inline]
    fn fast_hop(&self, dst: Ipv4Addr, ingress: Iface) -> Option<(usize, Hop)> {
        if self.ctx.router.is_own(dst) || dst.0 >> 28 == 0xe || dst.0 == u32::MAX {
            return None;
        }
        let hop = self.ctx.router.lookup(dst)?;
        let out = self.ctx.ifaces.get(hop.out);
        if hop.out == ingress || out.vlan.is_some() {
            return None;
        }
        let mac = self.neighbours.get(hop.out, hop.ip)?;
        Some((
            out.port,
            Hop {
                src: self.ctx.macs[out.port],
                dst: mac,
            },
        ))
    }

    /// One packet of the template: tracked, rewritten and buffered, or dropped by the
    /// tracker; given back untouched when the slow path must decide.
    #[inline]
    fn fast(
        &mut self,
        mut pkt: Q::Pkt,
        f: &Fit,
        probe: Probe,
        changes: u64,
        bc: &mut BurstCtx,
    ) -> Result<(), Q::Pkt> {
        let dst = f.key.dst;
        let hop = match bc.last_hop {
            Some((last, hop)) if last == dst => hop,
            _ => {
                let hop = match self.hops.get(dst, bc.ingress) {
                    Some(hop) => hop,
                    None => {
                        let hop = self.fast_hop(dst, bc.ingress);
                        self.hops.put(dst, bc.ingress, hop);
                        hop
                    }
                };
                bc.last_hop = Some((dst, hop));
                hop
            }
        };
        let Some((out, l2)) = hop else {
            return Err(pkt);
        };
        let Some((i, dir)) = self.table.lookup_probed(&f.key, f.hash, probe, changes) else {
            return Err(pkt);
        };
        let conn = self.table.get_mut(i);
        // Proxied flows go to control; translated options (a timestamp to add or strip, SACK
        // to remove, a segment to split) are the slow path's.
        if !conn.rewrite_is_fixed(dir) {
            return Err(pkt);
        }
        let frame = pkt.data_mut();
        let p = conn.params(dir);
        let total = u32::from(be16(frame, IP + 2));
        let seg = Segment {
            flags: frame[TCP + 13],
            seq: SeqNumber(be32(frame, TCP + 4)),
            ack: SeqNumber(be32(frame, TCP + 8).wrapping_sub(p.ack_sub)),
            window: be16(frame, TCP + 14),
            payload_len: total - 20 - u32::from(f.tcp_len),
            sack_max: None,
            syn_wscale: None,
        };
        if track_established(conn, dir, &seg) {
            conn.touch_established(bc.stamp);
        } else {
            let was_open = !is_closed(conn.state());
            match track(conn, dir, &seg, &self.ctx.track) {
                TrackVerdict::Accept => {
                    conn.touch(bc.now_ms, &self.ctx.tcp_timeouts_ms);
                    if was_open && is_closed(conn.state()) {
                        self.counters.flows_closed += 1;
                    }
                }
                TrackVerdict::Ignore => self.counters.ignored += 1,
                TrackVerdict::Drop(r) => {
                    self.dispatch(Verdict::Drop(r), pkt, bc.ingress, bc.now_ms);
                    return Ok(());
                }
            }
        }
        let rewritten = rewrite_fixed(frame, &p, &l2, usize::from(f.tcp_len));
        debug_assert!(
            rewritten,
            "the template admits no frame too short for its layout"
        );
        self.counters.forwarded += 1;
        self.counters.fast_path += 1;
        self.enqueue_tx(out, pkt);
        Ok(())
    }

    /// Looks every packet of `rx` up as the vector path does (template, hash, probe, one
    /// key compare) and forwards it untouched to the paired port: the table's cost alone,
    /// for the benchmark (`ForwardMode::Lookup`).
    #[inline(never)]
    pub(super) fn lookup_only(&mut self, port: usize, rx: &mut Burst<Q::Pkt, BURST>) {
        let out = if port ^ 1 < self.ports.len() {
            port ^ 1
        } else {
            port
        };
        let n = rx.len();
        let (fit, mut probes) = self.pipeline_start(port, rx);
        for (i, pkt) in rx.drain().enumerate() {
            self.pipeline_step(&fit, &mut probes, i, n);
            if let Some(f) = fit[i] {
                let (probe, changes) = probes[i];
                let hit = self.table.lookup_probed(&f.key, f.hash, probe, changes);
                self.counters.fast_path += u64::from(hit.is_some());
            }
            self.counters.forwarded += 1;
            self.enqueue_tx(out, pkt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tcp_frame, Envelope, Tcp, BOX_IN, CLIENT, CLIENT_MAC, SERVER};

    fn frame(t: &Tcp<'_>) -> Vec<u8> {
        let e = Envelope {
            src_mac: CLIENT_MAC,
            dst_mac: BOX_IN,
            src: CLIENT,
            dst: SERVER,
            ttl: 64,
        };
        tcp_frame(&e, t)
    }

    #[test]
    fn the_template_admits_the_common_case_only() {
        let ack = Tcp {
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 2,
            flags: flags::ACK | flags::PSH,
            window: 100,
            payload: b"data",
            ..Default::default()
        };
        let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let f = fits(&frame(&ack), BOX_IN).expect("no options");
        assert_eq!(
            (f.key, f.tcp_len),
            (FlowKey::new(CLIENT, 40000, SERVER, 80), 20)
        );
        let with_ts = Tcp {
            options: &ts,
            ..ack.clone()
        };
        assert_eq!(fits(&frame(&with_ts), BOX_IN).unwrap().tcp_len, 32);
        let sack = [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let mss = [2, 4, 5, 0xb4];
        let mut ttl1 = frame(&ack);
        ttl1[IP + 8] = 1;
        let mut fragment = frame(&ack);
        fragment[IP + 6] = 0x20; // more fragments
        let mut ip_options = frame(&ack);
        ip_options[IP] = 0x46;
        let outside: Vec<(&str, Vec<u8>)> = vec![
            (
                "SYN",
                frame(&Tcp {
                    flags: flags::SYN,
                    ..ack.clone()
                }),
            ),
            (
                "FIN",
                frame(&Tcp {
                    flags: flags::FIN | flags::ACK,
                    ..ack.clone()
                }),
            ),
            (
                "RST",
                frame(&Tcp {
                    flags: flags::RST,
                    ..ack.clone()
                }),
            ),
            (
                "URG",
                frame(&Tcp {
                    flags: flags::URG | flags::ACK,
                    ..ack.clone()
                }),
            ),
            (
                "SACK",
                frame(&Tcp {
                    options: &sack,
                    ..ack.clone()
                }),
            ),
            (
                "MSS",
                frame(&Tcp {
                    options: &mss,
                    ..ack.clone()
                }),
            ),
            ("TTL 1", ttl1),
            ("fragment", fragment),
            ("IP options", ip_options),
        ];
        for (what, f) in outside {
            assert!(fits(&f, BOX_IN).is_none(), "{what}");
        }
        assert!(fits(&frame(&ack), CLIENT_MAC).is_none(), "another MAC");
        let mut short = frame(&ack);
        short.truncate(TCP + 19);
        assert!(fits(&short, BOX_IN).is_none(), "truncated");
        let mut lying = frame(&ack);
        lying[IP + 2..IP + 4].copy_from_slice(&2000u16.to_be_bytes());
        assert!(fits(&lying, BOX_IN).is_none(), "IP length beyond the frame");
    }
}
