//! The vector path against the slow path: two boxes in the same state get the same random
//! bursts, one carrying the common case by the vector path, the other sending every packet
//! through `process()`. Everything observable must agree: the frames each port sends (bytes
//! and order), what goes to control, every counter but `fast_path`, and every object in the
//! table.
//!
//! The bursts mix flows (several packets of one flow in one vector, both directions), packets
//! in and out of window, the template's layouts and others (SYN, FIN, RST, SACK, MSS, TTL 1,
//! the box's own address), and table changes in the middle of a vector: a SYN that reuses the
//! quad of a closing flow (a removal, which moves entries) or opens a new one (an insert).
//! Between bursts a neighbour may change (the server's MAC, the client's entry removed and
//! restored): a next hop the vector path remembered must not outlive it.

use proptest::prelude::*;

use super::*;
use crate::testing::ts_option;
use common::conn::{Track, Xlate};

/// The flows installed before the bursts, client ports from here.
const FIRST_PORT: u16 = 41000;
const SERVER_PORT: u16 = 5201;

/// One flow's spliced object: deltas, timestamp offsets and window shifts of its own, its
/// tracking anchored at `base` (client) and `base ^ 0x5a5a_0000` (server).
#[derive(Debug, Clone)]
struct FlowSpec {
    delta1: u32,
    delta2: u32,
    ts: Option<(u32, u32)>,
    wscale: [(u8, u8); 2],
    base: u32,
    /// Lead it into a closing state (a later SYN on its quad starts over).
    closing: bool,
    /// Owned by the participating stack.
    proxied: bool,
    /// Option translation (the slow path's).
    xlate: u8,
}

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>()),
        proptest::option::of((any::<u32>(), any::<u32>())),
        ((0u8..=14, 0u8..=14), (0u8..=14, 0u8..=14)),
        (0u8..10, 0u8..10, 0u8..10),
    )
        .prop_map(
            |((delta1, delta2, base), ts, (w0, w1), (c, p, x))| FlowSpec {
                delta1,
                delta2,
                ts,
                wscale: [w0, w1],
                base,
                closing: c == 0,
                proxied: p == 0,
                xlate: if x == 0 { Xlate::TS_CLIENT_ONLY } else { 0 },
            },
        )
}

/// What a packet of a burst is.
#[derive(Debug, Clone)]
enum Kind {
    /// A segment of flow `flow` (index into the installed flows), `from_client` or not.
    Data {
        flow: usize,
        from_client: bool,
        /// Added to the sender's tracked end: small ones are in the window, large ones not.
        seq_off: i32,
        ack_off: i32,
        flags: u8,
        window: u16,
        len: u16,
        /// 0: no options, 1: timestamps, 2: SACK, 3: MSS (outside the template).
        options: u8,
    },
    /// A SYN from the client on port `port` (a new flow, or a closing one's quad).
    Syn { port: u16 },
    /// An echo request to the box's own address.
    Ping,
    /// A segment whose TTL runs out at the box.
    TtlOut { flow: usize },
}

