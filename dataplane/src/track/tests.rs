//! Tracker tests, grouped by the state the connection is in.

use super::*;
use common::flow::{Direction::ClientToServer as C2S, Direction::ServerToClient as S2C, FlowKey};
use common::wire::Ipv4Addr;
use flags::{ACK, FIN, PSH, RST, SYN};

const LAX: TrackConfig = TrackConfig { strict_rst: false };
const STRICT: TrackConfig = TrackConfig { strict_rst: true };

/// A connection driven by hand: `c` and `s` are the next sequence numbers each side sends.
struct Pair {
    conn: Conn,
    c: u32,
    s: u32,
}

fn seg(flags: u8, seq: u32, ack: u32, window: u16, len: u32) -> Segment {
    Segment {
        flags,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        window,
        payload_len: len,
        sack_max: None,
        syn_wscale: None,
    }
}

/// The connection every test tracks.
fn key() -> FlowKey {
    FlowKey::new(
        Ipv4Addr::new(198, 18, 0, 1),
        40000,
        Ipv4Addr::new(198, 19, 0, 2),
        80,
    )
}

impl Pair {
    /// Client SYN only.
    fn syn_sent(c_isn: u32, wscale: Option<u8>) -> Pair {
        let mut conn = Conn::new_pass(&key(), 0);
        let mut s = seg(SYN, c_isn, 0, 64240, 0);
        s.syn_wscale = wscale;
        init_from_syn(&mut conn, &s);
        Pair {
            conn,
            c: c_isn.wrapping_add(1),
            s: 0,
        }
    }

    fn syn_recv(c_isn: u32, s_isn: u32, wscale: Option<(u8, u8)>) -> Pair {
        let mut p = Pair::syn_sent(c_isn, wscale.map(|w| w.0));
        let mut sa = seg(SYN | ACK, s_isn, p.c, 65160, 0);
        sa.syn_wscale = wscale.map(|w| w.1);
        assert_eq!(p.send(S2C, &sa), TrackVerdict::Accept);
        p.s = s_isn.wrapping_add(1);
        p
    }

    fn established(c_isn: u32, s_isn: u32) -> Pair {
        let mut p = Pair::syn_recv(c_isn, s_isn, None);
        assert_eq!(p.ack(C2S), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::Established);
        p
    }

    fn send(&mut self, dir: Direction, s: &Segment) -> TrackVerdict {
        self.send_cfg(dir, s, &LAX)
    }

    fn send_cfg(&mut self, dir: Direction, s: &Segment, cfg: &TrackConfig) -> TrackVerdict {
        track(&mut self.conn, dir, s, cfg)
    }

    /// `dir` sends `len` bytes (with `extra` flags) acknowledging everything of its peer.
    fn data(&mut self, dir: Direction, len: u32, extra: u8) -> TrackVerdict {
        let (seq, ack) = match dir {
            C2S => (self.c, self.s),
            S2C => (self.s, self.c),
        };
        let v = self.send(dir, &seg(ACK | extra, seq, ack, 1000, len));
        if v == TrackVerdict::Accept {
            let adv = len + u32::from(extra & FIN != 0);
            match dir {
                C2S => self.c = self.c.wrapping_add(adv),
                S2C => self.s = self.s.wrapping_add(adv),
            }
        }
        v
    }

    fn ack(&mut self, dir: Direction) -> TrackVerdict {
        self.data(dir, 0, 0)
    }
}

mod syn_sent {
    use super::*;

    #[test]
    fn syn_ack_moves_to_syn_recv() {
        let p = Pair::syn_recv(1000, 5000, None);
        assert_eq!(p.conn.state(), TcpState::SynRecv);
    }

    #[test]
    fn syn_ack_must_acknowledge_the_syn() {
        let mut p = Pair::syn_sent(1000, None);
        assert_eq!(
            p.send(S2C, &seg(SYN | ACK, 5000, 1005, 65160, 0)),
            TrackVerdict::Drop(DropReason::AckBeyondData)
        );
        assert_eq!(p.conn.state(), TcpState::SynSent);
    }

