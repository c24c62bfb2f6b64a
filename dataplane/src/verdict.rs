//! Every packet gets a verdict, and every drop a named reason with its own counter.

use common::wire::WireError;

/// Declares [`DropReason`] from a list of documented `Variant => "name"` lines, with
/// [`DropReason::ALL`] (in discriminant order), [`DropReason::COUNT`] and
/// [`DropReason::name`] made from the same list.
macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Why the fast path dropped a packet. Each reason is a counter (see
        /// [`DropCounters`]) and a key of the `drops` object in the statistics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            pub const ALL: [DropReason; [$($name),*].len()] = [$(DropReason::$variant),*];
            pub const COUNT: usize = Self::ALL.len();

            /// The counter's name in statistics.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than the header it claims to be.
    Truncated => "truncated",
    /// IPv4 header length, version or total length invalid.
    BadIpHeader => "bad_ip_header",
    /// TCP data offset invalid.
    BadTcpHeader => "bad_tcp_header",
    /// ARP that is not Ethernet/IPv4.
    BadArp => "bad_arp",
    /// More VLAN tags than supported.
    VlanTags => "vlan_tags",
    /// An 802.1Q tag that names no VLAN of the port it arrived on, or two tags (a
    /// sub-interface is one tag).
    UnknownVlan => "unknown_vlan",
    /// A frame leaving by a VLAN had no headroom for its tag.
    NoHeadroom => "no_headroom",
    /// An EtherType the box does not handle (IPv6, LLDP, ...).
    UnsupportedEtherType => "unsupported_ethertype",
    /// A TCP fragment: no ports to find its connection by. (A later UDP fragment has none
    /// either: the policy judges it by its addresses.)
    Fragment => "fragment",
    /// The policy said deny.
    PolicyDeny => "policy_deny",
    /// A TCP segment other than a SYN for a connection the box does not know.
    NoFlow => "no_flow",
    /// A segment invalid in the connection's state.
    OutOfState => "out_of_state",
    /// Sequence number beyond the receiver's window.
    OutOfWindow => "out_of_window",
    /// Acknowledges data that was never sent.
    AckBeyondData => "ack_beyond_data",
    /// A RST outside the window.
    RstOutOfWindow => "rst_out_of_window",
    /// No room in the flow table for a new connection.
    FlowTableFull => "flow_table_full",
    /// The ring to the control plane was full.
    ControlRingFull => "control_ring_full",
    /// The handoff ring of the worker that owns the packet's flow was full.
    HandoffFull => "handoff_full",
    /// The port's TX queue stayed full through the retries.
    TxFull => "tx_full",
    /// No route to the destination.
    NoRoute => "no_route",
    /// A transit packet whose TTL ran out (RFC 1812 §5.3.1: discarded). The worker hands it
    /// to control, which answers with ICMP time exceeded when it may (`icmp_time_exceeded_sent`
    /// and `icmp_rate_limited` among control's counters); the packet itself ends here.
    TtlExceeded => "ttl_exceeded",
    /// A packet from one interface addressed to a subnet of the same interface (no hairpin).
    Hairpin => "hairpin",
    /// A frame for another host's MAC, or an IP broadcast/multicast: not routed.
    NotForUs => "not_for_us",
    /// A segment too large for its receiver, to be split, whose TCP checksum is wrong (the
    /// receiver would drop it too; split, it would arrive as valid pieces).
    BadChecksum => "bad_checksum",
}

/// What the worker does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it out of this port (index), already rewritten (its tag then follows
    /// [`crate::worker`]'s `Resize::retag`).
    Forward(usize),
    /// Hand it to the control plane.
    ToControl(crate::contract::Why),
    Drop(DropReason),
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
