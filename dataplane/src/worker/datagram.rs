//! The worker's half of stateful UDP and ICMP ([`crate::datagram`]): which flow a UDP
//! datagram or ICMP echo belongs to, the policy for the first packet of a flow, and ICMP
//! errors that pass as part of the flow they quote (conntrack's RELATED).

use super::*;
use crate::datagram::{echo_key, Seen};
use crate::steer::quoted;
use common::wire::icmp::Message;

/// What a non-TCP packet is to the datagram flows.
enum Class {
    /// A UDP datagram or an ICMP echo: it belongs to the flow `key` if there is one; if not,
    /// the policy judges it (by `dport`) and, if `opens` and it passes, it makes the flow.
    Flow {
        kind: Kind,
        key: FlowKey,
        dport: Option<u16>,
        opens: bool,
        /// The way it must travel on its flow, if only one (echo requests and replies).
        only: Option<Direction>,
    },
    /// An ICMP error: passes if it quotes a packet of a tracked flow, else by the policy.
    Error,
    /// Anything else (other protocols, other ICMP, later fragments): the policy alone.
    Plain,
}

impl<Q: PortQueue> Worker<Q> {
    /// The non-TCP half of `process`: `ip` is the IPv4 datagram (checked). Ok: forward it.
    pub(super) fn inspect_datagram(
        &mut self,
        zones: Zones,
        ip: &mut [u8],
        now_ms: u32,
    ) -> Result<(), Verdict> {
        let p = Ipv4Packet::new_unchecked(&*ip);
        let (proto, src, dst) = (p.protocol(), p.src(), p.dst());
        let (dport, opens) = match classify(&p).map_err(Verdict::Drop)? {
            Class::Flow {
                kind,
                key,
                dport,
                opens,
                only,
            } => {
                if let Seen::Known(_) = self.datagrams.see(kind, &key, only, now_ms) {
                    return Ok(());
                }
                (dport, opens.then_some((kind, key)))
            }
            Class::Error => {
                if self.icmp_related(ip, now_ms) {
                    self.counters.icmp_related += 1;
                    return Ok(());
                }
                (None, None)
            }
            Class::Plain => (None, None),
        };
        match first_match(&self.ctx.policy, &zones.traffic(proto.0, src, dst, dport)) {
            Some((_, r)) if r.action == Action::Pass => {}
            _ => return Err(Verdict::Drop(DropReason::PolicyDeny)),
        }
        let Some((kind, key)) = opens else {
            return Ok(());
        };
        match self.datagrams.create(kind, key, now_ms) {
            Ok(()) => {
                match kind {
                    Kind::Udp => self.counters.udp_flows_created += 1,
                    Kind::IcmpEcho => self.counters.icmp_flows_created += 1,
                }
                Ok(())
            }
            Err(InsertError::Full) => Err(Verdict::Drop(DropReason::FlowTableFull)),
            // Its flow exists the other way round (an echo request back toward the sender of
            // one): the policy passed it, it opens nothing new.
            Err(InsertError::Exists(_)) => Ok(()),
        }
    }

    /// Whether `ip` (an IPv4 datagram) is an ICMP error quoting a packet of a tracked flow
    /// (the flow `steer::quoted` says it is about): a TCP connection (whose quote is rewritten
    /// back if it is spliced), a UDP flow or an ICMP echo exchange (either way round).
    fn icmp_related(&mut self, ip: &mut [u8], now_ms: u32) -> bool {
        let Ok(p) = Ipv4Packet::new_checked(&mut *ip) else {
            return false;
        };
        let hl = p.header_len();
        let end = usize::from(p.total_len()).min(ip.len());
        let icmp = &mut ip[hl..end];
        let Some(about) = IcmpPacket::new_checked(&*icmp)
            .ok()
            .and_then(|m| quoted(&m))
        else {
            return false;
        };
        match about.protocol {
            Protocol::UDP => self.datagrams.related(Kind::Udp, &about.key, now_ms),
            Protocol::ICMP => self.datagrams.related(Kind::IcmpEcho, &about.key, now_ms),
            Protocol::TCP => {
                let Some((i, dir)) = self.table.lookup(&about.key) else {
                    return false;
                };
                let params = self.table.get(i).params(dir);
                if !params.is_identity() && unrewrite_icmp_quote(icmp, &params).is_ok() {
                    self.counters.icmp_quotes_rewritten += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// Ages a slice of the datagram tables.
    pub(super) fn expire_datagrams(&mut self, now_ms: u32, budget: usize) {
        self.counters.datagram_flows_expired += self.datagrams.expire(now_ms, budget) as u64;
    }
}

/// What `p` (a checked IPv4 datagram, not TCP) is to the datagram flows; a UDP or ICMP
/// header too short for what it must hold is its drop reason.
fn classify(p: &Ipv4Packet<&[u8]>) -> Result<Class, DropReason> {
    let (src, dst, l4) = (p.src(), p.dst(), p.payload());
    // A later fragment carries no header of its own: the policy judges it by its addresses
    // (a rule with ports never matches it), and it belongs to no flow.
    if p.frag_offset() != 0 {
        return Ok(Class::Plain);
    }
    Ok(match p.protocol() {
        Protocol::UDP => {
            if l4.len() < 8 {
                return Err(DropReason::Truncated);
            }
            let (sport, dport) = (
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]]),
            );
            Class::Flow {
                kind: Kind::Udp,
                key: FlowKey::new(src, sport, dst, dport),
                dport: Some(dport),
                opens: true,
                only: None,
            }
        }
        Protocol::ICMP => {
            let msg = IcmpPacket::new_checked(l4).map_err(|_| DropReason::Truncated)?;
            match msg.msg_type() {
                t if t.is_error() => Class::Error,
                // A request opens an exchange; a reply belongs to one, or the policy judges it
                // and it opens nothing.
                t @ (Message::ECHO_REQUEST | Message::ECHO_REPLY) => {
                    let request = t == Message::ECHO_REQUEST;
                    Class::Flow {
                        kind: Kind::IcmpEcho,
                        key: echo_key(src, dst, msg.echo_ident()),
                        dport: None,
                        opens: request,
                        only: Some(if request {
                            Direction::ClientToServer
                        } else {
                            Direction::ServerToClient
                        }),
                    }
                }
                _ => Class::Plain,
            }
        }
        _ => Class::Plain,
    })
}
