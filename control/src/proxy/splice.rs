//! The splice arithmetic (DESIGN.md §4, patent Figs. 8 and 9): from the two legs' numbers,
//! once both are quiet, the connection object the fast path takes over with.
//!
//! Δ1 = seq1 − ack1 and Δ2 = seq2 − ack2, where ack1 is the next byte the box expects from the
//! client, seq2 the next byte it would send the client, seq1 the next byte it would send the
//! server and ack2 the next byte it expects from the server. Timestamps get two offsets so
//! each endpoint keeps seeing a monotonic clock from its peer (PAWS never fires); window fields
//! are translated between the shifts the two legs announced; the box must never have let one
//! side send segments larger than the other accepts.

use common::conn::{Conn, ConnFlags, TcpState, Track};
use common::flow::FlowKey;

use super::tap::LegTap;

/// Why a connection cannot be spliced (it stays fully proxied, counted as a fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    #[error("a leg has not completed its handshake")]
    NoHandshake,
    #[error("the box still has unacknowledged data on a leg")]
    NotQuiet,
    #[error("timestamps negotiated on one leg only")]
    Timestamps,
    #[error("the box announced a larger MSS to one side than the other side accepts")]
    Mss,
}

/// The MSS a peer that sent no MSS option accepts (RFC 9293 §3.7.1).
const DEFAULT_MSS: u16 = 536;

