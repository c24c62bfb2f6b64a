//! The box's interfaces as the workers see them: which interface a frame arrived on (its port
//! and its 802.1Q tag), and the tag a frame must carry to leave by another.
//!
//! An interface is a port's untagged traffic or one VLAN of a port ([`Iface`] indexes them
//! in the configuration's order). A sub-interface is one 802.1Q tag (TPID 0x8100): a frame
//! with a tag that no sub-interface of its port has, or with two tags, belongs to no
//! interface and is dropped (`unknown_vlan`), as a router drops a VLAN it does not carry.
//! A tag with VLAN id 0 only carries a priority (802.1p) and counts as untagged.

use common::config::{Config, Iface, Zone};
use common::wire::be16;
use common::wire::ethernet::{EtherType, EthernetFrame};

use crate::packet::Packet;
use crate::verdict::DropReason;

/// Where the tag sits: after the two MAC addresses.
const TAG_AT: usize = 12;
const TAG_LEN: usize = 4;

/// What a worker knows of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Index of its port.
    pub port: usize,
    /// The VLAN id its frames carry, `None` untagged.
    pub vlan: Option<u16>,
    pub zone: Zone,
}

/// Every interface of the box, and per port how a frame finds its interface.
#[derive(Debug, Clone)]
pub struct Ifaces {
    info: Vec<IfaceInfo>,
    /// Per port: its untagged interface, and its VLANs as (id, interface).
    ports: Vec<(Iface, Vec<(u16, Iface)>)>,
}

impl Ifaces {
    pub fn new(config: &Config) -> Ifaces {
        let links = config.links();
        let mut ports: Vec<(Iface, Vec<(u16, Iface)>)> = Vec::new();
        let info = links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let me = Iface(i as u8);
                let port = usize::from(l.port);
                match l.vlan {
                    None => ports.push((me, Vec::new())),
                    Some(id) => {
                        if let Some((_, vlans)) = ports.get_mut(port) {
                            vlans.push((id, me));
                        }
                    }
                }
                IfaceInfo {
                    port,
                    vlan: l.vlan,
                    zone: l.zone,
                }
            })
            .collect();
        Ifaces { info, ports }
    }

    /// How many interfaces there are.
    pub fn len(&self) -> usize {
        self.info.len()
    }

    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// How many ports there are.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }

    #[inline]
    pub fn get(&self, i: Iface) -> IfaceInfo {
        self.info[i.index()]
    }

    /// The port of interface `i`.
    #[inline]
    pub fn port_of(&self, i: Iface) -> usize {
        self.info[i.index()].port
    }

    /// The untagged interface of `port`.
    #[inline]
    pub fn untagged(&self, port: usize) -> Iface {
        self.ports[port].0
    }

    /// The interface a frame that arrived on `port` belongs to.
    #[inline]
    pub fn ingress(&self, port: usize, eth: &EthernetFrame<&[u8]>) -> Result<Iface, DropReason> {
        let (untagged, vlans) = &self.ports[port];
        match eth.vlan_count() {
            0 => Ok(*untagged),
            1 => match eth.vlan_tag(0) {
                Some((EtherType::VLAN, tci)) => match tci & 0x0fff {
                    0 => Ok(*untagged),
                    id => vlans
                        .iter()
                        .find(|(v, _)| *v == id)
                        .map(|(_, i)| *i)
                        .ok_or(DropReason::UnknownVlan),
                },
                _ => Err(DropReason::UnknownVlan),
            },
            _ => Err(DropReason::UnknownVlan),
        }
    }
}

/// What a forwarded frame's tag needs that cannot be done in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retag {
    /// Insert a tag with this VLAN id (the frame grows by 4 bytes in its headroom).
    Push(u16),
    /// Remove the tag.
    Pop,
}

/// Gives `frame` (whose Ethernet header has at most one tag, as [`Ifaces::ingress`] accepts)
/// the tag of an interface with VLAN `want`: rewrites the VLAN id in place when both have a
/// tag (keeping the priority bits), or says what [`retag`] must do.
#[inline]
pub fn tag_for(frame: &mut [u8], want: Option<u16>) -> Option<Retag> {
    let tagged = frame.len() >= TAG_AT + TAG_LEN && be16(frame, TAG_AT) == EtherType::VLAN.0;
    match (tagged, want) {
        (false, None) => None,
        (false, Some(id)) => Some(Retag::Push(id)),
        (true, None) => Some(Retag::Pop),
        (true, Some(id)) => {
            let tci = be16(frame, TAG_AT + 2);
            let tci = (tci & 0xf000) | (id & 0x0fff);
            frame[TAG_AT + 2..TAG_AT + 4].copy_from_slice(&tci.to_be_bytes());
            None
        }
    }
}

