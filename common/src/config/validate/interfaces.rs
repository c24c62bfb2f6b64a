//! The ports (`interfaces`), their VLANs, and the routes that name them: each port on its
//! own, then what must hold between them (names, devices, subnets), then the routes against
//! the interfaces they make.

use super::super::schema::{RawInterface, RawPorts, RawRoute, RawVlan};
use super::super::types::*;
use super::super::values::*;
use super::{at, invalid, network, Res, MAX_QUEUES};
use crate::wire::{Ipv4Addr, MacAddr};

/// DPDK's RTE_MAX_ETHPORTS in its default build.
const MAX_PORTS: usize = 32;
/// Linux's IFNAMSIZ less its NUL: names fit wherever an operator may want to reuse them.
const MAX_NAME: usize = 15;

/// Keys of the statistics report beside the ports, which it lists by name at the same level
/// (the telemetry carries one level of nesting): no port may take one of them.
const REPORT_KEYS: [&str; 10] = [
    "uptime_ms",
    "interval_ms",
    "policy_generation",
    "workers",
    "flows",
    "connections",
    "fallback_causes",
    "drops",
    "rings",
    "capture",
];

/// The path of port `i`.
fn port_path(i: usize) -> String {
    format!("interfaces[{i}]")
}

pub(super) fn ports(raw: &RawPorts, w: &Workers) -> Res<Vec<Interface>> {
    let raw = match raw {
        RawPorts::List(l) => l,
        RawPorts::OldMap(keys) => {
            let which = if keys.is_empty() {
                String::new()
            } else {
                format!(" ({})", keys.join(", "))
            };
            return invalid(
                "interfaces",
                format!(
                    "must be a list of ports now, not a map: write one item per port{which}, each \
                     like `- name: inside` / `zone: inside` / `device: ...`, its other keys as before"
                ),
            );
        }
    };
    if raw.is_empty() {
        return invalid(
            "interfaces",
            "needs at least one port: `- name: inside` / `zone: inside` / `device: ...`",
        );
    }
    let mut out: Vec<Interface> = Vec::with_capacity(raw.len());
    let mut links = 0;
    for (i, r) in raw.iter().enumerate() {
        let p = port_path(i);
        if i == MAX_PORTS {
            return invalid(
                p,
                format!("a port beyond the {MAX_PORTS} DPDK handles (RTE_MAX_ETHPORTS)"),
            );
        }
        let port = interface(&p, r, w)?;
        if let Some(j) = out.iter().position(|o| o.name == port.name) {
            return invalid(
                format!("{p}.name"),
                format!(
                    "duplicate port name `{}` (also {})",
                    port.name,
                    port_path(j)
                ),
            );
        }
        if let Some(j) = out
            .iter()
            .position(|o| o.device.name().eq_ignore_ascii_case(port.device.name()))
        {
            return invalid(
                format!("{p}.device"),
                format!(
                    "`{}` is also the device of {} ({}); each port must be a different device",
                    port.device,
                    port_path(j),
                    out[j].name
                ),
            );
        }
        // The port's own interface, then one per VLAN: an `Iface` is a byte.
        links += 1;
        if links > MAX_LINKS {
            return invalid(p, too_many_links());
        }
        if links + port.vlans.len() > MAX_LINKS {
            let j = MAX_LINKS - links;
            return invalid(format!("{p}.vlans[{j}]"), too_many_links());
        }
        links += port.vlans.len();
        out.push(port);
    }
    check_subnets(&out)?;
    Ok(out)
}

fn too_many_links() -> String {
    format!("one interface too many: the box has at most {MAX_LINKS}, ports and VLANs together")
}

