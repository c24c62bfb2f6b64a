//! Stateful TCP inspection of one connection: the state machine and window tracking in the
//! manner of Linux conntrack's `tcp_packet` / `tcp_in_window` (nf_conntrack_proto_tcp.c).
//!
//! Sequence spaces: each direction's [`Track`] is kept in the space of that direction's
//! *sender*. For a spliced flow the caller therefore passes the packet's sequence number as
//! received and its acknowledgement (and SACK edges) already translated back into the
//! receiver's own space — which is what the rewrite produces anyway. For `pass` flows the two
//! are the same.
//!
//! Verdicts: [`TrackVerdict::Accept`] forwards and has updated state;
//! [`TrackVerdict::Ignore`] forwards without touching state (a segment that is merely old — a
//! retransmission or a delayed ACK from before the current window — or a SYN on an
//! established flow: netfilter's "ignore, don't drop"); [`TrackVerdict::Drop`] drops and names
//! the reason. A RST is honoured only inside the window, or in strict mode only at the exact
//! next sequence (RFC 5961 §3.2).
//!
//! The closing states are derived from four flag bits (FIN sent and FIN acknowledged, each
//! way), so FIN, half-close and simultaneous close need no extra table cells.

use common::conn::{Conn, ConnFlags, TcpState, Track};
use common::flow::Direction;
use common::seq::SeqNumber;
use common::wire::tcp::flags;

use crate::verdict::DropReason;

/// What the tracker needs of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub flags: u8,
    /// Sequence number in the sender's space.
    pub seq: SeqNumber,
    /// Acknowledgement in the sender's peer's space (translated back for spliced flows).
    pub ack: SeqNumber,
    /// The raw window field.
    pub window: u16,
    /// Payload bytes.
    pub payload_len: u32,
    /// The highest right edge of the SACK blocks, in the same space as `ack`.
    pub sack_max: Option<SeqNumber>,
    /// The window-scale option of a SYN or SYN-ACK (already clamped to 14).
    pub syn_wscale: Option<u8>,
}

impl Segment {
    /// The end of the sequence space the segment occupies (SYN and FIN count one each).
    #[inline]
    pub fn end(&self) -> SeqNumber {
        let extra =
            u32::from(self.flags & flags::SYN != 0) + u32::from(self.flags & flags::FIN != 0);
        self.seq.wrapping_add(self.payload_len + extra)
    }
}

/// The tracker's verdict on one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackVerdict {
    Accept,
    Ignore,
    Drop(DropReason),
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackConfig {
    /// Accept a RST only at exactly the next sequence (RFC 5961 §3.2).
    pub strict_rst: bool,
}

/// The classes a segment's flags fall into, in conntrack's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Rst,
    SynAck,
    Syn,
    Fin,
    Ack,
    /// No ACK and none of the above: never valid once a flow exists.
    Bare,
}

fn classify(f: u8) -> Class {
    if f & flags::RST != 0 {
        Class::Rst
    } else if f & flags::SYN != 0 {
        if f & flags::ACK != 0 {
            Class::SynAck
        } else {
            Class::Syn
        }
    } else if f & flags::ACK == 0 {
        Class::Bare
    } else if f & flags::FIN != 0 {
        Class::Fin
    } else {
        Class::Ack
    }
}

/// conntrack's `MAXACKWINDOW`: how far behind the receiver's data an ACK may lag.
const MAX_ACK_WINDOW: u32 = 66_000;

/// Initialises tracking for a new connection from the client's SYN.
pub fn init_from_syn(conn: &mut Conn, seg: &Segment) {
    let end = seg.end();
    conn.track[0] = Track {
        end,
        maxend: end,
        maxwin: u32::from(seg.window).max(1),
    };
    conn.track[1] = Track::default();
    conn.wscale_in = [seg.syn_wscale.unwrap_or(0), 0];
    conn.wscale_out = conn.wscale_in;
    conn.state = TcpState::SynSent;
    conn.flags &= !ConnFlags::WSCALE_OFFERED;
    if seg.syn_wscale.is_some() {
        conn.flags |= ConnFlags::WSCALE_OFFERED;
    }
}

