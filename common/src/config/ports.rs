//! The box's ports as the validated configuration has them: each port with its device and
//! VLANs, and the interfaces (a port's untagged traffic, or one of its VLANs) that routes,
//! the policy's zones and the workers see, indexed by [`Iface`].

use core::fmt;

use super::types::{Config, Zone};
use super::values::Cidr;
use crate::wire::{Ipv4Addr, MacAddr};

/// One port of the box: its device, its own untagged interface (`addresses`, `zone`) and
/// its 802.1Q sub-interfaces (`vlans`). Port *i* of the list is DPDK port *i*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// How routes and reports name the port (its VLANs are `NAME.ID`).
    pub name: String,
    /// The zone of the port's untagged traffic.
    pub zone: Zone,
    pub device: Device,
    /// Overrides the MAC address the device reports.
    pub mac: Option<MacAddr>,
    /// The box's own addresses on the untagged interface; each prefix is also a connected
    /// subnet. May be empty (a port that only carries VLANs).
    pub addresses: Vec<Cidr>,
    pub mtu: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub vlans: Vec<Vlan>,
}

impl Interface {
    /// The IP MTU of a port whose `mtu` is not given (Ethernet's); also the MTU the
    /// participating stack's legs use.
    pub const DEFAULT_MTU: u16 = 1500;
}

/// An 802.1Q sub-interface of a port: frames tagged `id` are its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    /// 1..=4094.
    pub id: u16,
    /// The port's zone unless written.
    pub zone: Zone,
    pub addresses: Vec<Cidr>,
}

/// An interface packets are routed in and out of: one port's untagged traffic, or one VLAN
/// of a port. The index of its [`Link`] in [`Config::links`]: each port's untagged interface
/// comes first, then its VLANs in order, port after port, so in a box without VLANs the
/// interface of port *i* is `Iface(i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Iface(pub u8);

impl Iface {
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An interface as routing and the policy see it ([`Iface`] indexes these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `PORT` or `PORT.VLAN`.
    pub name: String,
    /// Index of the port in [`Config::interfaces`].
    pub port: u16,
    /// The 802.1Q id the interface's frames carry; `None` for untagged.
    pub vlan: Option<u16>,
    pub zone: Zone,
    /// The box's own addresses here; each prefix is also a connected subnet.
    pub addresses: Vec<Cidr>,
}

impl Link {
    /// Whether `addr` lies in one of this interface's connected subnets.
    pub fn is_connected(&self, addr: Ipv4Addr) -> bool {
        self.addresses.iter().any(|c| c.contains(addr))
    }

    /// Whether `addr` is one of the box's own addresses on this interface.
    pub fn is_own_address(&self, addr: Ipv4Addr) -> bool {
        self.addresses.iter().any(|c| c.addr == addr)
    }
}

/// The most interfaces (ports and VLANs together) a box has: an [`Iface`] is a byte.
pub const MAX_LINKS: usize = 255;

/// Every interface of the ports `interfaces`, in [`Iface`] order.
pub fn links_of(interfaces: &[Interface]) -> Vec<Link> {
    let mut out = Vec::new();
    for (p, port) in interfaces.iter().enumerate() {
        out.push(Link {
            name: port.name.clone(),
            port: p as u16,
            vlan: None,
            zone: port.zone,
            addresses: port.addresses.clone(),
        });
        for v in &port.vlans {
            out.push(Link {
                name: format!("{}.{}", port.name, v.id),
                port: p as u16,
                vlan: Some(v.id),
                zone: v.zone,
                addresses: v.addresses.clone(),
            });
        }
    }
    out
}

impl Config {
    /// Every interface, in [`Iface`] order (see [`links_of`]).
    pub fn links(&self) -> Vec<Link> {
        links_of(&self.interfaces)
    }

    /// The interface called `name` (`PORT` or `PORT.VLAN`).
    pub fn iface(&self, name: &str) -> Option<Iface> {
        self.links()
            .iter()
            .position(|l| l.name == name)
            .map(|i| Iface(i as u8))
    }

    /// The port called `name`.
    pub fn port(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

/// How DPDK finds a port: a PCI device to probe, or a virtual device to create (`--vdev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A PCI address in full form, `DDDD:BB:DD.F`, e.g. `0000:03:00.0`.
    Pci(String),
    /// A DPDK virtual device string, e.g. `net_af_packet0,iface=ct-in0`.
    Vdev(String),
}

impl Device {
    /// The name DPDK knows the port by: the PCI address, or the vdev name before its first `,`.
    pub fn name(&self) -> &str {
        match self {
            Device::Pci(s) => s,
            Device::Vdev(s) => s.split(',').next().unwrap_or(s),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci(s) | Device::Vdev(s) => f.write_str(s),
        }
    }
}