fn interface(p: &str, r: &RawInterface, w: &Workers) -> Res<Interface> {
    let name_ok = (1..=MAX_NAME).contains(&r.name.len())
        && r.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // Without a '.', no port can be named like another port's VLAN (`PORT.ID`).
    if !name_ok {
        return invalid(
            format!("{p}.name"),
            format!(
                "`{}` is not a port name: 1 to {MAX_NAME} letters, digits, '-' or '_' (a VLAN is \
                 named PORT.ID after its port, so no '.')",
                r.name
            ),
        );
    }
    if REPORT_KEYS.contains(&r.name.as_str()) {
        return invalid(
            format!("{p}.name"),
            format!(
                "`{}` is a key of the statistics report, where the ports are listed by name: \
                 choose another name",
                r.name
            ),
        );
    }
    let zone = zone(&format!("{p}.zone"), r.zone)?;
    let device = device(&format!("{p}.device"), &r.device)?;
    let mac = match &r.mac {
        None => None,
        Some(s) => {
            let path = format!("{p}.mac");
            let m = at(&path, parse_mac(s))?;
            if m.is_multicast() {
                return invalid(
                    path,
                    format!("`{s}` is a multicast address; a port needs a unicast MAC"),
                );
            }
            if m == MacAddr::ZERO {
                return invalid(path, format!("`{s}` is the all-zero MAC"));
            }
            Some(m)
        }
    };
    // A port may carry only VLANs; a port with neither is a mistake, not a trunk.
    if r.addresses.is_empty() && r.vlans.is_empty() {
        return invalid(
            format!("{p}.addresses"),
            "needs at least one address (or VLANs that have them): the box's own address with \
             its subnet's length, like 198.18.0.254/24",
        );
    }
    let addresses = addresses(p, &r.addresses)?;
    let mtu = r.mtu.unwrap_or(u64::from(Interface::DEFAULT_MTU));
    if !(68..=9216).contains(&mtu) {
        return invalid(
            format!("{p}.mtu"),
            format!("MTU {mtu} is out of range 68..=9216"),
        );
    }
    let n = u64::from(w.count);
    let rx_queues = queues(
        &format!("{p}.rx_queues"),
        r.rx_queues,
        n,
        0,
        "each worker needs its own RX queue",
    )?;
    if u64::from(rx_queues) > n {
        return invalid(
            format!("{p}.rx_queues"),
            format!(
                "{rx_queues} RX queues for {n} workers: worker i polls queue i, so a queue beyond \
                 {n} would never be read (the packets the NIC spreads to it lost); give as many \
                 as workers, or leave it out"
            ),
        );
    }
    let tx_queues = queues(
        &format!("{p}.tx_queues"),
        r.tx_queues,
        n,
        0,
        "each worker needs its own TX queue",
    )?;
    let mut vlans: Vec<Vlan> = Vec::with_capacity(r.vlans.len());
    for (j, v) in r.vlans.iter().enumerate() {
        let q = format!("{p}.vlans[{j}]");
        let vlan = vlan(&q, v, zone)?;
        if let Some(k) = vlans.iter().position(|x| x.id == vlan.id) {
            return invalid(
                format!("{q}.id"),
                format!("VLAN {} is listed twice (also {p}.vlans[{k}])", vlan.id),
            );
        }
        vlans.push(vlan);
    }
    Ok(Interface {
        name: r.name.clone(),
        zone,
        device,
        mac,
        addresses,
        mtu: mtu as u16,
        rx_queues,
        tx_queues,
        rx_descriptors: descriptors(&format!("{p}.rx_descriptors"), r.rx_descriptors)?,
        tx_descriptors: descriptors(&format!("{p}.tx_descriptors"), r.tx_descriptors)?,
        vlans,
    })
}

fn vlan(q: &str, r: &RawVlan, port_zone: Zone) -> Res<Vlan> {
    // 0 is a priority tag and 4095 reserved (802.1Q).
    if !(1..=4094).contains(&r.id) {
        return invalid(
            format!("{q}.id"),
            format!("VLAN id {} is out of range 1..=4094", r.id),
        );
    }
    let zone = match r.zone {
        None => port_zone,
        Some(z) => zone(&format!("{q}.zone"), z)?,
    };
    // Unlike the port's own interface, a VLAN is there for its subnets alone.
    if r.addresses.is_empty() {
        return invalid(
            format!("{q}.addresses"),
            "needs at least one address: the box's own address on the VLAN with its subnet's \
             length, like 198.18.1.254/24",
        );
    }
    Ok(Vlan {
        id: r.id as u16,
        zone,
        addresses: addresses(q, &r.addresses)?,
    })
}

fn zone(p: &str, z: Zone) -> Res<Zone> {
    if z == Zone::Any {
        return invalid(
            p,
            "`any` is only for policy rules: an interface is in zone inside or outside",
        );
    }
    Ok(z)
}

/// The box's own addresses on one interface (`p` is the port's or the VLAN's path).
fn addresses(p: &str, raw: &[String]) -> Res<Vec<Cidr>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let path = format!("{p}.addresses[{i}]");
        let c: Cidr = at(&path, s.parse())?;
        if c.prefix == 0 {
            return invalid(
                path,
                format!("`{s}`: a /0 subnet would make every address connected"),
            );
        }
        if c.prefix <= 30 && c.addr == c.network() {
            return invalid(
                path,
                format!(
                    "`{s}` is the subnet's network address; give the box's own address, like {}",
                    Ipv4Addr(c.network().0 + 1)
                ),
            );
        }
        if c.prefix <= 30 && c.addr == c.broadcast() {
            return invalid(path, format!("`{s}` is the subnet's broadcast address"));
        }
        out.push(c);
    }
    Ok(out)
}