/// Judges one segment of a tracked connection travelling in `dir`, updating `conn` when it
/// is accepted.
pub fn track(conn: &mut Conn, dir: Direction, seg: &Segment, cfg: &TrackConfig) -> TrackVerdict {
    use Direction::{ClientToServer as Orig, ServerToClient as Reply};
    use TcpState::*;
    let class = classify(seg.flags);

    // Which (state, flag class, direction) cells are acceptable at all, and the state an
    // accepted segment leads to before the FIN bookkeeping.
    let next = match (conn.state, class, dir) {
        // SYN-SENT: a retransmitted SYN re-initialises the client side.
        (SynSent, Class::Syn, Orig) => {
            init_from_syn(conn, seg);
            return TrackVerdict::Accept;
        }
        // SYN-SENT: the SYN-ACK must acknowledge exactly the SYN.
        (SynSent, Class::SynAck, Reply) => {
            if seg.ack != conn.track[0].end {
                return TrackVerdict::Drop(DropReason::AckBeyondData);
            }
            syn_ack(conn, seg);
            return TrackVerdict::Accept;
        }
        // SYN-SENT: a RST refusing the SYN must acknowledge it (RFC 9293 §3.10.7.3).
        (SynSent, Class::Rst, Reply) => {
            if seg.flags & flags::ACK != 0 && seg.ack == conn.track[0].end {
                conn.state = Close;
                return TrackVerdict::Accept;
            }
            return TrackVerdict::Drop(DropReason::RstOutOfWindow);
        }
        // SYN-SENT: nothing else may come before the SYN-ACK.
        (SynSent, _, _) => return TrackVerdict::Drop(DropReason::OutOfState),
        // SYN-RECV: retransmitted SYN or SYN-ACK, state unchanged.
        (SynRecv, Class::SynAck, Reply) | (SynRecv, Class::Syn, Orig) => {
            return TrackVerdict::Ignore
        }
        // SYN-RECV: the client's ACK (possibly with data or FIN) completes the handshake.
        (SynRecv, Class::Ack | Class::Fin, Orig) => Established,
        // SYN-RECV: the server may not send data before the handshake is complete, but its
        // pure ACKs are harmless.
        (SynRecv, Class::Ack, Reply) => SynRecv,
        // Any state: a SYN on an existing flow never resets it (a SYN for a closing flow is
        // made a new connection by the caller before it gets here).
        (_, Class::Syn | Class::SynAck, _) => return TrackVerdict::Ignore,
        // Any state: no ACK, no SYN, no RST is never valid.
        (_, Class::Bare, _) => return TrackVerdict::Drop(DropReason::OutOfState),
        // CLOSE: stragglers after a RST are forwarded but change nothing.
        (Close, Class::Ack | Class::Fin, _) => return TrackVerdict::Ignore,
        // Established and closing states: ACK, data and FIN, judged by the window below.
        (Established | FinWait | CloseWait | LastAck | TimeWait, Class::Ack | Class::Fin, _) => {
            Established
        }
        // Any tracked state: a RST inside the window closes.
        (_, Class::Rst, _) => Close,
        // SYN-RECV FIN from the server, or a free slot: out of state.
        (SynRecv, Class::Fin, Reply) | (Free, _, _) => {
            return TrackVerdict::Drop(DropReason::OutOfState)
        }
    };

    match in_window(conn, dir, seg, class == Class::Rst, cfg) {
        Window::Ok => {}
        Window::Old => return TrackVerdict::Ignore,
        Window::Bad(r) => return TrackVerdict::Drop(r),
    }
    conn.state = if next == Established {
        closing_state(conn, dir, seg)
    } else {
        next
    };
    TrackVerdict::Accept
}

fn bits(dir: Direction) -> (u8, u8) {
    match dir {
        Direction::ClientToServer => (ConnFlags::CLIENT_FIN, ConnFlags::CLIENT_FIN_ACKED),
        Direction::ServerToClient => (ConnFlags::SERVER_FIN, ConnFlags::SERVER_FIN_ACKED),
    }
}

