use super::*;
use common::conn::Track;
use common::wire::tcp::{kind, SynOptions, TcpOption};
use proptest::prelude::*;

/// `segment_of` as it was, walking the options itself (`SynOptions::parse` for a SYN, the
/// option iterator up to the first malformed option for the SACK edges otherwise).
// A deliberate oracle: it repeats `segment_of` on purpose and must not share code with it,
// so a slip in the mapped option walk cannot hide in both.
fn reference_segment_of(tcp: &TcpPacket<&[u8]>, ack_sub: u32) -> Segment {
    let fl = tcp.flags();
    let mut sack_max: Option<SeqNumber> = None;
    let mut syn_wscale = None;
    if tcp.header_len() > common::wire::tcp::HEADER_LEN {
        if fl & flags::SYN != 0 {
            if let Ok(o) = SynOptions::parse(tcp.options()) {
                syn_wscale = o.window_scale;
            }
        } else {
            for (_, o) in tcp.option_iter().map_while(Result::ok) {
                if let TcpOption::Sack(s) = o {
                    for &(_, right) in s.as_slice() {
                        let r = right.wrapping_sub(ack_sub);
                        sack_max = Some(sack_max.map_or(r, |m| m.max(r)));
                    }
                }
            }
        }
    }
    Segment {
        flags: fl,
        seq: tcp.seq_number(),
        ack: tcp.ack_number().wrapping_sub(ack_sub),
        window: tcp.window_len(),
        payload_len: tcp.payload().len() as u32,
        sack_max,
        syn_wscale,
    }
}

