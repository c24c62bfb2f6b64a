use super::*;
use crate::testing::ts_option;
use common::conn::{Track, Xlate};

/// A spliced flow on 40000 → 9000 (Δ = 0, wide windows) with `xlate`, the two timestamp
/// words and `split_mss` as given.
fn spliced(b: &mut Bed, xlate: u8, ts_offset: [u32; 2], split_mss: u8) {
    let mut c = b.spliced_conn(40000, 9000);
    c.set_xlate(xlate);
    c.ts_offset = ts_offset;
    c.set_split_mss(split_mss);
    c.set_tracks([
        Track {
            end: SeqNumber(1000),
            maxend: SeqNumber(1000 + (1 << 20)),
            maxwin: 1 << 20,
        },
        Track {
            end: SeqNumber(9000),
            maxend: SeqNumber(9000 + (1 << 20)),
            maxwin: 1 << 20,
        },
    ]);
    b.install(c);
}

/// The TCP segment of each frame, checked: both checksums right.
fn segments(frames: &[Vec<u8>], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|f| {
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum(), "IPv4 checksum");
            // Short frames keep their Ethernet padding after the datagram (a grown one too).
            assert!(usize::from(ip.total_len()) <= eth.payload().len());
            assert!(eth.payload().len() - usize::from(ip.total_len()) < 46);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(src.0, dst.0), "TCP checksum");
            ip.payload().to_vec()
        })
        .collect()
}

fn timestamps(seg: &[u8]) -> Option<(u32, u32)> {
    let t = TcpPacket::new_checked(seg).unwrap();
    t.option_iter().find_map(|o| match o {
        Ok((_, common::wire::tcp::TcpOption::Timestamps { tsval, tsecr })) => Some((tsval, tsecr)),
        _ => None,
    })
}

#[test]
fn timestamps_are_inserted_toward_the_peer_that_negotiated_them() {
    let mut b = Bed::new(1);
    // Only the server has timestamps: client→server gets one (the box's clock + 5, echoing
    // the server's latest TSval 777), server→client loses it.
    spliced(&mut b, Xlate::TS_SERVER_ONLY, [5, 777], 0);
    let data = [0x42u8; 100];
    let out = b.push(INSIDE, &data, t(40000, 9000, 1000, 9000, 0));
    assert_eq!(out.len(), 1);
    assert_eq!(timestamps(&out[0]), Some((b.now + 5, 777)));
    let tcp = TcpPacket::new_checked(&out[0][..]).unwrap();
    assert_eq!(tcp.payload(), &data[..], "the payload moved intact");
    assert_eq!(tcp.seq_number().0, 1000);
    assert_eq!(b.total(|c| c.ts_inserted), 1);

    // The server's next TSval (900) is removed on its way to the client, and echoed later.
    let opts = ts_option(900, b.now + 5);
    b.s2c(Tcp {
        options: &opts,
        ..t(9000, 40000, 9000, 1100, ACK)
    });
    let out = segments(&b.inside.drain_sent(), SERVER, CLIENT);
    assert_eq!(out.len(), 1);
    assert_eq!(timestamps(&out[0]), None);
    assert_eq!(
        &out[0][20..32],
        &[1u8; 12],
        "the option became NOPs in place"
    );
    assert_eq!(b.total(|c| c.ts_removed), 1);

    // A reordered older TSval does not move the echo back.
    let old = ts_option(850, b.now + 5);
    b.s2c(Tcp {
        options: &old,
        ..t(9000, 40000, 9000, 1100, ACK)
    });
    b.inside.drain_sent();
    b.now += 7;
    b.c2s(t(40000, 9000, 1100, 9000, ACK));
    let out = segments(&b.outside.drain_sent(), CLIENT, SERVER);
    assert_eq!(
        timestamps(&out[0]),
        Some((b.now + 5, 900)),
        "TSval follows the clock; TSecr is the latest TSval"
    );
}

#[test]
fn a_segment_without_headroom_goes_on_without_the_option() {
    // An in-memory packet always has room; what is checked here is that a malformed option
    // list is not grown (it is counted and sent as it is).
    let mut b = Bed::new(1);
    spliced(&mut b, Xlate::TS_SERVER_ONLY, [5, 777], 0);
    let bad = [8u8, 1, 0, 0]; // a timestamps kind with a length below 2
    b.c2s(Tcp {
        options: &bad,
        ..t(40000, 9000, 1000, 9000, ACK)
    });
    let out = segments(&b.outside.drain_sent(), CLIENT, SERVER);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][20..24], &bad);
    assert_eq!(b.total(|c| c.ts_insert_failed), 1);
    assert_eq!(b.total(|c| c.ts_inserted), 0);
}

/// The pieces a segment was split into, checked: each carries at most `room` bytes of data
/// and options and the timestamps `ts`, each starts where the one before ends. Returns their
/// data joined.
fn joined_pieces(out: &[Vec<u8>], room: usize, ts: (u32, u32)) -> Vec<u8> {
    let first = TcpPacket::new_checked(&out[0][..]).unwrap().seq_number().0;
    let mut joined = Vec::new();
    for (i, seg) in out.iter().enumerate() {
        let tcp = TcpPacket::new_checked(&seg[..]).unwrap();
        assert!(
            tcp.payload().len() + tcp.options().len() <= room,
            "piece {i}"
        );
        assert_eq!(
            tcp.seq_number().0,
            first.wrapping_add(joined.len() as u32),
            "piece {i}"
        );
        assert_eq!(timestamps(seg), Some(ts), "piece {i}: every piece has them");
        joined.extend_from_slice(tcp.payload());
    }
    joined
}