    #[test]
    fn data_before_the_syn_ack_is_out_of_state() {
        let mut p = Pair::syn_sent(1000, None);
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001, 0, 1000, 10)),
            TrackVerdict::Drop(DropReason::OutOfState)
        );
        assert_eq!(
            p.send(S2C, &seg(ACK, 5000, 1001, 1000, 10)),
            TrackVerdict::Drop(DropReason::OutOfState)
        );
    }

    #[test]
    fn retransmitted_syn_is_accepted() {
        let mut p = Pair::syn_sent(1000, None);
        assert_eq!(
            p.send(C2S, &seg(SYN, 1000, 0, 64240, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::SynSent);
    }

    #[test]
    fn refusing_rst_must_acknowledge_the_syn() {
        let mut p = Pair::syn_sent(1000, None);
        assert_eq!(
            p.send(S2C, &seg(RST, 0, 0, 0, 0)),
            TrackVerdict::Drop(DropReason::RstOutOfWindow)
        );
        assert_eq!(
            p.send(S2C, &seg(RST | ACK, 0, 1001, 0, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::Close);
    }

    #[test]
    fn window_scale_only_when_both_offer_it() {
        let p = Pair::syn_recv(1000, 5000, Some((7, 9)));
        assert_eq!(p.conn.wscale_in(), [7, 9]);
        let mut p = Pair::syn_sent(1000, Some(7));
        let sa = seg(SYN | ACK, 5000, 1001, 65160, 0);
        p.send(S2C, &sa);
        assert_eq!(p.conn.wscale_in(), [0, 0]);
    }
}

mod syn_recv {
    use super::*;

    #[test]
    fn client_ack_establishes() {
        let p = Pair::established(1000, 5000);
        assert_eq!(p.conn.state(), TcpState::Established);
    }

    #[test]
    fn retransmitted_syn_ack_is_ignored() {
        let mut p = Pair::syn_recv(1000, 5000, None);
        assert_eq!(
            p.send(S2C, &seg(SYN | ACK, 5000, 1001, 65160, 0)),
            TrackVerdict::Ignore
        );
        assert_eq!(p.conn.state(), TcpState::SynRecv);
    }

    #[test]
    fn server_fin_before_handshake_is_out_of_state() {
        let mut p = Pair::syn_recv(1000, 5000, None);
        assert_eq!(
            p.send(S2C, &seg(FIN | ACK, 5001, 1001, 1000, 0)),
            TrackVerdict::Drop(DropReason::OutOfState)
        );
    }
}

mod established {
    use super::*;

    #[test]
    fn data_both_ways_advances_tracking() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(p.data(C2S, 500, PSH), TrackVerdict::Accept);
        assert_eq!(p.data(S2C, 900, PSH), TrackVerdict::Accept);
        assert_eq!(p.conn.end(C2S), SeqNumber(1501));
        assert_eq!(p.conn.end(S2C), SeqNumber(5901));
    }

    #[test]
    fn sequence_beyond_the_window_is_dropped() {
        let mut p = Pair::established(1000, 5000);
        // The server allowed 65160 (SYN window) from 1001: 66161, kept rounded up to the
        // next 64 KiB boundary (131072), which is what the segment must lie beyond.
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001 + 70_000, 5001, 1000, 10)),
            TrackVerdict::Accept,
            "within the rounding"
        );
        let far = 131_073;
        assert_eq!(
            p.send(C2S, &seg(ACK, far, 5001, 1000, 10)),
            TrackVerdict::Drop(DropReason::OutOfWindow)
        );
        assert_eq!(
            p.conn.end(C2S),
            SeqNumber(1001 + 70_010),
            "a drop never updates state"
        );
    }

    #[test]
    fn ack_beyond_data_sent_is_dropped() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001, 5001 + 10, 1000, 0)),
            TrackVerdict::Drop(DropReason::AckBeyondData)
        );
    }

    #[test]
    fn sack_edge_counts_as_acknowledged() {
        let mut p = Pair::established(1000, 5000);
        p.data(S2C, 1000, 0);
        let mut s = seg(ACK, 1001, 5001, 1000, 0);
        s.sack_max = Some(SeqNumber(6001));
        assert_eq!(p.send(C2S, &s), TrackVerdict::Accept);
        s.sack_max = Some(SeqNumber(6002));
        assert_eq!(
            p.send(C2S, &s),
            TrackVerdict::Drop(DropReason::AckBeyondData)
        );
    }

    #[test]
    fn old_retransmission_is_ignored_not_dropped() {
        let mut p = Pair::established(1000, 5000);
        for _ in 0..200 {
            assert_eq!(p.data(C2S, 1000, 0), TrackVerdict::Accept);
            assert_eq!(p.ack(S2C), TrackVerdict::Accept);
        }
        let end_before = p.conn.end(C2S);
        // a copy of the very first data segment arrives late: far behind any window
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001, 5001, 1000, 1000)),
            TrackVerdict::Ignore
        );
        assert_eq!(p.conn.end(C2S), end_before);
        // a recent retransmission inside the window is simply accepted
        let recent = p.c - 1000;
        assert_eq!(
            p.send(C2S, &seg(ACK, recent, p.s, 1000, 1000)),
            TrackVerdict::Accept
        );
    }

    #[test]
    fn window_scaling_is_honoured() {
        // With shift 8 on the server, a window field of 1000 allows 256000 bytes.
        let mut p = Pair::syn_recv(1000, 5000, Some((8, 8)));
        p.ack(C2S);
        p.send(S2C, &seg(ACK, 5001, 1001, 1000, 0));
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001 + 200_000, 5001, 1000, 100)),
            TrackVerdict::Accept
        );
        // without scaling the same segment is outside the window (65160 from 1001, rounded
        // up to 131072)
        let mut q = Pair::established(1000, 5000);
        q.send(S2C, &seg(ACK, 5001, 1001, 1000, 0));
        assert_eq!(
            q.send(C2S, &seg(ACK, 1001 + 200_000, 5001, 1000, 100)),
            TrackVerdict::Drop(DropReason::OutOfWindow)
        );
    }

    #[test]
    fn rst_inside_the_window_closes() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send(S2C, &seg(RST | ACK, 5001 + 100, 1001, 0, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::Close);
    }

    #[test]
    fn rst_outside_the_window_is_dropped() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send(S2C, &seg(RST, 5001 + 1_000_000, 0, 0, 0)),
            TrackVerdict::Drop(DropReason::RstOutOfWindow)
        );
        assert_eq!(p.conn.state(), TcpState::Established);
    }

    #[test]
    fn strict_rst_only_at_the_exact_next_sequence() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send_cfg(S2C, &seg(RST, 5001 + 100, 0, 0, 0), &STRICT),
            TrackVerdict::Drop(DropReason::RstOutOfWindow)
        );
        assert_eq!(
            p.send_cfg(S2C, &seg(RST, 5001, 0, 0, 0), &STRICT),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::Close);
    }

    #[test]
    fn syn_on_established_never_resets() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send(C2S, &seg(SYN, 77, 0, 64240, 0)),
            TrackVerdict::Ignore
        );
        assert_eq!(p.conn.state(), TcpState::Established);
        assert_eq!(p.conn.end(C2S), SeqNumber(1001));
    }

    #[test]
    fn segment_without_ack_is_out_of_state() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(
            p.send(C2S, &seg(PSH, 1001, 0, 1000, 10)),
            TrackVerdict::Drop(DropReason::OutOfState)
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut p = Pair::established(u32::MAX - 1500, u32::MAX - 100);
        for _ in 0..10 {
            assert_eq!(p.data(C2S, 1000, 0), TrackVerdict::Accept);
            assert_eq!(p.data(S2C, 1000, 0), TrackVerdict::Accept);
        }
        assert!(
            p.c < 10_000 && p.s < 10_000,
            "both wrapped: {} {}",
            p.c,
            p.s
        );
    }
}

