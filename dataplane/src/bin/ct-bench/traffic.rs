//! The benchmark's flows: their quads, sequence numbers, deltas and timestamp offsets, the
//! connection objects the worker is given for them, their TCP segments as frames, and a
//! pcap writer, so the box's worker and `dpdk-testpmd` read the very same packets
//! (`net_pcap` with `infinite_rx`).
//!
//! Every segment of a flow is built so the tracker accepts it however often it is replayed:
//! the client sends `[c0, c0 + len)` acknowledging the server's `s0` (seen through the
//! splice, `s0 + Δ2`), the server sends `[s0, s0 + len)` acknowledging `c0` (`c0 + Δ1`), and
//! the object's window tracking starts at `c0` and `s0` with a 1 MiB window. A replayed
//! segment is a retransmission inside the window: accepted again, forwarded, rewritten.

use std::io::{BufWriter, Write};
use std::path::Path;

use common::conn::{Conn, ConnFlags, TcpState, Track};
use common::flow::{Direction, FlowKey};
use common::seq::SeqNumber;
use common::wire::tcp::flags;
use common::wire::{Ipv4Addr, MacAddr};
use dataplane::testing::{tcp_frame, ts_option, Envelope, Tcp};

/// The box's port MACs as the traffic addresses them (the worker is told these are its own).
pub const BOX_MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0xb0, 0, 0, 0, 0x00]),
    MacAddr([0x02, 0xb0, 0, 0, 0, 0x01]),
];
pub use dataplane::testing::{CLIENT_MAC, SERVER, SERVER_MAC};
/// The testbed's `splice-only` rule (proxy, auth none, splice after-auth).
pub const SERVER_PORT: u16 = 9000;
/// Client ports per client address.
const PORTS_PER_CLIENT: u32 = 60_000;
/// Frame size of a pure ACK with the timestamp option: Ethernet 14 + IPv4 20 + TCP 20 + 12.
pub const MIN_FRAME: usize = 66;
/// The window shift both ends use (equal shifts: the window field is not rescaled).
const WSCALE: u8 = 7;
/// The window field every segment carries (scaled: 128 000 bytes).
const WINDOW: u16 = 1000;
/// The window tracking starts with.
const TRACK_WINDOW: u32 = 1 << 20;

/// The first client address.
const CLIENT0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// How many client addresses `n` flows use (each a neighbour the worker must know).
pub fn clients(n: u32) -> u32 {
    n.div_ceil(PORTS_PER_CLIENT).max(1)
}

pub fn client_addr(c: u32) -> Ipv4Addr {
    Ipv4Addr(CLIENT0.0 + c)
}

/// splitmix64: the flows' pseudo-random numbers, the same in every process.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Everything about flow `i`.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub key: FlowKey,
    /// The client's next sequence number (its own space).
    pub c0: u32,
    /// The server's next sequence number (its own space).
    pub s0: u32,
    /// Δ1 and Δ2; zero for a `pass` flow.
    pub delta: [u32; 2],
    /// Timestamp offsets (client's clock into the server's view, and back); zero for `pass`.
    pub ts_offset: [u32; 2],
    /// The clocks' current values.
    pub tsval: [u32; 2],
}

pub fn flow(i: u32, spliced: bool) -> Flow {
    let r = mix(u64::from(i));
    let s = mix(r);
    let key = FlowKey::new(
        client_addr(i / PORTS_PER_CLIENT),
        1024 + (i % PORTS_PER_CLIENT) as u16,
        SERVER,
        SERVER_PORT,
    );
    let nz = |x: u64| (x as u32) | 1;
    Flow {
        key,
        c0: r as u32,
        s0: (r >> 32) as u32,
        delta: if spliced {
            [nz(s), nz(s >> 32)]
        } else {
            [0, 0]
        },
        ts_offset: if spliced {
            [nz(s >> 16), nz(s >> 8)]
        } else {
            [0, 0]
        },
        tsval: [(s >> 3) as u32, (s >> 40) as u32],
    }
}

