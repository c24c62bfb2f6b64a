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
    conn.set_track(
        Direction::ClientToServer,
        Track {
            end,
            maxend: end,
            maxwin: u32::from(seg.window).max(1),
        },
    );
    conn.set_track(Direction::ServerToClient, Track::default());
    let shift = seg.syn_wscale.unwrap_or(0);
    conn.set_wscale([shift, 0], [shift, 0]);
    conn.set_state(TcpState::SynSent);
    conn.set_wscale_offered(seg.syn_wscale.is_some());
}

/// Judges one segment of a tracked connection travelling in `dir`, updating `conn` when it
/// is accepted. An accepted segment may change the state, and with it the unit of the idle
/// stamp: the caller re-stamps the flow ([`Conn::touch`]) after every `Accept`.
pub fn track(conn: &mut Conn, dir: Direction, seg: &Segment, cfg: &TrackConfig) -> TrackVerdict {
    use Direction::{ClientToServer as Orig, ServerToClient as Reply};
    use TcpState::*;
    let class = classify(seg.flags);

    // Which (state, flag class, direction) cells are acceptable at all, and the state an
    // accepted segment leads to before the FIN bookkeeping.
    let next = match (conn.state(), class, dir) {
        // SYN-SENT: a retransmitted SYN re-initialises the client side.
        (SynSent, Class::Syn, Orig) => {
            init_from_syn(conn, seg);
            return TrackVerdict::Accept;
        }
        // SYN-SENT: the SYN-ACK must acknowledge exactly the SYN.
        (SynSent, Class::SynAck, Reply) => {
            if seg.ack != conn.end(Orig) {
                return TrackVerdict::Drop(DropReason::AckBeyondData);
            }
            syn_ack(conn, seg);
            return TrackVerdict::Accept;
        }
        // SYN-SENT: a RST refusing the SYN must acknowledge it (RFC 9293 §3.10.7.3).
        (SynSent, Class::Rst, Reply) => {
            if seg.flags & flags::ACK != 0 && seg.ack == conn.end(Orig) {
                conn.set_state(Close);
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
    if next == Established {
        closing_state(conn, dir, seg);
    } else {
        conn.set_state(next);
    }
    TrackVerdict::Accept
}

/// [`track`] for the vector path's common case, without its dispatch: an ACK, with or
/// without data, of an ESTABLISHED flow with no FIN either way, that moves nothing back and
/// lies within conntrack's four bounds. The segment carries no SYN, FIN, RST or SACK (the
/// caller's template). `true`: accepted and recorded exactly as [`track`] records it
/// (the state stays ESTABLISHED); `false`: nothing has changed and [`track`] decides.
///
/// The bounds are evaluated together, without a branch between them: only their conjunction
/// decides, so the step costs the same whichever one a segment would fail.
#[inline(always)]
pub fn track_established(conn: &mut Conn, dir: Direction, seg: &Segment) -> bool {
    debug_assert!(
        seg.flags & (flags::SYN | flags::FIN | flags::RST) == 0 && seg.sack_max.is_none()
    );
    let r = dir.reverse();
    let sender_end = conn.end(dir);
    let receiver_end = conn.end(r);
    let end = seg.seq.wrapping_add(seg.payload_len);
    let ack_lag = receiver_end.0.wrapping_sub(seg.ack.0);
    let ok = conn.is_established()
        & (seg.flags & flags::ACK != 0)
        // I
        & conn.seq_below_maxend(dir, seg.seq)
        // III
        & (seg.ack <= receiver_end)
        // II, in its simplest sufficient form: nothing older than what was sent.
        & (end >= sender_end)
        // IV
        & ((ack_lag <= MAX_ACK_WINDOW) | (ack_lag <= conn.track(dir).maxwin));
    if !ok {
        return false;
    }
    let win = u32::from(seg.window) << conn.wscale_in()[dir.index()];
    conn.raise_maxwin(dir, win);
    conn.set_end(dir, end);
    conn.raise_maxend(r, seg.ack.wrapping_add(win.max(1)));
    true
}

fn bits(dir: Direction) -> (u8, u8) {
    match dir {
        Direction::ClientToServer => (ConnFlags::CLIENT_FIN, ConnFlags::CLIENT_FIN_ACKED),
        Direction::ServerToClient => (ConnFlags::SERVER_FIN, ConnFlags::SERVER_FIN_ACKED),
    }
}

/// Records a FIN sent in `dir` and an acknowledgement of the peer's FIN; the state follows
/// from the FIN bits ([`Conn::set_fins`]): no FIN → ESTABLISHED; one FIN → FIN-WAIT,
/// acknowledged → CLOSE-WAIT; both FINs → LAST-ACK, both acknowledged → TIME-WAIT.
fn closing_state(conn: &mut Conn, dir: Direction, seg: &Segment) {
    let (fin, _) = bits(dir);
    let (peer_fin, peer_fin_acked) = bits(dir.reverse());
    let mut f = conn.fins();
    if seg.flags & flags::FIN != 0 {
        f |= fin;
    }
    if seg.flags & flags::ACK != 0 && f & peer_fin != 0 && seg.ack >= conn.end(dir.reverse()) {
        f |= peer_fin_acked;
    }
    conn.set_fins(f);
}

fn syn_ack(conn: &mut Conn, seg: &Segment) {
    let end = seg.end();
    // RFC 7323 §2.2: scaling is on only if both SYNs carried the option.
    let shifts = match (conn.wscale_offered(), seg.syn_wscale) {
        (true, Some(s)) => [conn.wscale_in()[0], s],
        _ => [0, 0],
    };
    conn.set_wscale(shifts, shifts);
    conn.set_track(
        Direction::ServerToClient,
        Track {
            end,
            maxend: end,
            maxwin: u32::from(seg.window).max(1),
        },
    );
    // The server's ack plus its (unscaled, in a SYN) window bounds what the client may send.
    let limit = seg.ack.wrapping_add(u32::from(seg.window).max(1));
    conn.raise_maxend(Direction::ClientToServer, limit);
    conn.set_state(TcpState::SynRecv);
}

enum Window {
    Ok,
    Old,
    Bad(DropReason),
}

/// conntrack's four bounds; on success the sender's and receiver's tracking is advanced.
///
/// `maxend` and `maxwin` are stored rounded up (see `common::conn`), so each bound that uses
/// them is written as a distance that only grows with them: whatever the exact tracker
/// accepts, this one accepts too (the tests run both side by side to show it).
fn in_window(
    conn: &mut Conn,
    dir: Direction,
    seg: &Segment,
    rst: bool,
    cfg: &TrackConfig,
) -> Window {
    let r = dir.reverse();
    let sender = conn.track(dir);
    let receiver = conn.track(r);
    let end = seg.end();
    let has_ack = seg.flags & flags::ACK != 0;
    let ack = if has_ack { seg.ack } else { receiver.end };
    // The highest SACK edge counts as acknowledged.
    let sack = match seg.sack_max {
        Some(m) if has_ack && m > ack => m,
        _ => ack,
    };

    // I: the data starts no later than the receiver allowed.
    let seq_ok = conn.seq_below_maxend(dir, seg.seq);
    // II: the data ends no earlier than one receiver window before what was sent. Data
    // ending at or past what was sent is never old; older data may lag by up to `maxwin`
    // (as a distance: a larger `maxwin` can never wrap the comparison round).
    let not_old = receiver.maxwin == 0
        || end >= sender.end
        || sender.end.0.wrapping_sub(end.0) <= receiver.maxwin;
    // III: nothing acknowledged that the receiver never sent.
    let ack_ok = sack <= receiver.end;
    // IV: the acknowledgement is not older than a window behind the receiver's data (a
    // distance again; only judged once III holds).
    let ack_not_old = receiver.end.0.wrapping_sub(sack.0) <= sender.maxwin.max(MAX_ACK_WINDOW);

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
        conn.set_end(dir, sender.end.max(end));
        return Window::Old;
    }

    let win = u32::from(seg.window) << conn.wscale_in()[dir.index()];
    let swin = win.saturating_add(sack.diff(ack).max(0) as u32);
    conn.raise_maxwin(dir, swin);
    conn.set_end(dir, sender.end.max(end));
    if has_ack {
        conn.raise_maxend(r, sack.wrapping_add(win.max(1)));
    }
    Window::Ok
}

#[cfg(test)]
mod tests;