/// Option lists padded to whole words: valid timestamps, SACK (edges on both sides of
/// the 2^31 wrap), window scale and MSS, mixed with malformed and unknown options.
fn option_words() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        3 => Just(vec![kind::NOP]),
        1 => Just(vec![kind::END]),
        2 => any::<u8>().prop_map(|w| vec![kind::WINDOW_SCALE, 3, w]),
        1 => Just(vec![kind::MSS, 4, 5, 0xb4]),
        3 => any::<[u8; 8]>().prop_map(|d| [&[kind::TIMESTAMPS, 10][..], &d].concat()),
        4 => (1usize..=4, any::<[u8; 32]>())
            .prop_map(|(n, d)| [&[kind::SACK, (2 + 8 * n) as u8][..], &d[..8 * n]].concat()),
        2 => (any::<u8>(), 0u8..12).prop_map(|(k, l)| {
            let mut v = vec![k, l];
            v.resize(usize::from(l.max(2)), 0x5a);
            v
        }),
    ];
    proptest::collection::vec(chunk, 0..7).prop_map(|c| {
        let mut v = c.concat();
        v.truncate(40);
        while v.len() % 4 != 0 {
            v.push(kind::END);
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// The tracker's input from the one-walk map equals the one the worker computed by
    /// walking the options itself.
    #[test]
    fn segment_of_equals_the_own_walk_reference(
        opts in option_words(),
        syn: bool,
        ack_flag: bool,
        seq: u32,
        ack: u32,
        ack_sub in prop_oneof![Just(0u32), any::<u32>()],
    ) {
        let fl = if syn { SYN } else { 0 } | if ack_flag { ACK } else { 0 };
        let f = tcp_frame(&client_env(), &Tcp { options: &opts, ..t(40000, 5201, seq, ack, fl) });
        let tcp = TcpPacket::new_checked(&f[34..]).unwrap();
        let map = tcp.option_map();
        prop_assert_eq!(segment_of(&tcp, &map, ack_sub), reference_segment_of(&tcp, ack_sub));
    }
}

fn ts_sack(tsval: u32, tsecr: u32, sack: (u32, u32)) -> Vec<u8> {
    let mut o = vec![1, 1, kind::TIMESTAMPS, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o.extend_from_slice(&[1, 1, kind::SACK, 10]);
    o.extend_from_slice(&sack.0.to_be_bytes());
    o.extend_from_slice(&sack.1.to_be_bytes());
    o
}

/// A spliced flow: Δ1 = 10, Δ2 = 3000, timestamp offsets 50 (client's) and 20 (server's);
/// the server has sent up to 5000 in its own space (8000 as the client sees it).
fn spliced_bed() -> Bed {
    let mut b = Bed::new(1);
    let mut c = b.spliced_conn(40000, 9000);
    c.set_flag(ConnFlags::TIMESTAMPS, true);
    c.delta1 = 10;
    c.delta2 = 3000;
    c.ts_offset = [50, 20];
    c.set_tracks([
        Track {
            end: SeqNumber(1000),
            maxend: SeqNumber(70_000),
            maxwin: 65_535,
        },
        Track {
            end: SeqNumber(5000),
            maxend: SeqNumber(70_000),
            maxwin: 65_535,
        },
    ]);
    b.install(c);
    b
}

fn sent_tcp(f: &[u8]) -> TcpPacket<&[u8]> {
    TcpPacket::new_checked(&f[34..]).unwrap()
}

#[test]
fn spliced_sack_and_timestamps_are_tracked_and_rewritten_from_one_walk() {
    let mut b = spliced_bed();
    let opts = ts_sack(100, 220, (7950, 8000));
    b.c2s(Tcp {
        options: &opts,
        ..t(40000, 9000, 1000, 7900, ACK)
    });
    let out = b.outside.drain_sent();
    assert_eq!(out.len(), 1, "drops: {:?}", b.workers[0].counters.drops);
    let tcp = sent_tcp(&out[0]);
    assert_eq!((tcp.seq_number().0, tcp.ack_number().0), (1010, 4900));
    let mut seen = (false, false);
    for (_, o) in tcp.option_iter().map(Result::unwrap) {
        match o {
            TcpOption::Timestamps { tsval, tsecr } => {
                assert_eq!((tsval, tsecr), (150, 200));
                seen.0 = true;
            }
            TcpOption::Sack(s) => {
                assert_eq!(s.as_slice(), &[(SeqNumber(4950), SeqNumber(5000))]);
                seen.1 = true;
            }
            _ => {}
        }
    }
    assert_eq!(seen, (true, true));
    assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
    assert_eq!(b.total(|c| c.options_malformed), 0);

    // A SACK edge past what the server sent (8100 - Δ2 = 5100 > 5000) is caught by the
    // tracker from the same map, in the server's space.
    b.c2s(Tcp {
        options: &ts_sack(101, 220, (7950, 8100)),
        ..t(40000, 9000, 1000, 7900, ACK)
    });
    assert!(b.outside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::AckBeyondData), 1);
}

#[test]
fn malformed_options_on_a_spliced_flow_are_forwarded_untouched_and_counted() {
    let mut b = spliced_bed();
    let mut opts = ts_sack(100, 220, (7950, 8000));
    opts.extend_from_slice(&[0x22, 0, 0, 0]); // an option of length 0
    b.c2s(Tcp {
        options: &opts,
        ..t(40000, 9000, 1000, 7900, ACK)
    });
    let out = b.outside.drain_sent();
    assert_eq!(out.len(), 1);
    let tcp = sent_tcp(&out[0]);
    assert_eq!(tcp.options(), &opts[..]);
    assert_eq!((tcp.seq_number().0, tcp.ack_number().0), (1010, 4900));
    assert!(tcp.verify_checksum(CLIENT.0, SERVER.0));
    assert_eq!(b.total(|c| c.options_malformed), 1);

    // No options at all: nothing to count.
    b.c2s(t(40000, 9000, 1000, 7900, ACK));
    assert_eq!(b.outside.drain_sent().len(), 1);
    assert_eq!(b.total(|c| c.options_malformed), 1);
}

#[test]
fn a_pass_syn_takes_its_window_scale_from_the_map() {
    let mut b = Bed::new(1);
    b.c2s(Tcp {
        options: &[kind::NOP, kind::WINDOW_SCALE, 3, 7],
        ..t(40000, 5201, 1000, 0, SYN)
    });
    // A malformed list announces no scale (the window-scale option before the bad one
    // does not count).
    b.c2s(Tcp {
        options: &[kind::WINDOW_SCALE, 3, 7, 0x22, 1, 0, 0, 0],
        ..t(40001, 5201, 1000, 0, SYN)
    });
    let conn = |sport| {
        let key = FlowKey::new(CLIENT, sport, SERVER, 5201);
        let w = &b.workers[0];
        *w.table().get(w.table().lookup(&key).unwrap().0)
    };
    let (good, bad) = (conn(40000), conn(40001));
    assert_eq!(good.wscale_in()[0], 7);
    assert_ne!(good.flags() & ConnFlags::WSCALE_OFFERED, 0);
    assert_eq!(bad.wscale_in()[0], 0);
    assert_eq!(bad.flags() & ConnFlags::WSCALE_OFFERED, 0);
    assert_eq!(b.outside.drain_sent().len(), 2);
}
