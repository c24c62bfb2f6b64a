use super::*;
use crate::testing::{testbed_config, CLIENT_TO_SERVER};
use common::wire::arp::ArpPacket;
use common::wire::icmp::Message;
use dataplane::testing::{
    arp_request, icmp_echo_frame, tcp_frame, Envelope, Tcp, BOX_IN, BOX_IN_IP, BOX_OUT, BOX_OUT_IP,
    CLIENT, CLIENT_MAC, SERVER, SERVER_MAC,
};
use dataplane::testing::{INSIDE, OUTSIDE};

#[derive(Default)]
struct Io {
    frames: Vec<(Iface, Vec<u8>)>,
    packets: Vec<(Iface, Vec<u8>)>,
    commands: Vec<Command>,
}

impl ControlIo<Vec<u8>> for Io {
    fn send_frame(&mut self, side: Iface, frame: &[u8]) {
        self.frames.push((side, frame.to_vec()));
    }
    fn send_packet(&mut self, side: Iface, pkt: Vec<u8>) {
        self.packets.push((side, pkt));
    }
    fn broadcast(&mut self, cmd: Command) {
        self.commands.push(cmd);
    }
    fn command(&mut self, _worker: u16, cmd: Command) -> bool {
        self.commands.push(cmd);
        true
    }
    fn reinject(&mut self, _worker: u16, side: Iface, pkt: Vec<u8>) -> bool {
        self.packets.push((side, pkt));
        true
    }
    fn alloc(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        Some(frame.to_vec())
    }
}

fn stack() -> LocalStack<Vec<u8>> {
    LocalStack::new(&Context::new(
        &testbed_config(),
        &[BOX_IN, BOX_OUT],
        dataplane::context::ForwardMode::Full,
    ))
}

fn msg(iface: Iface, why: Why, pkt: Vec<u8>) -> ToControl<Vec<u8>> {
    ToControl {
        iface,
        worker: 0,
        why,
        pkt,
    }
}

fn arp_of(frame: &[u8]) -> ArpRepr {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), EtherType::ARP);
    ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap()
}

fn server_reply_arp() -> Vec<u8> {
    let r = ArpRepr {
        op: Operation::REPLY,
        sha: SERVER_MAC,
        spa: SERVER,
        tha: BOX_OUT,
        tpa: BOX_OUT_IP,
    };
    let mut b = [0u8; ArpRepr::BUFFER_LEN];
    r.emit(&mut b);
    ethernet(SERVER_MAC, BOX_OUT, EtherType::ARP, &b)
}

fn transit_syn(ttl: u8) -> Vec<u8> {
    let e = Envelope {
        ttl,
        ..CLIENT_TO_SERVER
    };
    tcp_frame(
        &e,
        &Tcp {
            sport: 40000,
            dport: 5201,
            seq: 1,
            flags: 0x02,
            window: 100,
            ..Tcp::default()
        },
    )
}

/// A transit SYN toward the server, handed over because its next hop is not resolved yet.
fn held_syn() -> ToControl<Vec<u8>> {
    msg(
        INSIDE,
        Why::Resolve {
            out: OUTSIDE,
            next_hop: SERVER,
        },
        transit_syn(63),
    )
}

#[test]
fn answers_arp_for_its_own_address_and_learns_the_asker() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(
        msg(
            INSIDE,
            Why::Local,
            arp_request(CLIENT_MAC, CLIENT, BOX_IN_IP),
        ),
        0,
        &mut io,
    );
    assert_eq!(io.frames.len(), 1);
    let (side, f) = &io.frames[0];
    assert_eq!(*side, INSIDE);
    let r = arp_of(f);
    assert_eq!(
        (r.op, r.sha, r.spa, r.tha, r.tpa),
        (Operation::REPLY, BOX_IN, BOX_IN_IP, CLIENT_MAC, CLIENT)
    );
    assert_eq!(
        io.commands,
        vec![Command::Neighbour {
            iface: INSIDE,
            ip: CLIENT,
            mac: Some(CLIENT_MAC)
        }]
    );
    assert_eq!(s.neighbour(INSIDE, CLIENT), Some(CLIENT_MAC));
}

#[test]
fn ignores_arp_for_other_addresses_and_other_ports() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(
        msg(
            INSIDE,
            Why::Local,
            arp_request(CLIENT_MAC, CLIENT, Ipv4Addr::new(198, 18, 0, 77)),
        ),
        0,
        &mut io,
    );
    // the outside address asked on the inside port is not answered either
    s.on_packet(
        msg(
            INSIDE,
            Why::Local,
            arp_request(CLIENT_MAC, CLIENT, BOX_OUT_IP),
        ),
        0,
        &mut io,
    );
    assert!(io.frames.is_empty());
    assert!(io.commands.is_empty());
}

