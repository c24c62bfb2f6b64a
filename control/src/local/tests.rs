use super::*;
use crate::testing::{testbed_config, CLIENT_TO_SERVER};
use common::wire::arp::ArpPacket;
use common::wire::icmp::Message;
use dataplane::testing::{
    arp_request, icmp_echo_frame, tcp_frame, Envelope, Tcp, BOX_IN, BOX_IN_IP, BOX_OUT, BOX_OUT_IP,
    CLIENT, CLIENT_MAC, SERVER, SERVER_MAC,
};

#[derive(Default)]
struct Io {
    frames: Vec<(Side, Vec<u8>)>,
    packets: Vec<(Side, Vec<u8>)>,
    commands: Vec<Command>,
}

impl ControlIo<Vec<u8>> for Io {
    fn send_frame(&mut self, side: Side, frame: &[u8]) {
        self.frames.push((side, frame.to_vec()));
    }
    fn send_packet(&mut self, side: Side, pkt: Vec<u8>) {
        self.packets.push((side, pkt));
    }
    fn broadcast(&mut self, cmd: Command) {
        self.commands.push(cmd);
    }
    fn command(&mut self, _worker: u16, cmd: Command) -> bool {
        self.commands.push(cmd);
        true
    }
    fn reinject(&mut self, _worker: u16, side: Side, pkt: Vec<u8>) -> bool {
        self.packets.push((side, pkt));
        true
    }
    fn alloc(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        Some(frame.to_vec())
    }
}

fn stack() -> LocalStack<Vec<u8>> {
    LocalStack::new(Router::new(&testbed_config()), [BOX_IN, BOX_OUT])
}

fn msg(port: Side, why: Why, pkt: Vec<u8>) -> ToControl<Vec<u8>> {
    ToControl {
        port,
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
        Side::Inside,
        Why::Resolve {
            out: Side::Outside,
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
            Side::Inside,
            Why::Local,
            arp_request(CLIENT_MAC, CLIENT, BOX_IN_IP),
        ),
        0,
        &mut io,
    );
    assert_eq!(io.frames.len(), 1);
    let (side, f) = &io.frames[0];
    assert_eq!(*side, Side::Inside);
    let r = arp_of(f);
    assert_eq!(
        (r.op, r.sha, r.spa, r.tha, r.tpa),
        (Operation::REPLY, BOX_IN, BOX_IN_IP, CLIENT_MAC, CLIENT)
    );
    assert_eq!(
        io.commands,
        vec![Command::Neighbour {
            port: Side::Inside,
            ip: CLIENT,
            mac: Some(CLIENT_MAC)
        }]
    );
    assert_eq!(s.neighbour(Side::Inside, CLIENT), Some(CLIENT_MAC));
}

#[test]
fn ignores_arp_for_other_addresses_and_other_ports() {
    let (mut s, mut io) = (stack(), Io::default());
    s.on_packet(
        msg(
            Side::Inside,
            Why::Local,
            arp_request(CLIENT_MAC, CLIENT, Ipv4Addr::new(198, 18, 0, 77)),
        ),
        0,
        &mut io,
    );
    // the outside address asked on the inside port is not answered either
    s.on_packet(
        msg(
            Side::Inside,
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
    s.on_packet(
        msg(Side::Outside, Why::Local, server_reply_arp()),
        5,
        &mut io,
    );
    assert_eq!(io.packets.len(), 3);
    for (side, p) in &io.packets {
        assert_eq!(*side, Side::Outside);
        assert_eq!(
            EthernetFrame::new_checked(&p[..]).unwrap().dst(),
            SERVER_MAC
        );
    }
    assert!(io.commands.contains(&Command::Neighbour {
        port: Side::Outside,
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
    s.on_packet(
        msg(Side::Outside, Why::Local, server_reply_arp()),
        1,
        &mut io,
    );
    io.commands.clear();
    io.frames.clear();
    s.tick(REACHABLE_MS + 1, &mut io);
    assert_eq!(io.frames.len(), 1, "a refresh request");
    assert_eq!(
        s.neighbour(Side::Outside, SERVER),
        Some(SERVER_MAC),
        "still used while refreshing"
    );
    for i in 1..=ARP_TRIES {
        s.tick(REACHABLE_MS + 1 + i * ARP_RETRY_MS, &mut io);
    }
    assert_eq!(s.neighbour(Side::Outside, SERVER), None);
    assert_eq!(
        io.commands,
        vec![Command::Neighbour {
            port: Side::Outside,
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
        msg(
            Side::Inside,
            Why::Local,
            icmp_echo_frame(&e, 7, 9, b"hello"),
        ),
        0,
        &mut io,
    );
    let (side, f) = &io.frames[0];
    assert_eq!(*side, Side::Inside);
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
    s.on_packet(
        msg(Side::Inside, Why::TtlExceeded, transit_syn(1)),
        0,
        &mut io,
    );
    let (side, f) = &io.frames[0];
    assert_eq!(*side, Side::Inside);
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
            msg(Side::Inside, Why::TtlExceeded, transit_syn(1)),
            1_000,
            &mut io,
        );
    }
    assert_eq!(io.frames.len(), ICMP_ERRORS_PER_S as usize, "the burst");
    assert_eq!(s.counters.icmp_rate_limited, 20);
    // A second later the rate allows more again.
    s.on_packet(
        msg(Side::Inside, Why::TtlExceeded, transit_syn(1)),
        2_000,
        &mut io,
    );
    assert_eq!(io.frames.len(), ICMP_ERRORS_PER_S as usize + 1);
}
