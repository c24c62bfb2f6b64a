//! Which worker owns a packet's flow. A flow's state lives in one worker's tables, so every
//! packet of it must be processed there; a packet that arrives at another worker is handed
//! to the owner over its handoff ring (as VPP's handoff nodes do), counted, never blocking.
//!
//! - [`Steering::Rss`]: every port hashes with the symmetric Toeplitz key and a round-robin
//!   redirection table, so the NIC already puts both directions of a TCP or UDP flow, and
//!   both of an ICMP echo exchange, on the same worker. What it cannot place are ICMP errors
//!   (hashed by their own addresses, not by the packet they quote) and first fragments
//!   (hashed without ports): those, and only those, have their owner computed here, as the
//!   NIC would have for the packet they belong to.
//! - [`Steering::Software`]: the ports spread packets in a way the box cannot rely on
//!   (virtual devices, NICs without symmetric RSS): every packet with a flow has its owner
//!   computed from the flow's symmetric hash, and most of them change worker.
//! - [`Steering::One`]: a single worker owns everything.
//!
//! A packet with no flow (ARP, other protocols, later fragments) is processed where it
//! arrives: nothing about it is kept.

use common::flow::{toeplitz, FlowKey, SYMMETRIC_RSS_KEY};
use common::wire::icmp::{IcmpPacket, Message};
use common::wire::ipv4::{Ipv4Packet, Protocol};

use crate::datagram::echo_key;
use crate::port::ipv4_of;

/// How the ports spread packets over the workers' queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Steering {
    #[default]
    One,
    /// Symmetric RSS with a redirection table of `reta_size` entries, entry *i* → queue
    /// *i* mod workers.
    Rss {
        reta_size: u16,
    },
    Software,
}

/// The flow a packet belongs to, as far as its owner is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub key: FlowKey,
    /// TCP or UDP (the NIC hashes it by its ports too), or ICMP (an echo exchange, which the
    /// NIC hashes by its addresses only).
    pub protocol: Protocol,
    /// The NIC cannot have placed it: an ICMP error (owned by the packet it quotes) or a
    /// first fragment (hashed without ports).
    pub misplaced: bool,
}

/// The flow `frame` belongs to, if it has one.
pub fn owned(frame: &[u8]) -> Option<Owned> {
    let ip = ipv4_of(frame)?;
    let first_fragment = ip.is_fragment();
    let mut own = flow_of(&ip, !first_fragment)?;
    own.misplaced |= first_fragment;
    Some(own)
}

/// The flow of the datagram the ICMP error `msg` quotes (whose ports may be all that is left
/// of its transport header): what the error is about, for its owner and for the worker that
/// decides whether it is related.
pub fn quoted(msg: &IcmpPacket<&[u8]>) -> Option<Owned> {
    let q = Ipv4Packet::new_checked_quoted(msg.quoted()).ok()?;
    let own = flow_of(&q, false)?;
    Some(Owned {
        misplaced: true,
        ..own
    })
}

