//! Every packet gets a verdict, and every drop a named reason with its own counter.

use common::wire::WireError;

/// Why the fast path dropped a packet. Each reason is a counter (see [`DropCounters`]) and a
/// key of the `drops` object in the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the header it claims to be.
    Truncated,
    /// IPv4 header length, version or total length invalid.
    BadIpHeader,
    /// TCP data offset invalid.
    BadTcpHeader,
    /// ARP that is not Ethernet/IPv4.
    BadArp,
    /// More VLAN tags than supported.
    VlanTags,
    /// An EtherType the box does not handle (IPv6, LLDP, ...).
    UnsupportedEtherType,
    /// A TCP or UDP fragment: no ports to classify it by.
    Fragment,
    /// The policy said deny.
    PolicyDeny,
    /// A TCP segment other than a SYN for a connection the box does not know.
    NoFlow,
    /// A segment invalid in the connection's state.
    OutOfState,
    /// Sequence number beyond the receiver's window.
    OutOfWindow,
    /// Acknowledges data that was never sent.
    AckBeyondData,
    /// A RST outside the window.
    RstOutOfWindow,
    /// No room in the flow table for a new connection.
    FlowTableFull,
    /// The ring to the control plane was full.
    ControlRingFull,
    /// The port's TX queue stayed full through the retries.
    TxFull,
    /// No route to the destination.
    NoRoute,
    /// TTL expired and the control plane could not be told.
    TtlExceeded,
    /// A packet from one port addressed to a subnet of the same port (no hairpin).
    Hairpin,
    /// A frame for another host's MAC, or an IP broadcast/multicast: not routed.
    NotForUs,
    /// A segment too large for its receiver, to be split, whose TCP checksum is wrong (the
    /// receiver would drop it too; split, it would arrive as valid pieces).
    BadChecksum,
}

/// What the worker does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it out of this port (index), already rewritten.
    Forward(usize),
    /// Hand it to the control plane.
    ToControl(crate::ring::Why),
    Drop(DropReason),
}

impl DropReason {
    pub const ALL: [DropReason; 21] = [
        DropReason::Truncated,
        DropReason::BadIpHeader,
        DropReason::BadTcpHeader,
        DropReason::BadArp,
        DropReason::VlanTags,
        DropReason::UnsupportedEtherType,
        DropReason::Fragment,
        DropReason::PolicyDeny,
        DropReason::NoFlow,
        DropReason::OutOfState,
        DropReason::OutOfWindow,
        DropReason::AckBeyondData,
        DropReason::RstOutOfWindow,
        DropReason::FlowTableFull,
        DropReason::ControlRingFull,
        DropReason::TxFull,
        DropReason::NoRoute,
        DropReason::TtlExceeded,
        DropReason::Hairpin,
        DropReason::NotForUs,
        DropReason::BadChecksum,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The counter's name in statistics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadTcpHeader => "bad_tcp_header",
            DropReason::BadArp => "bad_arp",
            DropReason::VlanTags => "vlan_tags",
            DropReason::UnsupportedEtherType => "unsupported_ethertype",
            DropReason::Fragment => "fragment",
            DropReason::PolicyDeny => "policy_deny",
            DropReason::NoFlow => "no_flow",
            DropReason::OutOfState => "out_of_state",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::AckBeyondData => "ack_beyond_data",
            DropReason::RstOutOfWindow => "rst_out_of_window",
            DropReason::FlowTableFull => "flow_table_full",
            DropReason::ControlRingFull => "control_ring_full",
            DropReason::TxFull => "tx_full",
            DropReason::NoRoute => "no_route",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::Hairpin => "hairpin",
            DropReason::NotForUs => "not_for_us",
            DropReason::BadChecksum => "bad_checksum",
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadIhl | WireError::BadVersion | WireError::BadTotalLength => {
                DropReason::BadIpHeader
            }
            WireError::BadDataOffset | WireError::BadOption => DropReason::BadTcpHeader,
            WireError::BadArp => DropReason::BadArp,
            WireError::TooManyVlanTags => DropReason::VlanTags,
        }
    }
}

/// One counter per drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters(pub [u64; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DropReason::COUNT])
    }
}

impl DropCounters {
    #[inline]
    pub fn count(&mut self, r: DropReason) {
        self.0[r as usize] += 1;
    }
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn add(&mut self, other: &DropCounters) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
    /// (name, count) for every reason, zero or not.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (r.name(), self.get(*r)))
    }
}

/// An object of every reason's name and count, zero or not, the names in sorted order (the
/// `drops` of each worker in the statistics JSON).
impl serde::Serialize for DropCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().collect::<std::collections::BTreeMap<_, _>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_complete_and_in_discriminant_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