/// Records a FIN sent in `dir` and an acknowledgement of the peer's FIN, then derives the
/// state: no FIN → ESTABLISHED; one FIN → FIN-WAIT, acknowledged → CLOSE-WAIT; both FINs →
/// LAST-ACK, both acknowledged → TIME-WAIT.
fn closing_state(conn: &mut Conn, dir: Direction, seg: &Segment) -> TcpState {
    let (fin, _) = bits(dir);
    let (peer_fin, peer_fin_acked) = bits(dir.reverse());
    if seg.flags & flags::FIN != 0 {
        conn.flags |= fin;
    }
    if seg.flags & flags::ACK != 0
        && conn.flags & peer_fin != 0
        && seg.ack >= conn.track[dir.reverse().index()].end
    {
        conn.flags |= peer_fin_acked;
    }
    let f = conn.flags;
    let fins = u8::from(f & ConnFlags::CLIENT_FIN != 0) + u8::from(f & ConnFlags::SERVER_FIN != 0);
    let acked = u8::from(f & ConnFlags::CLIENT_FIN_ACKED != 0)
        + u8::from(f & ConnFlags::SERVER_FIN_ACKED != 0);
    match (fins, acked) {
        (0, _) => TcpState::Established,
        (1, 0) => TcpState::FinWait,
        (1, _) => TcpState::CloseWait,
        (_, 2) => TcpState::TimeWait,
        _ => TcpState::LastAck,
    }
}

fn syn_ack(conn: &mut Conn, seg: &Segment) {
    let end = seg.end();
    // RFC 7323 §2.2: scaling is on only if both SYNs carried the option.
    match (conn.flags & ConnFlags::WSCALE_OFFERED != 0, seg.syn_wscale) {
        (true, Some(s)) => conn.wscale_in[1] = s,
        _ => conn.wscale_in = [0, 0],
    }
    conn.wscale_out = conn.wscale_in;
    conn.track[1] = Track {
        end,
        maxend: end,
        maxwin: u32::from(seg.window).max(1),
    };
    // The server's ack plus its (unscaled, in a SYN) window bounds what the client may send.
    let limit = seg.ack.wrapping_add(u32::from(seg.window).max(1));
    conn.track[0].maxend = conn.track[0].maxend.max(limit);
    conn.state = TcpState::SynRecv;
}

enum Window {
    Ok,
    Old,
    Bad(DropReason),
}

/// conntrack's four bounds; on success the sender's and receiver's tracking is advanced.
fn in_window(
    conn: &mut Conn,
    dir: Direction,
    seg: &Segment,
    rst: bool,
    cfg: &TrackConfig,
) -> Window {
    let (s, r) = (dir.index(), dir.reverse().index());
    let sender = conn.track[s];
    let receiver = conn.track[r];
    let end = seg.end();
    let has_ack = seg.flags & flags::ACK != 0;
    let ack = if has_ack { seg.ack } else { receiver.end };
    // The highest SACK edge counts as acknowledged.
    let sack = match seg.sack_max {
        Some(m) if has_ack && m > ack => m,
        _ => ack,
    };

    // I: the data starts no later than the receiver allowed.
    let seq_ok = seg.seq <= sender.maxend;
    // II: the data ends no earlier than one receiver window before what was sent.
    let not_old = receiver.maxwin == 0 || end.diff(sender.end.wrapping_sub(receiver.maxwin)) >= 0;
    // III: nothing acknowledged that the receiver never sent.
    let ack_ok = sack <= receiver.end;
    // IV: the acknowledgement is not older than a window behind the receiver's data.
    let ack_not_old = sack.diff(receiver.end.wrapping_sub(sender.maxwin.max(MAX_ACK_WINDOW))) >= 0;

    if rst {
        let ok = if cfg.strict_rst {
            seg.seq == sender.end
        } else {
            seq_ok && not_old
        };
        return if ok {
            Window::Ok
        } else {
            Window::Bad(DropReason::RstOutOfWindow)
        };
    }
    if !seq_ok {
        return Window::Bad(DropReason::OutOfWindow);
    }
    if !ack_ok {
        return Window::Bad(DropReason::AckBeyondData);
    }
    if !not_old {
        return Window::Old;
    }
    if !ack_not_old {
        // New data under a stale acknowledgement (a peer that had more in flight than the
        // other's window, as after a splice): the data is real and will be acknowledged, so
        // it is recorded; the acknowledgement moves nothing. Not recording it would make the
        // receiver's acknowledgements of it look like acknowledgements of data never sent.
        let t = &mut conn.track[s];
        t.end = t.end.max(end);
        return Window::Old;
    }

    let win = u32::from(seg.window) << conn.wscale_in[s];
    let swin = win.saturating_add(sack.diff(ack).max(0) as u32);
    let t = &mut conn.track[s];
    t.maxwin = t.maxwin.max(swin);
    t.end = t.end.max(end);
    if has_ack {
        let limit = sack.wrapping_add(win.max(1));
        let peer = &mut conn.track[r];
        peer.maxend = peer.maxend.max(limit);
    }
    Window::Ok
}

#[cfg(test)]
mod tests;