/// Computes the connection object for `key` (client → server) from the client leg's and the
/// server leg's taps.
pub fn compute(key: &FlowKey, c: &LegTap, s: &LegTap, now_ms: u32) -> Result<Conn, SpliceError> {
    let (Some(c_box), Some(c_peer), Some(s_box), Some(s_peer)) =
        (c.box_syn, c.peer_syn, s.box_syn, s.peer_syn)
    else {
        return Err(SpliceError::NoHandshake);
    };
    let (Some(seq2), Some(ack1), Some(seq1), Some(ack2)) =
        (c.snd_nxt, c.rcv_nxt, s.snd_nxt, s.rcv_nxt)
    else {
        return Err(SpliceError::NoHandshake);
    };
    if !c.all_acked() || !s.all_acked() {
        return Err(SpliceError::NotQuiet);
    }
    let ts = c.timestamps();
    if ts != s.timestamps() {
        return Err(SpliceError::Timestamps);
    }
    // The box's MSS to the client bounds what the client sends the server, and vice versa.
    if c_box.mss.unwrap_or(DEFAULT_MSS) > s_peer.mss.unwrap_or(DEFAULT_MSS)
        || s_box.mss.unwrap_or(DEFAULT_MSS) > c_peer.mss.unwrap_or(DEFAULT_MSS)
    {
        return Err(SpliceError::Mss);
    }

    let delta1 = seq1.0.wrapping_sub(ack1.0);
    let delta2 = seq2.0.wrapping_sub(ack2.0);
    let mut ts_offset = [0u32; 2];
    if ts {
        // The client's clock moved into the clock the server has seen from the box, and back.
        let client = c.peer_tsval.unwrap_or(0);
        let server = s.peer_tsval.unwrap_or(0);
        ts_offset[0] = s.box_tsval.unwrap_or(client).wrapping_sub(client);
        ts_offset[1] = c.box_tsval.unwrap_or(server).wrapping_sub(server);
    }
    let (client_shift, box_to_client) = c.shifts();
    let (server_shift, box_to_server) = s.shifts();

    // Window tracking starts from what both legs announced, in each sender's space, and
    // never below an unscaled full window (a leg may have seen no window after its SYN); the
    // tracker widens it as traffic flows. Each peer was talking to the box: it may have as
    // much in flight as the largest window the box ever gave it, which can be more than the
    // other peer's window. The tracker must accept that data as new and the other peer's
    // acknowledgements lagging behind it (otherwise the data passes untracked and the
    // acknowledgements of it look like acknowledgements of data never sent).
    const FLOOR: u32 = 65_535;
    let client_win = (u32::from(c.peer_window) << client_shift).max(FLOOR);
    let server_win = (u32::from(s.peer_window) << server_shift).max(FLOOR);
    let box_win_c = (u32::from(c.box_window.max(c.box_window_max)) << box_to_client).max(FLOOR);
    let box_win_s = (u32::from(s.box_window.max(s.box_window_max)) << box_to_server).max(FLOOR);
    let track = [
        Track {
            end: ack1,
            maxend: ack1.wrapping_add(server_win.max(box_win_c)),
            maxwin: client_win.max(box_win_s),
        },
        Track {
            end: ack2,
            maxend: ack2.wrapping_add(client_win.max(box_win_s)),
            maxwin: server_win.max(box_win_c),
        },
    ];
    let mut flags = ConnFlags::SPLICED;
    if ts {
        flags |= ConnFlags::TIMESTAMPS;
    }
    Ok(Conn {
        client: key.src,
        server: key.dst,
        client_port: key.sport,
        server_port: key.dport,
        delta1,
        delta2,
        ts_offset,
        track,
        last_seen: now_ms,
        state: TcpState::Established,
        flags,
        // direction 0: the client's own shift in, the shift the server believes (the box's
        // on the server leg) out; direction 1 the other way round.
        wscale_in: [client_shift, server_shift],
        wscale_out: [box_to_server, box_to_client],
        reserved: [0; 2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::seq::SeqNumber;
    use common::wire::tcp::SynOptions;
    use common::wire::Ipv4Addr;

    fn syn(mss: u16, ws: u8, ts: bool) -> Option<SynOptions> {
        Some(SynOptions {
            mss: Some(mss),
            window_scale: Some(ws),
            sack_permitted: true,
            timestamps: ts.then_some((1, 0)),
        })
    }

    fn key() -> FlowKey {
        FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            40000,
            Ipv4Addr::new(198, 19, 0, 2),
            8080,
        )
    }

    /// The legs of Fig. 8: the box sent the client 50 bytes of its own (a prompt) and the
    /// server a 100-byte request it had read from the client.
    fn legs() -> (LegTap, LegTap) {
        let c = LegTap {
            box_syn: syn(1460, 7, true),
            peer_syn: syn(1460, 7, true),
            snd_nxt: Some(SeqNumber(5000 + 1 + 50)),
            rcv_nxt: Some(SeqNumber(1000 + 1 + 100)),
            peer_nxt: Some(SeqNumber(1101)),
            peer_acked: Some(SeqNumber(5051)),
            box_tsval: Some(700),
            peer_tsval: Some(100),
            box_window: 512,
            peer_window: 501,
            ..LegTap::default()
        };
        let s = LegTap {
            box_syn: syn(1460, 9, true),
            peer_syn: syn(1460, 8, true),
            snd_nxt: Some(SeqNumber(90_000 + 1 + 100)),
            rcv_nxt: Some(SeqNumber(u32::MAX - 10)),
            peer_nxt: Some(SeqNumber(u32::MAX - 10)),
            peer_acked: Some(SeqNumber(90_101)),
            box_tsval: Some(710),
            peer_tsval: Some(3_000_000),
            box_window: 128,
            peer_window: 250,
            ..LegTap::default()
        };
        (c, s)
    }

    #[test]
    fn deltas_follow_fig_8() {
        let (c, s) = legs();
        let conn = compute(&key(), &c, &s, 0).unwrap();
        // Δ1 = seq1 − ack1, Δ2 = seq2 − ack2, modulo 2^32 (ack2 is just below the wrap).
        assert_eq!(conn.delta1, 90_101u32.wrapping_sub(1101));
        assert_eq!(conn.delta2, 5051u32.wrapping_sub(u32::MAX - 10));
        // The client's next byte lands exactly on the server's expected sequence.
        assert_eq!(SeqNumber(1101).wrapping_add(conn.delta1), SeqNumber(90_101));
        assert_eq!(
            SeqNumber(u32::MAX - 10).wrapping_add(conn.delta2),
            SeqNumber(5051)
        );
        assert_eq!(conn.state, TcpState::Established);
        assert_eq!(conn.key(), key());
    }

    #[test]
    fn timestamp_offsets_keep_each_peer_clock_monotonic() {
        let (c, s) = legs();
        let conn = compute(&key(), &c, &s, 0).unwrap();
        assert_ne!(conn.flags & ConnFlags::TIMESTAMPS, 0);
        // The client's last TSval, moved, equals the last TSval the server saw from the box.
        assert_eq!(100u32.wrapping_add(conn.ts_offset[0]), 710);
        assert_eq!(3_000_000u32.wrapping_add(conn.ts_offset[1]), 700);
    }

    #[test]
    fn window_shifts_cross_over() {
        let (c, s) = legs();
        let conn = compute(&key(), &c, &s, 0).unwrap();
        assert_eq!(conn.wscale_in, [7, 8]);
        assert_eq!(conn.wscale_out, [9, 7]);
    }

    #[test]
    fn timestamps_on_one_leg_only_cannot_be_spliced() {
        let (c, mut s) = legs();
        s.peer_syn = syn(1460, 8, false);
        assert_eq!(compute(&key(), &c, &s, 0), Err(SpliceError::Timestamps));
    }

    #[test]
    fn an_mss_one_side_cannot_take_is_refused() {
        let (c, mut s) = legs();
        s.peer_syn = syn(1200, 8, true); // the box told the client 1460
        assert_eq!(compute(&key(), &c, &s, 0), Err(SpliceError::Mss));
    }

    #[test]
    fn unacknowledged_data_is_not_quiet() {
        let (mut c, s) = legs();
        c.peer_acked = Some(SeqNumber(5040));
        assert_eq!(compute(&key(), &c, &s, 0), Err(SpliceError::NotQuiet));
    }

    #[test]
    fn tracking_allows_what_the_box_let_each_peer_send() {
        let (mut c, mut s) = legs();
        // The box once gave the client 2048 << 7 = 256 KiB, more than the server's window
        // (250 << 8 = 62.5 KiB); it gave the server 1024 << 9 = 512 KiB.
        c.box_window_max = 2048;
        s.box_window_max = 1024;
        let conn = compute(&key(), &c, &s, 0).unwrap();
        let [client, server] = conn.track;
        assert_eq!(client.maxend, SeqNumber(1101).wrapping_add(2048 << 7));
        assert_eq!(
            server.maxwin,
            2048 << 7,
            "the server's acks may lag the client's data"
        );
        assert_eq!(
            client.maxwin,
            1024 << 9,
            "the client's acks may lag the server's data"
        );
        assert_eq!(
            server.maxend,
            SeqNumber(u32::MAX - 10).wrapping_add(1024 << 9)
        );
    }
}