/// Adds or removes the 802.1Q tag; false (nothing changed) when there is no headroom for it.
pub fn retag<P: Packet>(pkt: &mut P, r: Retag) -> bool {
    match r {
        Retag::Push(id) => {
            if !pkt.grow_front(TAG_LEN) {
                return false;
            }
            let f = pkt.data_mut();
            f.copy_within(TAG_LEN..TAG_LEN + TAG_AT, 0);
            f[TAG_AT..TAG_AT + 2].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
            f[TAG_AT + 2..TAG_AT + 4].copy_from_slice(&(id & 0x0fff).to_be_bytes());
            true
        }
        Retag::Pop => {
            let f = pkt.data_mut();
            if f.len() < TAG_AT + TAG_LEN {
                return false;
            }
            f.copy_within(0..TAG_AT, TAG_LEN);
            pkt.shrink_front(TAG_LEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untagged() -> Vec<u8> {
        let mut f = vec![0u8; 20];
        f[..6].copy_from_slice(&[1, 1, 1, 1, 1, 1]);
        f[6..12].copy_from_slice(&[2, 2, 2, 2, 2, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14..].copy_from_slice(&[0x45, 9, 9, 9, 9, 9]);
        f
    }

    #[test]
    fn push_then_pop_restores_the_frame() {
        let plain = untagged();
        let mut f = plain.clone();
        assert_eq!(tag_for(&mut f, Some(100)), Some(Retag::Push(100)));
        assert!(retag(&mut f, Retag::Push(100)));
        assert_eq!(f.len(), plain.len() + 4);
        assert_eq!(&f[..12], &plain[..12], "addresses first");
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&f[16..], &plain[12..]);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV4);
        assert_eq!(tag_for(&mut f, None), Some(Retag::Pop));
        assert!(retag(&mut f, Retag::Pop));
        assert_eq!(f, plain);
    }

    #[test]
    fn rewrites_the_id_in_place_keeping_the_priority() {
        let mut f = untagged();
        retag(&mut f, Retag::Push(100));
        f[14] |= 0xa0; // priority 5
        assert_eq!(tag_for(&mut f, Some(200)), None);
        assert_eq!(u16::from_be_bytes([f[14], f[15]]), 0xa000 | 200);
        assert_eq!(tag_for(&mut untagged(), None), None);
    }

    #[test]
    fn ingress_by_port_and_tag() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/testbed-multiport.yaml"
        ))
        .unwrap();
        let cfg = common::config::parse(&text, "testbed-multiport.yaml").unwrap();
        let ifaces = Ifaces::new(&cfg);
        let links = cfg.links();
        assert_eq!(ifaces.len(), links.len());
        let vlan100 = cfg.iface("inside2.100").unwrap();
        let port = ifaces.port_of(vlan100);
        let mut f = untagged();
        let check = |f: &[u8]| ifaces.ingress(port, &EthernetFrame::new_checked(f).unwrap());
        assert_eq!(check(&f), Ok(ifaces.untagged(port)));
        retag(&mut f, Retag::Push(100));
        assert_eq!(check(&f), Ok(vlan100));
        assert_eq!(ifaces.get(vlan100).vlan, Some(100));
        tag_for(&mut f, Some(101));
        assert_eq!(check(&f), Err(DropReason::UnknownVlan));
        tag_for(&mut f, Some(0));
        assert_eq!(check(&f), Ok(ifaces.untagged(port)), "priority tag");
        // The same tag on a port without that VLAN.
        tag_for(&mut f, Some(100));
        assert_eq!(
            ifaces.ingress(0, &EthernetFrame::new_checked(&f[..]).unwrap()),
            Err(DropReason::UnknownVlan)
        );
        for (i, l) in links.iter().enumerate() {
            let info = ifaces.get(Iface(i as u8));
            assert_eq!(
                (info.port, info.vlan, info.zone),
                (usize::from(l.port), l.vlan, l.zone)
            );
        }
    }
}
