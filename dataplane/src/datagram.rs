//! Stateful UDP and ICMP echo (conntrack's `udp` and `icmp`): the first packet the policy
//! passes makes a flow, and the packets coming back match it whatever the policy says about
//! their direction (a DNS answer from port 53 on the outside is the reply to a query, not a
//! new connection from the outside). A flow lives as long as packets keep coming within its
//! timeout (`flow_table.timeouts.udp`, `.icmp`).
//!
//! A flow is a [`Datagram`] of 20 bytes in one of a worker's two [`FlowTable`]s (UDP, ICMP),
//! keyed like a TCP connection in its first packet's orientation. An ICMP echo exchange is
//! keyed by its identifier in place of both ports, `(src, id, dst, id)`: the reply, from
//! `dst` to `src` with the same identifier, is the key reversed. Two tables rather than one
//! keep an echo exchange from ever matching a UDP flow between the same hosts.

use common::flow::{Direction, FlowKey};

use crate::flow_table::{FlowTable, InsertError, Slot};

/// What a datagram flow has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum DatagramState {
    /// An empty table slot.
    #[default]
    Free = 0,
    /// Only the first packet's direction so far.
    Unreplied = 1,
    /// Both directions.
    Replied = 2,
}

impl DatagramState {
    /// The name flow listings show.
    pub fn name(self) -> &'static str {
        match self {
            DatagramState::Free => "free",
            DatagramState::Unreplied => "unreplied",
            DatagramState::Replied => "replied",
        }
    }
}

/// One UDP flow or ICMP echo exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Datagram {
    /// In the orientation of the flow's first packet.
    pub key: FlowKey,
    /// The worker's clock at the flow's last packet (wrapping milliseconds).
    pub last_seen: u32,
    pub state: DatagramState,
}

const _: () = assert!(core::mem::size_of::<Datagram>() == 20);

impl Slot for Datagram {
    #[inline]
    fn key(&self) -> FlowKey {
        self.key
    }
    #[inline]
    fn is_free(&self) -> bool {
        self.state == DatagramState::Free
    }
}

/// The IP protocols tracked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Udp,
    IcmpEcho,
}

impl Kind {
    /// The phase flow listings show for a flow of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Udp => "udp",
            Kind::IcmpEcho => "icmp",
        }
    }
}

/// The key of an ICMP echo request or reply with identifier `id` from `src` to `dst`.
pub fn echo_key(src: common::wire::Ipv4Addr, dst: common::wire::Ipv4Addr, id: u16) -> FlowKey {
    FlowKey::new(src, id, dst, id)
}

/// What a packet did to the datagram flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// It belongs to a flow (in this direction) and refreshed it.
    Known(Direction),
    /// No flow: the policy decides, and [`Datagrams::create`] makes one if it passes.
    Unknown,
}

/// A worker's UDP flows and ICMP echo exchanges.
#[derive(Debug)]
pub struct Datagrams {
    udp: FlowTable<Datagram>,
    icmp: FlowTable<Datagram>,
    /// Idle timeouts in milliseconds, by [`Kind`].
    timeout_ms: [u32; 2],
}

impl Datagrams {
    /// Tables for `capacity` flows of each kind.
    pub fn new(capacity: usize, udp_timeout_ms: u32, icmp_timeout_ms: u32) -> Datagrams {
        Datagrams {
            udp: FlowTable::new(capacity),
            icmp: FlowTable::new(capacity),
            timeout_ms: [udp_timeout_ms, icmp_timeout_ms],
        }
    }

    #[inline]
    fn table(&self, kind: Kind) -> &FlowTable<Datagram> {
        match kind {
            Kind::Udp => &self.udp,
            Kind::IcmpEcho => &self.icmp,
        }
    }

    #[inline]
    fn table_mut(&mut self, kind: Kind) -> &mut FlowTable<Datagram> {
        match kind {
            Kind::Udp => &mut self.udp,
            Kind::IcmpEcho => &mut self.icmp,
        }
    }

    /// A packet with `key` at `now_ms`: refreshes its flow if it has one and, when `only` is
    /// given, the packet travels that way on it (an echo request from the first packet's
    /// sender, a reply to it). A flow idle longer than its timeout but not yet swept away
    /// counts as gone: the packet is new.
    #[inline]
    pub fn see(&mut self, kind: Kind, key: &FlowKey, only: Option<Direction>, now_ms: u32) -> Seen {
        let timeout = self.timeout_ms[kind as usize];
        let t = self.table_mut(kind);
        let Some((i, dir)) = t.lookup(key) else {
            return Seen::Unknown;
        };
        if only.is_some_and(|o| o != dir) {
            return Seen::Unknown;
        }
        let d = t.get_mut(i);
        if now_ms.wrapping_sub(d.last_seen) > timeout {
            t.remove_at(i);
            return Seen::Unknown;
        }
        d.last_seen = now_ms;
        if dir == Direction::ServerToClient {
            d.state = DatagramState::Replied;
        }
        Seen::Known(dir)
    }

    /// Whether a packet with `key` belongs to a live flow (an ICMP error's quote), without
    /// refreshing it.
    pub fn related(&self, kind: Kind, key: &FlowKey, now_ms: u32) -> bool {
        let t = self.table(kind);
        t.lookup(key).is_some_and(|(i, _)| {
            now_ms.wrapping_sub(t.get(i).last_seen) <= self.timeout_ms[kind as usize]
        })
    }