#[test]
fn resolves_a_next_hop_and_releases_the_held_packets() {
    let (mut s, mut io) = (stack(), Io::default());
    for _ in 0..3 {
        s.on_packet(held_syn(), 0, &mut io);
    }
    assert_eq!(io.frames.len(), 1, "one ARP request, not one per packet");
    let req = arp_of(&io.frames[0].1);
    assert_eq!(
        (req.op, req.spa, req.tpa),
        (Operation::REQUEST, BOX_OUT_IP, SERVER)
    );
    assert!(io.packets.is_empty());
    s.on_packet(msg(OUTSIDE, Why::Local, server_reply_arp()), 5, &mut io);
    assert_eq!(io.packets.len(), 3);
    for (side, p) in &io.packets {
        assert_eq!(*side, OUTSIDE);
        assert_eq!(
            EthernetFrame::new_checked(&p[..]).unwrap().dst(),
            SERVER_MAC
        );
    }
    assert!(io.commands.contains(&Command::Neighbour {
        iface: OUTSIDE,
        ip: SERVER,
        mac: Some(SERVER_MAC)
    }));
}

#[test]
fn gives_up_after_three_requests_and_drops_what_it_held() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(held_syn(), 0, &mut io);
    let mut t = 0;
    for _ in 0..10 {
        t += ARP_RETRY_MS;
        s.tick(t, &mut io);
    }
    assert_eq!(io.frames.len(), ARP_TRIES as usize);
    assert_eq!(s.counters.resolve_failed_drops, 1);
    assert!(io.packets.is_empty());
}

#[test]
fn holds_a_bounded_number_of_packets() {
    let (mut s, mut io) = (stack(), Io::default());
    for _ in 0..PENDING_PER_NEIGHBOUR + 5 {
        s.on_packet(held_syn(), 0, &mut io);
    }
    assert_eq!(s.counters.pending_full_drops, 5);
}

#[test]
fn refreshes_old_neighbours_and_forgets_silent_ones() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(held_syn(), 0, &mut io);
    s.on_packet(msg(OUTSIDE, Why::Local, server_reply_arp()), 1, &mut io);
    io.commands.clear();
    io.frames.clear();
    s.tick(REACHABLE_MS + 1, &mut io);
    assert_eq!(io.frames.len(), 1, "a refresh request");
    assert_eq!(
        s.neighbour(OUTSIDE, SERVER),
        Some(SERVER_MAC),
        "still used while refreshing"
    );
    for i in 1..=ARP_TRIES {
        s.tick(REACHABLE_MS + 1 + i * ARP_RETRY_MS, &mut io);
    }
    assert_eq!(s.neighbour(OUTSIDE, SERVER), None);
    assert_eq!(
        io.commands,
        vec![Command::Neighbour {
            iface: OUTSIDE,
            ip: SERVER,
            mac: None
        }]
    );
}

#[test]
fn answers_ping_to_its_own_address() {
    let (mut s, mut io) = (stack(), Io::default());
    let e = Envelope {
        dst: BOX_IN_IP,
        ..CLIENT_TO_SERVER
    };
    s.on_packet(
        msg(INSIDE, Why::Local, icmp_echo_frame(&e, 7, 9, b"hello")),
        0,
        &mut io,
    );
    let (side, f) = &io.frames[0];
    assert_eq!(*side, INSIDE);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!((eth.src(), eth.dst()), (BOX_IN, CLIENT_MAC));
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src(), ip.dst()), (BOX_IN_IP, CLIENT));
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    let echo = IcmpEchoRepr::parse(&icmp).unwrap();
    assert!(echo.is_reply);
    assert_eq!((echo.ident, echo.seq_no, echo.data), (7, 9, &b"hello"[..]));
}

#[test]
fn ttl_expiry_is_answered_with_time_exceeded() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(msg(INSIDE, Why::TtlExceeded, transit_syn(1)), 0, &mut io);
    let (side, f) = &io.frames[0];
    assert_eq!(*side, INSIDE);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst()), (BOX_IN_IP, CLIENT));
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), Message::TIME_EXCEEDED);
    assert!(icmp.verify_checksum());
    let quoted = Ipv4Packet::new_checked_quoted(icmp.quoted()).unwrap();
    assert_eq!((quoted.src(), quoted.dst()), (CLIENT, SERVER));
}

#[test]
fn time_exceeded_is_rate_limited() {
    let (mut s, mut io) = (stack(), Io::default());
    let n = ICMP_ERRORS_PER_S as usize + 20;
    for _ in 0..n {
        s.on_packet(
            msg(INSIDE, Why::TtlExceeded, transit_syn(1)),
            1_000,
            &mut io,
        );
    }
    assert_eq!(io.frames.len(), ICMP_ERRORS_PER_S as usize, "the burst");
    assert_eq!(s.counters.icmp_rate_limited, 20);
    // A second later the rate allows more again.
    s.on_packet(
        msg(INSIDE, Why::TtlExceeded, transit_syn(1)),
        2_000,
        &mut io,
    );
    assert_eq!(io.frames.len(), ICMP_ERRORS_PER_S as usize + 1);
}