impl Bed {
    /// Sends `payload` with PSH in `seg` from the client (`INSIDE`) or from the server,
    /// and returns the TCP segments that leave the other side (their checksums checked).
    fn push(&mut self, from: Iface, payload: &[u8], seg: Tcp<'_>) -> Vec<Vec<u8>> {
        let seg = Tcp {
            payload,
            flags: ACK | PSH,
            ..seg
        };
        match from {
            INSIDE => {
                self.c2s(seg);
                segments(&self.outside.drain_sent(), CLIENT, SERVER)
            }
            _ => {
                self.s2c(seg);
                segments(&self.inside.drain_sent(), SERVER, CLIENT)
            }
        }
    }

    /// Sends `payload` in `seg` from the client (`INSIDE`) or from the server and checks
    /// that it leaves the other side whole, as one frame.
    fn goes_whole(&mut self, from: Iface, payload: &[u8], seg: Tcp<'_>) {
        let seg = Tcp { payload, ..seg };
        let sent = match from {
            INSIDE => {
                self.c2s(seg);
                self.outside.drain_sent()
            }
            _ => {
                self.s2c(seg);
                self.inside.drain_sent()
            }
        };
        assert_eq!(sent.len(), 1, "from the {from:?} side: not split");
    }
}

/// Which pieces carry PSH.
fn pushed(out: &[Vec<u8>]) -> Vec<bool> {
    out.iter()
        .map(|seg| TcpPacket::new_checked(&seg[..]).unwrap().flags() & PSH != 0)
        .collect()
}

#[test]
fn segments_larger_than_the_server_accepts_are_split() {
    let mut b = Bed::new(1);
    // The server accepts 536 (67 × 8); the client has timestamps too.
    spliced(&mut b, 0, [0, 0], 67);
    let data: Vec<u8> = (0..1400u32).map(|i| (i * 13) as u8).collect();
    let opts = ts_option(5, 6);
    let seg = Tcp {
        options: &opts,
        ..t(40000, 9000, 1000, 9000, 0)
    };
    let out = b.push(INSIDE, &data, seg);
    assert_eq!(
        out.len(),
        3,
        "524 bytes of data beside 12 of options per piece"
    );
    assert_eq!(
        TcpPacket::new_checked(&out[0][..]).unwrap().seq_number().0,
        1000
    );
    assert_eq!(joined_pieces(&out, 536, (5, 6)), data);
    assert_eq!(
        pushed(&out),
        [false, false, true],
        "PSH on the last piece only"
    );
    assert_eq!(b.total(|c| c.segments_split), 1);
    assert_eq!(b.total(|c| c.split_pieces), 3);

    // Server → client is never split; a segment that fits is left alone.
    b.goes_whole(OUTSIDE, &data, t(9000, 40000, 9000, 2400, ACK));
    b.goes_whole(INSIDE, &data[..500], t(40000, 9000, 2400, 9000, ACK));
    assert_eq!(b.total(|c| c.segments_split), 1);
}

#[test]
fn a_damaged_segment_to_split_is_dropped_as_its_receiver_would() {
    let mut b = Bed::new(1);
    spliced(&mut b, 0, [0, 0], 67);
    let data = [7u8; 1000];
    let mut f = tcp_frame(
        &client_env(),
        &Tcp {
            payload: &data,
            ..t(40000, 9000, 1000, 9000, ACK)
        },
    );
    let last = f.len() - 1;
    f[last] ^= 0x5a;
    b.inside.inject(f);
    b.poll();
    assert!(b.outside.drain_sent().is_empty());
    assert_eq!(b.drops(DropReason::BadChecksum), 1);
}

#[test]
fn a_segment_grown_by_an_inserted_option_is_split_to_fit_the_client() {
    let mut b = Bed::new(1);
    // Only the client has timestamps, and the server was told 1460 (it had been remembered
    // with timestamps): its full-sized segments no longer fit the client once they carry the
    // option, so they are split at the client's MSS (1456 in 8-byte units).
    spliced(
        &mut b,
        Xlate::TS_CLIENT_ONLY | Xlate::SPLIT_TO_CLIENT,
        [777, 5],
        (1460 / 8) as u8,
    );
    let data: Vec<u8> = (0..1460u32).map(|i| (i * 7) as u8).collect();
    let out = b.push(OUTSIDE, &data, t(9000, 40000, 9000, 1000, 0));
    assert_eq!(out.len(), 2);
    assert_eq!(joined_pieces(&out, 1456, (b.now + 5, 777)), data);
    assert_eq!(b.total(|c| c.ts_inserted), 1);
    assert_eq!(b.total(|c| c.segments_split), 1);
    // Client → server is not split.
    b.goes_whole(INSIDE, &data, t(40000, 9000, 1000, 10_460, ACK));
}
