use super::*;
use crate::iface::{retag, Retag};
use crate::testing::{BOX_IN, BOX_OUT};

/// `config/testbed-multiport.yaml`: ports inside, outside, inside2 (VLAN 100 only) and
/// outside2.
fn multiport_config() -> Config {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/testbed-multiport.yaml"
    );
    common::config::load(std::path::Path::new(path)).unwrap()
}

const BOX_IN2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
const BOX_OUT2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x04]);
const CLIENT2_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x02]);
const SERVER2_MAC: MacAddr = MacAddr([0x02, 0x5e, 0, 0, 0, 0x04]);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const SERVER2: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);
const VLAN: u16 = 100;

/// One worker on four in-memory ports, every neighbour known.
struct Multi {
    nics: Vec<Arc<MemNic>>,
    rings: Rings<Vec<u8>>,
    worker: Worker<MemQueue>,
    cfg: Config,
}

impl Multi {
    fn new(mode: ForwardMode) -> Multi {
        let cfg = multiport_config();
        let nics: Vec<Arc<MemNic>> = (0..4).map(|_| MemNic::new(1, 256)).collect();
        let ctx = Arc::new(Context::new(
            &cfg,
            &[BOX_IN, BOX_OUT, BOX_IN2, BOX_OUT2],
            mode,
        ));
        let rings = Rings::new(1, 256, 64);
        let ports = nics.iter().map(|n| n.queue(0)).collect();
        let worker = Worker::new(0, ports, ctx, rings.worker(0));
        let mut m = Multi {
            nics,
            rings,
            worker,
            cfg,
        };
        for (iface, ip, mac) in [
            ("inside", CLIENT, CLIENT_MAC),
            ("outside", SERVER, SERVER_MAC),
            ("inside2.100", CLIENT2, CLIENT2_MAC),
            ("outside2", SERVER2, SERVER2_MAC),
        ] {
            let iface = m.cfg.iface(iface).unwrap();
            m.rings.broadcast(&Command::Neighbour {
                iface,
                ip,
                mac: Some(mac),
            });
        }
        m.worker.poll(1000);
        m
    }

    /// Sends `frame` in on `port` and returns what each port sent.
    fn send(&mut self, port: usize, frame: Vec<u8>) -> Vec<Vec<Vec<u8>>> {
        assert!(self.nics[port].inject(frame));
        self.worker.poll(1000);
        self.nics.iter().map(|n| n.drain_sent()).collect()
    }
}

fn env(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr) -> Envelope {
    Envelope {
        src_mac,
        dst_mac,
        src,
        dst,
        ttl: 64,
    }
}

fn tagged(mut f: Vec<u8>, id: u16) -> Vec<u8> {
    assert!(retag(&mut f, Retag::Push(id)));
    f
}

fn syn(sport: u16, dport: u16) -> Tcp<'static> {
    Tcp {
        sport,
        dport,
        seq: 1000,
        flags: SYN,
        window: 64240,
        ..Default::default()
    }
}

/// The frame as the router must send it: its MACs for the next hop, TTL one less, the tag
/// as given (the IP and TCP headers' checksums fixed incrementally by the box: compared by
/// the checksum-verifying views).
fn assert_routed(got: &[u8], src_mac: MacAddr, dst_mac: MacAddr, vlan: Option<u16>) {
    let eth = EthernetFrame::new_checked(got).unwrap();
    assert_eq!((eth.src(), eth.dst()), (src_mac, dst_mac));
    match vlan {
        None => assert_eq!(eth.vlan_count(), 0, "untagged"),
        Some(id) => assert_eq!(eth.vlan_ids(), ([id, 0], 1)),
    }
    assert_eq!(eth.ethertype(), EtherType::IPV4);
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.ttl(), 63);
}

#[test]
fn a_vlan_client_reaches_a_server_on_another_port_and_the_reply_is_tagged() {
    let mut m = Multi::new(ForwardMode::Full);
    let c2s = env(CLIENT2_MAC, BOX_IN2, CLIENT2, SERVER2);
    let out = m.send(2, tagged(tcp_frame(&c2s, &syn(40000, 5201)), VLAN));
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [0, 0, 0, 1]);
    assert_routed(&out[3][0], BOX_OUT2, SERVER2_MAC, None);

    let s2c = env(SERVER2_MAC, BOX_OUT2, SERVER2, CLIENT2);
    let synack = Tcp {
        sport: 5201,
        dport: 40000,
        seq: 7000,
        ack: 1001,
        flags: SYN | ACK,
        window: 64240,
        ..Default::default()
    };
    let out = m.send(3, tcp_frame(&s2c, &synack));
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [0, 0, 1, 0]);
    assert_routed(&out[2][0], BOX_IN2, CLIENT2_MAC, Some(VLAN));
    assert_eq!(
        m.worker.table().len(),
        1,
        "one flow, tracked across the ports"
    );
}