/// The box on `config/testbed-multiport.yaml` (ports inside, outside, inside2 with VLAN 100,
/// outside2), and the VLAN's interface.
fn multiport() -> (LocalStack<Vec<u8>>, Iface, [MacAddr; 4]) {
    let cfg = common::config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/testbed-multiport.yaml"
    )))
    .unwrap();
    let macs = [
        BOX_IN,
        BOX_OUT,
        MacAddr([2, 0, 0, 0, 0, 3]),
        MacAddr([2, 0, 0, 0, 0, 4]),
    ];
    let vlan = cfg.iface("inside2.100").unwrap();
    let ctx = Context::new(&cfg, &macs, dataplane::context::ForwardMode::Full);
    (LocalStack::new(&ctx), vlan, macs)
}

const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const BOX_VLAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);

/// Adds an 802.1Q tag with `id` after the addresses.
fn tag(mut f: Vec<u8>, id: u16) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    f.splice(12..12, [0x81, 0x00, hi, lo]);
    f
}

fn vlan_of(frame: &[u8]) -> Option<u16> {
    let (ids, n) = EthernetFrame::new_checked(frame).unwrap().vlan_ids();
    (n > 0).then_some(ids[0])
}

#[test]
fn answers_arp_and_ping_on_a_vlan_tagged_as_the_vlan() {
    let (mut s, vlan, macs) = multiport();
    let mut io = Io::default();
    let arp = tag(arp_request(CLIENT_MAC, CLIENT2, BOX_VLAN_IP), 100);
    s.on_packet(msg(vlan, Why::Local, arp), 0, &mut io);
    let ping = Envelope {
        src_mac: CLIENT_MAC,
        dst_mac: macs[2],
        src: CLIENT2,
        dst: BOX_VLAN_IP,
        ttl: 64,
    };
    let ping = tag(icmp_echo_frame(&ping, 7, 1, b"vlan"), 100);
    s.on_packet(msg(vlan, Why::Local, ping), 0, &mut io);
    assert_eq!(io.frames.len(), 2, "an ARP reply and an echo reply");
    for (iface, f) in &io.frames {
        assert_eq!(*iface, vlan);
        assert_eq!(vlan_of(f), Some(100));
        assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().src(), macs[2]);
    }
    let r = arp_of(&io.frames[0].1);
    assert_eq!(
        (r.op, r.spa, r.tpa),
        (Operation::REPLY, BOX_VLAN_IP, CLIENT2)
    );
    assert_eq!(s.counters.icmp_echo_answered, 1);
    // The VLAN's address is not the box's on the port's untagged side.
    let untagged = Iface(vlan.0 - 1);
    let arp = arp_request(CLIENT_MAC, CLIENT2, BOX_VLAN_IP);
    s.on_packet(msg(untagged, Why::Local, arp), 0, &mut io);
    assert_eq!(io.frames.len(), 2, "not answered");
}

#[test]
fn resolves_and_sends_on_a_vlan_tagged() {
    let (mut s, vlan, _) = multiport();
    let mut io = Io::default();
    let seg = Envelope {
        src_mac: MacAddr::ZERO,
        dst_mac: MacAddr::ZERO,
        src: SERVER,
        dst: CLIENT2,
        ttl: 64,
    };
    let frame = tcp_frame(&seg, &Tcp::default());
    let ip = &frame[14..];
    s.send_ip(vlan, ip, 0, &mut io);
    // An ARP request goes out first, tagged, asking from the VLAN's own address.
    assert_eq!(io.frames.len(), 1);
    let (iface, req) = &io.frames[0];
    assert_eq!((*iface, vlan_of(req)), (vlan, Some(100)));
    let r = arp_of(req);
    assert_eq!(
        (r.op, r.spa, r.tpa),
        (Operation::REQUEST, BOX_VLAN_IP, CLIENT2)
    );
    // Once answered, the held segment leaves tagged for the client's MAC.
    let reply = ArpRepr {
        op: Operation::REPLY,
        sha: CLIENT_MAC,
        spa: CLIENT2,
        tha: r.sha,
        tpa: BOX_VLAN_IP,
    };
    let mut b = [0u8; ArpRepr::BUFFER_LEN];
    reply.emit(&mut b);
    let reply = tag(ethernet(CLIENT_MAC, r.sha, EtherType::ARP, &b), 100);
    s.on_packet(msg(vlan, Why::Local, reply), 5, &mut io);
    assert_eq!(io.packets.len(), 1);
    let (iface, p) = &io.packets[0];
    assert_eq!((*iface, vlan_of(p)), (vlan, Some(100)));
    let eth = EthernetFrame::new_checked(&p[..]).unwrap();
    assert_eq!((eth.dst(), eth.ethertype()), (CLIENT_MAC, EtherType::IPV4));
    assert_eq!(&p[18..], ip, "the datagram as given");
}