/// The flow of an IPv4 datagram; with `errors`, an ICMP error's is the one it quotes.
fn flow_of(ip: &Ipv4Packet<&[u8]>, errors: bool) -> Option<Owned> {
    if ip.frag_offset() != 0 {
        return None;
    }
    let l4 = ip.payload();
    let (src, dst) = (ip.src(), ip.dst());
    match ip.protocol() {
        Protocol::TCP | Protocol::UDP if l4.len() >= 4 => Some(Owned {
            key: FlowKey::new(
                src,
                u16::from_be_bytes([l4[0], l4[1]]),
                dst,
                u16::from_be_bytes([l4[2], l4[3]]),
            ),
            protocol: ip.protocol(),
            misplaced: false,
        }),
        Protocol::ICMP if l4.len() >= 8 => {
            let msg = IcmpPacket::new_unchecked(l4);
            match msg.msg_type() {
                Message::ECHO_REQUEST | Message::ECHO_REPLY => Some(Owned {
                    key: echo_key(src, dst, msg.echo_ident()),
                    protocol: Protocol::ICMP,
                    misplaced: false,
                }),
                t if t.is_error() && errors => quoted(&msg),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Steering {
    /// The worker of `workers` that owns `own`'s flow, if it may not be where it arrived.
    #[inline]
    pub fn owner(self, own: &Owned, workers: usize) -> Option<usize> {
        match self {
            Steering::One => None,
            Steering::Rss { .. } if !own.misplaced => None,
            Steering::Rss { reta_size } => {
                let hash = if own.protocol != Protocol::ICMP {
                    own.key.rss_hash()
                } else {
                    addresses_rss_hash(&own.key)
                };
                Some((hash as usize % usize::from(reta_size.max(1))) % workers)
            }
            Steering::Software => Some(software_owner(&own.key, workers)),
        }
    }
}

/// The RSS hash a NIC with the symmetric key computes for an IPv4 packet it hashes by its
/// addresses only.
fn addresses_rss_hash(key: &FlowKey) -> u32 {
    let mut input = [0u8; 8];
    input[0..4].copy_from_slice(&key.src.octets());
    input[4..8].copy_from_slice(&key.dst.octets());
    toeplitz(&SYMMETRIC_RSS_KEY, &input)
}

/// The owner under software steering: the symmetric hash's other half
/// ([`FlowKey::symmetric_hash_high`]), so the flows a worker owns still spread over the
/// whole of its table (which is indexed by [`FlowKey::symmetric_hash`]).
#[inline]
pub fn software_owner(key: &FlowKey, workers: usize) -> usize {
    ((u64::from(key.symmetric_hash_high()) * workers as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        icmp_echo_frame, icmp_echo_reply_frame, icmp_error_frame, tcp_frame, udp_frame, Envelope,
        Tcp,
    };
    use common::wire::icmp::code;
    use common::wire::{Ipv4Addr, MacAddr};

    fn env(src: Ipv4Addr, dst: Ipv4Addr) -> Envelope {
        Envelope {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src,
            dst,
            ttl: 64,
        }
    }

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 9);

    /// Every way of steering gives both directions of a flow, and the ICMP errors about it,
    /// the same owner; RSS leaves what the NIC placed where it is.
    #[test]
    fn a_flow_and_its_errors_have_one_owner() {
        let seg = |e: &Envelope, sport, dport| {
            let t = Tcp {
                sport,
                dport,
                ..Tcp::default()
            };
            tcp_frame(e, &t)
        };
        let rss = Steering::Rss { reta_size: 128 };
        for workers in [2, 3, 4] {
            for port in 1000..1100u16 {
                let out = seg(&env(A, B), port, 80);
                let back = seg(&env(B, A), 80, port);
                let error = icmp_error_frame(
                    &env(ROUTER, A),
                    Message::DST_UNREACHABLE,
                    code::FRAG_NEEDED,
                    &out,
                );
                let [o, b, e] = [&out, &back, &error].map(|f| owned(f).unwrap());
                assert!(!o.misplaced && e.misplaced);
                let sw = Steering::Software;
                let owner = sw.owner(&o, workers).unwrap();
                assert!(owner < workers);
                assert_eq!(
                    sw.owner(&b, workers),
                    Some(owner),
                    "{workers} workers, {port}"
                );
                assert_eq!(
                    sw.owner(&e, workers),
                    Some(owner),
                    "{workers} workers, {port}"
                );
                assert_eq!(rss.owner(&o, workers), None);
                // The queue a NIC with the same table picks for the segment.
                let nic = (o.key.rss_hash() as usize % 128) % workers;
                assert_eq!(
                    rss.owner(&e, workers),
                    Some(nic),
                    "{workers} workers, {port}"
                );
            }
        }
    }

    #[test]
    fn echo_exchanges_and_udp_flows_are_owned_too() {
        let rss = Steering::Rss { reta_size: 128 };
        let (ping, pong) = (
            icmp_echo_frame(&env(A, B), 7, 1, b"x"),
            icmp_echo_reply_frame(&env(B, A), 7, 1, b"x"),
        );
        let (p, q) = (owned(&ping).unwrap(), owned(&pong).unwrap());
        assert!(p.protocol == Protocol::ICMP && p.key == q.key.reversed());
        let error = icmp_error_frame(
            &env(ROUTER, A),
            Message::TIME_EXCEEDED,
            code::TTL_EXCEEDED,
            &ping,
        );
        let e = owned(&error).unwrap();
        let sw = Steering::Software;
        assert_eq!(sw.owner(&p, 4), sw.owner(&q, 4));
        assert_eq!(sw.owner(&e, 4), sw.owner(&p, 4));
        assert_eq!(
            rss.owner(&p, 4),
            None,
            "the NIC hashes both by their addresses"
        );
        let nic = (addresses_rss_hash(&p.key) as usize % 128) % 4;
        assert_eq!(rss.owner(&e, 4), Some(nic));
        let dns = owned(&udp_frame(&env(A, B), 40000, 53, b"q")).unwrap();
        assert!(dns.protocol == Protocol::UDP && dns.key == FlowKey::new(A, 40000, B, 53));
        assert_eq!(Steering::One.owner(&dns, 1), None);
    }

    #[test]
    fn owners_spread_evenly() {
        for workers in [2usize, 3, 4] {
            let mut per = vec![0u32; workers];
            for i in 0..12_000u32 {
                let key = FlowKey::new(Ipv4Addr(0xc612_0000 | i), 40000, B, 80);
                per[software_owner(&key, workers)] += 1;
            }
            let even = 12_000 / workers as u32;
            assert!(
                per.iter().all(|n| n.abs_diff(even) < even / 10),
                "{workers} workers: {per:?}"
            );
        }
    }
}