fn kind(flows: usize) -> impl Strategy<Value = Kind> {
    let data = (
        0..flows,
        any::<bool>(),
        prop_oneof![-3000i32..3000, any::<i32>()],
        prop_oneof![-3000i32..3000, any::<i32>()],
        prop_oneof![
            8 => Just(ACK),
            4 => Just(ACK | PSH),
            1 => Just(ACK | FIN),
            1 => Just(RST),
            1 => Just(ACK | RST),
            1 => any::<u8>(),
        ],
        any::<u16>(),
        0u16..1400,
        prop_oneof![6 => Just(0u8), 6 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
    )
        .prop_map(
            |(flow, from_client, seq_off, ack_off, flags, window, len, options)| Kind::Data {
                flow,
                from_client,
                seq_off,
                ack_off,
                flags,
                window,
                len,
                options,
            },
        );
    prop_oneof![
        30 => data,
        2 => (FIRST_PORT..FIRST_PORT + flows as u16 + 2).prop_map(|port| Kind::Syn { port }),
        1 => Just(Kind::Ping),
        1 => (0..flows).prop_map(|flow| Kind::TtlOut { flow }),
    ]
}

/// A neighbour change control may send between bursts.
#[derive(Debug, Clone, Copy)]
enum NeighbourChange {
    ServerMoves,
    ServerBack,
    ClientGone,
    ClientBack,
}

impl NeighbourChange {
    fn command(self) -> Command {
        let moved = MacAddr([0x02, 0x5e, 0x00, 0x00, 0x00, 0x99]);
        let (iface, ip, mac) = match self {
            NeighbourChange::ServerMoves => (OUTSIDE, SERVER, Some(moved)),
            NeighbourChange::ServerBack => (OUTSIDE, SERVER, Some(SERVER_MAC)),
            NeighbourChange::ClientGone => (INSIDE, CLIENT, None),
            NeighbourChange::ClientBack => (INSIDE, CLIENT, Some(CLIENT_MAC)),
        };
        Command::Neighbour { iface, ip, mac }
    }
}

type Bursts = Vec<(Option<NeighbourChange>, Vec<Kind>)>;

fn scenario() -> impl Strategy<Value = (Vec<FlowSpec>, Bursts)> {
    let change = proptest::option::weighted(
        0.4,
        prop_oneof![
            Just(NeighbourChange::ServerMoves),
            Just(NeighbourChange::ServerBack),
            Just(NeighbourChange::ClientGone),
            Just(NeighbourChange::ClientBack),
        ],
    );
    proptest::collection::vec(flow_spec(), 1..6).prop_flat_map(move |flows| {
        let n = flows.len();
        let burst = (change.clone(), proptest::collection::vec(kind(n), 1..48));
        (Just(flows), proptest::collection::vec(burst, 1..5))
    })
}

/// The object of `f` for client port `port`, as control would install it after a splice.
fn object(b: &Bed, port: u16, f: &FlowSpec) -> Conn {
    let mut c = b.spliced_conn(port, SERVER_PORT);
    c.delta1 = f.delta1;
    c.delta2 = f.delta2;
    if let Some((a, z)) = f.ts {
        c.set_flag(ConnFlags::TIMESTAMPS, true);
        c.ts_offset = [a, z];
    }
    if f.proxied {
        c.set_flag(ConnFlags::PROXIED, true);
    }
    c.set_xlate(f.xlate);
    c.set_wscale(
        [f.wscale[0].0, f.wscale[1].0],
        [f.wscale[0].1, f.wscale[1].1],
    );
    let server_base = f.base ^ 0x5a5a_0000;
    let track = |end: u32, peer_end: u32| Track {
        end: SeqNumber(end),
        maxend: SeqNumber(peer_end).wrapping_add(65535),
        maxwin: 65535,
    };
    c.set_tracks([track(f.base, server_base), track(server_base, f.base)]);
    if f.closing {
        c.set_state(TcpState::LastAck);
    }
    c
}

/// The frame of `k`, as its sender puts it on its wire: (from the client's side, frame).
fn frame_of(k: &Kind, flows: &[FlowSpec]) -> (bool, Vec<u8>) {
    match *k {
        Kind::Data {
            flow,
            from_client,
            seq_off,
            ack_off,
            flags,
            window,
            len,
            options,
        } => {
            let f = &flows[flow];
            let port = FIRST_PORT + flow as u16;
            let (mine, theirs) = if from_client {
                (f.base, f.base ^ 0x5a5a_0000)
            } else {
                (f.base ^ 0x5a5a_0000, f.base)
            };
            // The peer sees the other side's numbers shifted by the deltas.
            let (seq_add, ack_add) = if from_client {
                (0, f.delta2)
            } else {
                (0, f.delta1)
            };
            let ts = ts_option(mine, theirs);
            let sack = [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
            let mss = [2, 4, 5, 0xb4];
            let opts: &[u8] = match options {
                1 => &ts,
                2 => &sack,
                3 => &mss,
                _ => &[],
            };
            let payload = vec![0xa5u8; usize::from(len)];
            let (sport, dport) = if from_client {
                (port, SERVER_PORT)
            } else {
                (SERVER_PORT, port)
            };
            let t = Tcp {
                sport,
                dport,
                seq: mine.wrapping_add(seq_off as u32).wrapping_add(seq_add),
                ack: theirs.wrapping_add(ack_off as u32).wrapping_add(ack_add),
                flags,
                window,
                options: opts,
                payload: &payload,
            };
            let env = if from_client {
                client_env()
            } else {
                server_env()
            };
            (from_client, tcp_frame(&env, &t))
        }
        Kind::Syn { port } => (
            true,
            tcp_frame(&client_env(), &t(port, SERVER_PORT, 77, 0, SYN)),
        ),
        Kind::Ping => {
            let e = Envelope {
                dst: crate::testing::BOX_IN_IP,
                ..client_env()
            };
            (true, icmp_echo_frame(&e, 9, 1, b"hi"))
        }
        Kind::TtlOut { flow } => {
            let e = Envelope {
                ttl: 1,
                ..client_env()
            };
            let port = FIRST_PORT + flow as u16;
            (true, tcp_frame(&e, &t(port, SERVER_PORT, 1, 1, ACK)))
        }
    }
}

/// One worker with a small table (the comparison copies every slot after every burst).
fn small_bed() -> Bed {
    let mut cfg = testbed_config();
    cfg.flow_table.capacity = 1024;
    Bed::with(1, cfg, ForwardMode::Full, 1024)
}

/// What a box showed the world after a burst.
#[derive(Debug, PartialEq)]
struct Seen {
    inside: Vec<Vec<u8>>,
    outside: Vec<Vec<u8>>,
    to_control: Vec<(Iface, String, Vec<u8>)>,
    counters: WorkerCounters,
    slots: Vec<Conn>,
}

fn seen(b: &mut Bed) -> Seen {
    let mut to_control = Vec::new();
    while let Some(m) = b.rings.to_control.pop() {
        to_control.push((m.iface, format!("{:?}", m.why), m.pkt));
    }
    let mut counters = b.workers[0].counters;
    counters.fast_path = 0;
    Seen {
        inside: b.inside.drain_sent(),
        outside: b.outside.drain_sent(),
        to_control,
        counters,
        slots: b.workers[0].table().slots().to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn the_vector_path_and_the_slow_path_agree((flows, bursts) in scenario()) {
        let mut fast = small_bed();
        let mut slow = small_bed();
        slow.workers[0].slow_path_only();
        for (i, f) in flows.iter().enumerate() {
            let port = FIRST_PORT + i as u16;
            let c = object(&fast, port, f);
            fast.install(c);
            slow.install(c);
        }
        prop_assert_eq!(seen(&mut fast), seen(&mut slow));
        for (change, burst) in &bursts {
            for b in [&mut fast, &mut slow] {
                if let Some(c) = change {
                    prop_assert!(b.rings.commands[0].push(c.command()).is_ok());
                }
                for k in burst {
                    let (from_client, f) = frame_of(k, &flows);
                    let nic = if from_client { &b.inside } else { &b.outside };
                    prop_assert!(nic.inject(f));
                }
                // One turn: every packet of the burst in one vector per port.
                let now = b.now;
                b.workers[0].poll(now);
            }
            prop_assert_eq!(seen(&mut fast), seen(&mut slow), "{:?}, burst {:?}", change, burst);
        }
    }
}

/// The scenario's common case does take the vector path (otherwise the comparison above
/// would compare the slow path with itself).
#[test]
fn the_vector_path_carries_the_common_case() {
    let mut b = small_bed();
    let f = FlowSpec {
        delta1: 1000,
        delta2: 77,
        ts: Some((5, 9)),
        wscale: [(7, 7), (2, 7)],
        base: 123_456,
        closing: false,
        proxied: false,
        xlate: 0,
    };
    b.install(object(&b, FIRST_PORT, &f));
    for from_client in [true, false] {
        let k = Kind::Data {
            flow: 0,
            from_client,
            seq_off: 0,
            ack_off: 0,
            flags: ACK | PSH,
            window: 1000,
            len: 100,
            options: 1,
        };
        let (_, frame) = frame_of(&k, std::slice::from_ref(&f));
        let nic = if from_client { &b.inside } else { &b.outside };
        assert!(nic.inject(frame));
        b.poll();
    }
    assert_eq!(b.workers[0].counters.fast_path, 2);
    assert_eq!(b.outside.drain_sent().len(), 1);
    assert_eq!(b.inside.drain_sent().len(), 1);
}