    /// Makes the flow of a packet with `key` that the policy passed.
    pub fn create(&mut self, kind: Kind, key: FlowKey, now_ms: u32) -> Result<(), InsertError> {
        let d = Datagram {
            key,
            last_seen: now_ms,
            state: DatagramState::Unreplied,
        };
        self.table_mut(kind).insert(d).map(|_| ())
    }

    /// Visits up to `budget` slots of each table and removes the flows idle past their
    /// timeout. Returns how many went.
    pub fn expire(&mut self, now_ms: u32, budget: usize) -> usize {
        let [udp, icmp] = self.timeout_ms;
        let idle = |timeout: u32| move |d: &Datagram| now_ms.wrapping_sub(d.last_seen) > timeout;
        self.udp.expire(budget, idle(udp), |_| {}) + self.icmp.expire(budget, idle(icmp), |_| {})
    }

    /// Live flows of `kind`.
    pub fn len(&self, kind: Kind) -> usize {
        self.table(kind).len()
    }

    pub fn is_empty(&self) -> bool {
        self.udp.is_empty() && self.icmp.is_empty()
    }

    /// Every slot of `kind`'s table, free or not, in table order (bounded scans for flow
    /// listings).
    pub fn slots(&self, kind: Kind) -> &[Datagram] {
        self.table(kind).slots()
    }

    /// Every live flow of `kind` (management, not the hot path).
    pub fn iter(&self, kind: Kind) -> impl Iterator<Item = &Datagram> {
        self.table(kind).iter().map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wire::Ipv4Addr;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    fn query() -> FlowKey {
        FlowKey::new(CLIENT, 40000, SERVER, 53)
    }

    #[test]
    fn a_reply_matches_the_flow_its_query_made() {
        let mut d = Datagrams::new(64, 30_000, 30_000);
        assert_eq!(d.see(Kind::Udp, &query(), None, 0), Seen::Unknown);
        d.create(Kind::Udp, query(), 0).unwrap();
        assert_eq!(
            d.see(Kind::Udp, &query().reversed(), None, 10),
            Seen::Known(Direction::ServerToClient)
        );
        assert_eq!(
            d.see(Kind::Udp, &query(), None, 20),
            Seen::Known(Direction::ClientToServer)
        );
        let flow = d.iter(Kind::Udp).next().unwrap();
        assert_eq!((flow.state, flow.last_seen), (DatagramState::Replied, 20));
        // Another port, another flow; the same ports in ICMP, another table.
        assert_eq!(
            d.see(
                Kind::Udp,
                &FlowKey::new(CLIENT, 40001, SERVER, 53),
                None,
                20
            ),
            Seen::Unknown
        );
        assert_eq!(d.see(Kind::IcmpEcho, &query(), None, 20), Seen::Unknown);
        assert!(!d.related(Kind::IcmpEcho, &query(), 20));
        assert!(d.related(Kind::Udp, &query().reversed(), 20));
        // A packet that must travel one way on its flow and travels the other is a stranger.
        let ping = echo_key(CLIENT, SERVER, 7);
        d.create(Kind::IcmpEcho, ping, 20).unwrap();
        let request = Some(Direction::ClientToServer);
        assert_eq!(
            d.see(Kind::IcmpEcho, &ping.reversed(), request, 30),
            Seen::Unknown
        );
        assert_eq!(
            d.see(Kind::IcmpEcho, &ping, request, 30),
            Seen::Known(Direction::ClientToServer)
        );
        let flow = d.iter(Kind::IcmpEcho).next().unwrap();
        assert_eq!((flow.state, flow.last_seen), (DatagramState::Unreplied, 30));
    }

    #[test]
    fn an_idle_flow_is_gone_before_and_after_the_sweep() {
        let mut d = Datagrams::new(64, 30_000, 5_000);
        d.create(Kind::Udp, query(), 0).unwrap();
        let ping = echo_key(CLIENT, SERVER, 7);
        d.create(Kind::IcmpEcho, ping, 0).unwrap();
        // Each packet restarts the timeout.
        assert!(matches!(
            d.see(Kind::Udp, &query(), None, 29_000),
            Seen::Known(_)
        ));
        assert_eq!(d.expire(40_000, 1000), 1, "the echo, idle for 40 s");
        assert_eq!((d.len(Kind::Udp), d.len(Kind::IcmpEcho)), (1, 0));
        // Past its timeout but not yet swept: the reply is a stranger, the flow goes.
        assert!(!d.related(Kind::Udp, &query(), 59_001));
        assert_eq!(
            d.see(Kind::Udp, &query().reversed(), None, 59_001),
            Seen::Unknown
        );
        assert!(d.is_empty());
        assert_eq!(d.expire(60_000, 1000), 0);
    }

    #[test]
    fn a_full_table_refuses_new_flows() {
        let mut d = Datagrams::new(8, 30_000, 30_000);
        let key = |p: u16| FlowKey::new(CLIENT, p, SERVER, 53);
        let made = (0..64).filter(|p| d.create(Kind::Udp, key(*p), 0).is_ok());
        let made = made.count();
        assert!((8..64).contains(&made), "{made}");
        assert_eq!(d.create(Kind::Udp, key(100), 0), Err(InsertError::Full));
        assert!(matches!(
            d.create(Kind::Udp, key(0).reversed(), 0),
            Err(InsertError::Exists(_) | InsertError::Full)
        ));
    }
}