#[test]
fn every_client_reaches_every_server() {
    let mut m = Multi::new(ForwardMode::Full);
    let cases = [
        (
            0,
            CLIENT,
            CLIENT_MAC,
            BOX_IN,
            None,
            SERVER2,
            3,
            BOX_OUT2,
            SERVER2_MAC,
        ),
        (
            2,
            CLIENT2,
            CLIENT2_MAC,
            BOX_IN2,
            Some(VLAN),
            SERVER,
            1,
            BOX_OUT,
            SERVER_MAC,
        ),
        (
            0, CLIENT, CLIENT_MAC, BOX_IN, None, SERVER, 1, BOX_OUT, SERVER_MAC,
        ),
    ];
    for (i, (port, src, smac, box_mac, tag, dst, out, out_mac, dmac)) in
        cases.into_iter().enumerate()
    {
        let mut f = tcp_frame(&env(smac, box_mac, src, dst), &syn(41000 + i as u16, 5201));
        if let Some(id) = tag {
            f = tagged(f, id);
        }
        let sent = m.send(port, f);
        assert_eq!(sent[out].len(), 1, "case {i}: {sent:?}");
        assert_routed(&sent[out][0], out_mac, dmac, None);
    }
}

#[test]
fn the_policy_sees_the_zones_of_the_ports() {
    let mut m = Multi::new(ForwardMode::Full);
    // DNS is passed from the inside zone only: from the VLAN (inside) it goes, from the
    // second outside port towards the VLAN it does not.
    let q = udp_frame(&env(CLIENT2_MAC, BOX_IN2, CLIENT2, SERVER2), 5353, 53, b"q");
    let out = m.send(2, tagged(q, VLAN));
    assert_eq!(out[3].len(), 1);
    let stray = udp_frame(
        &env(SERVER2_MAC, BOX_OUT2, SERVER2, CLIENT2),
        53,
        5354,
        b"x",
    );
    let out = m.send(3, stray);
    assert!(out.iter().all(Vec::is_empty), "{out:?}");
    assert_eq!(m.worker.counters.drops.get(DropReason::PolicyDeny), 1);
    // The answer to the query comes back, tagged.
    let a = udp_frame(
        &env(SERVER2_MAC, BOX_OUT2, SERVER2, CLIENT2),
        53,
        5353,
        b"a",
    );
    let out = m.send(3, a);
    assert_eq!(out[2].len(), 1);
    assert_routed(&out[2][0], BOX_IN2, CLIENT2_MAC, Some(VLAN));
}

#[test]
fn frames_of_a_vlan_the_port_does_not_have_are_dropped() {
    let mut m = Multi::new(ForwardMode::Full);
    let f = |box_mac| {
        tcp_frame(
            &env(CLIENT2_MAC, box_mac, CLIENT2, SERVER2),
            &syn(40000, 5201),
        )
    };
    for (port, frame) in [(2, tagged(f(BOX_IN2), 101)), (0, tagged(f(BOX_IN), VLAN))] {
        let out = m.send(port, frame);
        assert!(out.iter().all(Vec::is_empty), "{out:?}");
    }
    assert_eq!(m.worker.counters.drops.get(DropReason::UnknownVlan), 2);
    assert_eq!(m.worker.table().len(), 0);
}

#[test]
fn packets_for_the_box_on_a_vlan_reach_control_with_their_interface() {
    let mut m = Multi::new(ForwardMode::Full);
    let vlan = m.cfg.iface("inside2.100").unwrap();
    let box_ip = Ipv4Addr::new(198, 18, 1, 254);
    let arp = tagged(arp_request(CLIENT2_MAC, CLIENT2, box_ip), VLAN);
    m.send(2, arp);
    let ping = tagged(
        icmp_echo_frame(&env(CLIENT2_MAC, BOX_IN2, CLIENT2, box_ip), 7, 1, b"hi"),
        VLAN,
    );
    m.send(2, ping);
    for _ in 0..2 {
        let msg = m.rings.to_control.pop().expect("handed to control");
        assert_eq!((msg.iface, msg.why), (vlan, Why::Local));
    }
}

#[test]
fn a_frame_too_short_for_a_tag_keeps_its_bytes() {
    let mut short = vec![0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(!retag(&mut short, Retag::Pop));
    assert_eq!(short, [0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn io_mode_pairs_the_ports() {
    let mut m = Multi::new(ForwardMode::Io);
    for (port, peer) in [(0, 1), (1, 0), (2, 3), (3, 2)] {
        let f = udp_frame(&env(CLIENT_MAC, BOX_IN, CLIENT, SERVER), 1, 2, b"io");
        let out = m.send(port, f.clone());
        assert_eq!(out[peer], vec![f], "port {port}");
    }
}
