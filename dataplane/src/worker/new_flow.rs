//! New flows: what the policy says about a segment without one (a SYN, or the ACK of a SYN
//! cookie), and the objects a `pass` rule's SYN creates.

use super::*;
use common::config::first_match;

impl<Q: PortQueue> Worker<Q> {
    /// The rule for a new TCP connection `key` between `zones`.
    fn tcp_rule(&self, zones: Zones, key: &FlowKey) -> Option<(usize, &common::config::Rule)> {
        let t = zones.traffic(Protocol::TCP.0, key.src, key.dst, Some(key.dport));
        first_match(&self.ctx.policy, &t)
    }

    /// A segment without a flow: dropped, unless it may be the ACK answering a SYN cookie
    /// the control plane sent for a `proxy` rule (only control can tell).
    #[cold]
    pub(super) fn no_flow(&self, zones: Zones, key: FlowKey, fl: u8) -> Verdict {
        let cookies = self.ctx.syn_cookies;
        if cookies && fl & (flags::SYN | flags::ACK | flags::RST) == flags::ACK {
            let rule = self.tcp_rule(zones, &key);
            if let Some((idx, r)) = rule {
                if matches!(r.action, Action::Proxy { .. }) {
                    return Verdict::ToControl(Why::ProxyAck {
                        rule: idx as u16,
                        action: r.action,
                    });
                }
            }
        }
        Verdict::Drop(DropReason::NoFlow)
    }

    pub(super) fn new_syn(
        &mut self,
        zones: Zones,
        key: FlowKey,
        tcp: &TcpPacket<&[u8]>,
        now_ms: u32,
    ) -> Result<(common::conn::SpliceParams, OptionMap, Option<u16>), Verdict> {
        let rule = self.tcp_rule(zones, &key);
        match rule {
            Some((_, r)) if r.action == Action::Pass => {
                let mut conn = Conn::new_pass(&key, 0);
                let opts = tcp.option_map();
                init_from_syn(&mut conn, &segment_of(tcp, &opts, 0));
                conn.touch(now_ms, &self.ctx.tcp_timeouts_ms);
                match self.table.insert(conn) {
                    Ok(_) => {
                        self.counters.flows_created += 1;
                        Ok((Default::default(), opts, None))
                    }
                    Err(InsertError::Full) => Err(Verdict::Drop(DropReason::FlowTableFull)),
                    Err(InsertError::Exists(_)) => Err(Verdict::Drop(DropReason::OutOfState)),
                }
            }
            Some((idx, r)) if matches!(r.action, Action::Proxy { .. }) => {
                let (rule, action) = (idx as u16, r.action);
                if self.rings.syn_cookies.load(Ordering::Relaxed) {
                    // Control answers with a cookie and keeps nothing; nor does the worker.
                    return Err(Verdict::ToControl(Why::ProxySyn {
                        rule,
                        action,
                        placeholder: false,
                    }));
                }
                // A placeholder, so the rest of the connection follows its SYN to control.
                // It lives for the SYN-SENT timeout until control confirms it.
                let mut conn = Conn::new_pass(&key, 0);
                conn.set_flag(ConnFlags::PROXIED, true);
                conn.touch(now_ms, &self.ctx.tcp_timeouts_ms);
                match self.table.insert(conn) {
                    Ok(_) => Err(Verdict::ToControl(Why::ProxySyn {
                        rule,
                        action,
                        placeholder: true,
                    })),
                    Err(InsertError::Full) => Err(Verdict::Drop(DropReason::FlowTableFull)),
                    Err(InsertError::Exists(_)) => Err(Verdict::Drop(DropReason::OutOfState)),
                }
            }
            _ => Err(Verdict::Drop(DropReason::PolicyDeny)),
        }
    }
}