mod closing {
    use super::*;

    #[test]
    fn orderly_close_from_the_client() {
        let mut p = Pair::established(1000, 5000);
        assert_eq!(p.data(C2S, 10, FIN), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::FinWait);
        assert_eq!(p.ack(S2C), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::CloseWait);
        // half-close: the server goes on sending
        assert_eq!(p.data(S2C, 5000, 0), TrackVerdict::Accept);
        assert_eq!(p.ack(C2S), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::CloseWait);
        assert_eq!(p.data(S2C, 0, FIN), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::LastAck);
        assert_eq!(p.ack(C2S), TrackVerdict::Accept);
        assert_eq!(p.conn.state(), TcpState::TimeWait);
        assert!(p.conn.state().is_closing());
    }

    #[test]
    fn simultaneous_close() {
        let mut p = Pair::established(1000, 5000);
        let (c, s) = (p.c, p.s);
        assert_eq!(
            p.send(C2S, &seg(FIN | ACK, c, s, 1000, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(
            p.send(S2C, &seg(FIN | ACK, s, c, 1000, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::LastAck);
        assert_eq!(
            p.send(C2S, &seg(ACK, c + 1, s + 1, 1000, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::LastAck);
        assert_eq!(
            p.send(S2C, &seg(ACK, s + 1, c + 1, 1000, 0)),
            TrackVerdict::Accept
        );
        assert_eq!(p.conn.state(), TcpState::TimeWait);
    }

    #[test]
    fn stragglers_after_rst_are_ignored() {
        let mut p = Pair::established(1000, 5000);
        p.send(C2S, &seg(RST, 1001, 0, 0, 0));
        assert_eq!(p.conn.state(), TcpState::Close);
        assert_eq!(
            p.send(S2C, &seg(ACK, 5001, 1001, 1000, 10)),
            TrackVerdict::Ignore
        );
        assert_eq!(p.conn.state(), TcpState::Close);
    }
}

mod after_a_splice {
    use super::*;

    /// The object a splice installs when the client had far more in flight than the server's
    /// window: the box's client leg had given it a larger window than the server's.
    fn spliced() -> Pair {
        let mut p = Pair::established(1000, 5000);
        p.conn.set_track(
            C2S,
            Track {
                end: SeqNumber(1001 + 150_000),
                maxend: SeqNumber(1001 + 200_000),
                maxwin: 65_535,
            },
        );
        p.conn.set_track(
            S2C,
            Track {
                end: SeqNumber(5001),
                maxend: SeqNumber(5001 + 65_535),
                maxwin: 65_535,
            },
        );
        p
    }

    #[test]
    fn new_data_under_a_stale_ack_is_recorded() {
        let mut p = spliced();
        // The server answers, acknowledging only what it has: 150 kB behind the client.
        let v = p.send(S2C, &seg(ACK | PSH, 5001, 1001, 1000, 44));
        assert_eq!(v, TrackVerdict::Ignore, "the stale ack moves nothing");
        assert_eq!(p.conn.end(S2C), SeqNumber(5045), "but the data counts");
        // So the client's acknowledgement of that answer is not beyond the server's data.
        assert_eq!(
            p.send(C2S, &seg(ACK, 1001 + 150_000, 5045, 1000, 0)),
            TrackVerdict::Accept
        );
    }

    #[test]
    fn old_data_under_a_stale_ack_changes_nothing() {
        let mut p = spliced();
        p.conn.set_end(S2C, SeqNumber(5001 + 200_000));
        let before = p.conn.tracks();
        assert_eq!(
            p.send(S2C, &seg(ACK, 5001, 1001, 1000, 44)),
            TrackVerdict::Ignore
        );
        assert_eq!(p.conn.tracks(), before);
    }
}

mod fast_step;
mod oracle;
mod property;