/// The connection object the control plane would install for the flow: a splice (Δ ≠ 0,
/// timestamps translated) or an established `pass` flow. The worker stamps it when it
/// installs it.
pub fn object(f: &Flow, spliced: bool) -> Conn {
    let mut c = Conn::new_pass(&f.key, WSCALE);
    c.set_state(TcpState::Established);
    c.set_wscale([WSCALE, WSCALE], [WSCALE, WSCALE]);
    for (dir, start) in [
        (Direction::ClientToServer, f.c0),
        (Direction::ServerToClient, f.s0),
    ] {
        c.set_track(
            dir,
            Track {
                end: SeqNumber(start),
                maxend: SeqNumber(start.wrapping_add(TRACK_WINDOW)),
                maxwin: TRACK_WINDOW,
            },
        );
    }
    if spliced {
        c.set_flag(ConnFlags::SPLICED | ConnFlags::TIMESTAMPS, true);
        c.delta1 = f.delta[0];
        c.delta2 = f.delta[1];
        c.ts_offset = f.ts_offset;
    }
    c
}

/// The client's segment of `frame_len` bytes (a pure ACK at [`MIN_FRAME`], data above).
pub fn client_segment(f: &Flow, frame_len: usize) -> Vec<u8> {
    segment(f, frame_len, 0)
}

/// The server's segment of `frame_len` bytes.
pub fn server_segment(f: &Flow, frame_len: usize) -> Vec<u8> {
    segment(f, frame_len, 1)
}

/// The segment end `s` (0 the client, 1 the server) sends: what it has seen of its peer is the
/// peer's clock and sequence space moved by the splice's offsets.
fn segment(f: &Flow, frame_len: usize, s: usize) -> Vec<u8> {
    let peer = 1 - s;
    let payload = vec![[0x5a, 0xa5][s]; frame_len - MIN_FRAME];
    let opts = ts_option(f.tsval[s], f.tsval[peer].wrapping_add(f.ts_offset[peer]));
    let addrs = [(f.key.src, f.key.sport), (f.key.dst, f.key.dport)];
    let seqs = [f.c0, f.s0];
    let e = Envelope {
        src_mac: [CLIENT_MAC, SERVER_MAC][s],
        dst_mac: BOX_MACS[s],
        src: addrs[s].0,
        dst: addrs[peer].0,
        ttl: 64,
    };
    tcp_frame(
        &e,
        &Tcp {
            sport: addrs[s].1,
            dport: addrs[peer].1,
            seq: seqs[s],
            ack: seqs[peer].wrapping_add(f.delta[peer]),
            flags: flags::ACK | if payload.is_empty() { 0 } else { flags::PSH },
            window: WINDOW,
            options: &opts,
            payload: &payload,
        },
    )
}

/// Which flows each port's capture carries: `per_port` segments, spread evenly over the `n`
/// flows, the outside port's half a stride after the inside port's, so that when the captures
/// hold fewer segments than there are flows the two directions still touch different flows.
pub fn plan(n: u32, per_port: u32) -> (Vec<u32>, Vec<u32>) {
    let per_port = per_port.min(n).max(1);
    let at = |k: u32| (u64::from(k) * u64::from(n) / u64::from(per_port)) as u32;
    let half = n / per_port / 2;
    let inside = (0..per_port).map(at).collect();
    let outside = (0..per_port).map(|k| (at(k) + half) % n).collect();
    (inside, outside)
}

/// Writes a classic pcap (microsecond timestamps, Ethernet).
pub fn write_pcap(path: &Path, frames: impl Iterator<Item = Vec<u8>>) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65_535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut n = 0u64;
    for f in frames {
        let len = f.len() as u32;
        w.write_all(&((n / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((n % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&f)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_distinct_flows() {
        let (i, o) = plan(1 << 20, 1 << 19);
        assert_eq!((i.len(), o.len()), (1 << 19, 1 << 19));
        assert_eq!((i[1], o[0], o[1]), (2, 1, 3));
        let (i, o) = plan(1024, 1 << 19);
        assert_eq!(i, o);
        assert_eq!(i.len(), 1024);
        let (i, o) = plan(1 << 20, 1 << 17);
        assert_eq!((i[1], o[0]), (8, 4));
    }

    #[test]
    fn segments_have_the_asked_size() {
        let f = flow(7, true);
        assert_eq!(client_segment(&f, MIN_FRAME).len(), MIN_FRAME);
        assert_eq!(server_segment(&f, 1514).len(), 1514);
        assert_ne!(f.delta, [0, 0]);
        assert_eq!(flow(7, false).delta, [0, 0]);
    }
}