/// A queue count: by default, and at least, one per worker plus `extra`.
fn queues(p: &str, v: Option<u64>, workers: u64, extra: u64, why: &str) -> Res<u16> {
    let min = workers + extra;
    let q = v.unwrap_or(min);
    if q < min {
        return invalid(
            p,
            format!("{q} is too few for {workers} workers: {why} (at least {min})"),
        );
    }
    if q > MAX_QUEUES {
        return invalid(p, format!("{q} queues are too many: at most {MAX_QUEUES}"));
    }
    Ok(q as u16)
}

fn descriptors(p: &str, v: Option<u64>) -> Res<u16> {
    let d = v.unwrap_or(1024);
    if !d.is_power_of_two() || !(64..=16384).contains(&d) {
        return invalid(
            p,
            format!("{d} descriptors: must be a power of two in 64..=16384"),
        );
    }
    Ok(d as u16)
}

/// Classifies a device string; see [`Device`].
fn device(p: &str, s: &str) -> Res<Device> {
    if is_pci_address(s) {
        return Ok(Device::Pci(s.to_ascii_lowercase()));
    }
    if let Some(rest) = s.strip_prefix("net_") {
        let name = rest.split(',').next().unwrap_or("");
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.contains(char::is_whitespace)
        {
            return Ok(Device::Vdev(s.to_string()));
        }
    }
    invalid(
        p,
        format!(
            "`{s}` is neither a PCI address (DDDD:BB:DD.F, like 0000:03:00.0) nor a DPDK virtual device (net_<driver><n>[,args], like net_af_packet0,iface=ct-in0)"
        ),
    )
}

/// `DDDD:BB:DD.F` in hex, with the device number below 32 and the function below 8.
fn is_pci_address(s: &str) -> bool {
    let hex = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_hexdigit());
    let Some((domain, rest)) = s.split_once(':') else {
        return false;
    };
    let Some((bus, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((dev, func)) = rest.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d < 32)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// The path of each interface's addresses, in [`Iface`] order (as [`links_of`] lists them).
fn address_paths(ports: &[Interface]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        out.push(port_path(i));
        out.extend((0..port.vlans.len()).map(|j| format!("{}.vlans[{j}]", port_path(i))));
    }
    out
}

/// No subnet of one interface overlaps a subnet of another: which interface an address is
/// connected on must have one answer. Reported at the later of the two.
fn check_subnets(ports: &[Interface]) -> Res<()> {
    let links = links_of(ports);
    let paths = address_paths(ports);
    for (b, lb) in links.iter().enumerate() {
        for (a, la) in links[..b].iter().enumerate() {
            for (k, cb) in lb.addresses.iter().enumerate() {
                if let Some(h) = la.addresses.iter().position(|ca| ca.overlaps(cb)) {
                    return invalid(
                        format!("{}.addresses[{k}]", paths[b]),
                        format!(
                            "subnet {} overlaps {}, a subnet of interface {} ({}.addresses[{h}]); \
                             each interface must have subnets of its own",
                            cb.to_network(),
                            la.addresses[h].to_network(),
                            la.name,
                            paths[a]
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

pub(super) fn routes(raw: &[RawRoute], links: &[Link]) -> Res<Vec<Route>> {
    let mut routes = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let p = format!("routes[{i}]");
        let to = network(&format!("{p}.to"), &r.to)?;
        let via = at(&format!("{p}.via"), parse_ipv4(&r.via))?;
        let Some(n) = links.iter().position(|l| l.name == r.interface) else {
            let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
            return invalid(
                format!("{p}.interface"),
                format!(
                    "no interface is called `{}`: name a port, or PORT.ID for a VLAN (the box has {})",
                    r.interface,
                    names.join(", ")
                ),
            );
        };
        let link = &links[n];
        if !link.is_connected(via) {
            let subnets: Vec<String> = link
                .addresses
                .iter()
                .map(|c| c.to_network().to_string())
                .collect();
            let subnets = if subnets.is_empty() {
                "it has no addresses".to_string()
            } else {
                subnets.join(", ")
            };
            return invalid(
                format!("{p}.via"),
                format!(
                    "gateway {via} is not in a connected subnet of interface {} ({subnets})",
                    link.name
                ),
            );
        }
        if link.is_own_address(via) {
            return invalid(
                format!("{p}.via"),
                format!("gateway {via} is the box's own address"),
            );
        }
        routes.push(Route {
            to,
            via,
            // `ports` bounds the interfaces to MAX_LINKS, so the index fits.
            interface: Iface(n as u8),
        });
    }
    Ok(routes)
}
