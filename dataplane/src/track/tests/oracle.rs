//! The oracle: the tracker as it was when every field was kept exact (a 64-byte object with
//! a `u32` `maxend` and `maxwin`, the state and the FIN bits as separate fields), copied
//! here unchanged but for the field access. The packed tracker must accept whatever this
//! one accepts ([`super::property`]).
// A deliberate copy: it must not share code with the tracker it judges, so a slip in one
// cannot hide in both.

use super::*;

/// What the exact tracker keeps of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact {
    pub state: TcpState,
    pub flags: u8,
    pub track: [Track; 2],
    pub wscale_in: [u8; 2],
}

impl Exact {
    /// Whether `conn` holds this state, with `maxend` and `maxwin` as this state rounds up
    /// to, and the FIN bits and `WSCALE_OFFERED` wherever they still mean something.
    pub fn encoded_in(&self, conn: &Conn) -> bool {
        let mut rounded = *conn;
        rounded.set_track(C2S, self.track[0]);
        rounded.set_track(S2C, self.track[1]);
        let fins = ConnFlags::CLIENT_FIN
            | ConnFlags::SERVER_FIN
            | ConnFlags::CLIENT_FIN_ACKED
            | ConnFlags::SERVER_FIN_ACKED;
        let kept = match self.state {
            TcpState::SynSent => ConnFlags::WSCALE_OFFERED,
            TcpState::Established
            | TcpState::FinWait
            | TcpState::CloseWait
            | TcpState::LastAck
            | TcpState::TimeWait => fins,
            _ => 0,
        };
        conn.state() == self.state
            && conn.flags() & kept == self.flags & kept
            && conn.tracks() == rounded.tracks()
            && conn.wscale_in() == self.wscale_in
    }

    /// Puts this state into `conn` (rounding up what is stored rounded).
    pub fn encode_into(&self, conn: &mut Conn) {
        conn.set_track(C2S, self.track[0]);
        conn.set_track(S2C, self.track[1]);
        conn.set_wscale(self.wscale_in, self.wscale_in);
        match self.state {
            TcpState::SynSent => {
                conn.set_state(TcpState::SynSent);
                conn.set_wscale_offered(self.flags & ConnFlags::WSCALE_OFFERED != 0);
            }
            TcpState::Established
            | TcpState::FinWait
            | TcpState::CloseWait
            | TcpState::LastAck
            | TcpState::TimeWait => {
                let s = conn.set_fins(self.flags);
                assert_eq!(s, self.state, "FIN bits {:#x}", self.flags);
            }
            s => conn.set_state(s),
        }
    }
}

pub fn init_from_syn(conn: &mut Exact, seg: &Segment) {
    let end = seg.end();
    conn.track[0] = Track {
        end,
        maxend: end,
        maxwin: u32::from(seg.window).max(1),
    };
    conn.track[1] = Track::default();
    conn.wscale_in = [seg.syn_wscale.unwrap_or(0), 0];
    conn.state = TcpState::SynSent;
    conn.flags &= !ConnFlags::WSCALE_OFFERED;
    if seg.syn_wscale.is_some() {
        conn.flags |= ConnFlags::WSCALE_OFFERED;
    }
}

pub fn track(conn: &mut Exact, dir: Direction, seg: &Segment, cfg: &TrackConfig) -> TrackVerdict {
    use Direction::{ClientToServer as Orig, ServerToClient as Reply};
    use TcpState::*;
    let class = classify(seg.flags);
    let next = match (conn.state, class, dir) {
        (SynSent, Class::Syn, Orig) => {
            init_from_syn(conn, seg);
            return TrackVerdict::Accept;
        }
        (SynSent, Class::SynAck, Reply) => {
            if seg.ack != conn.track[0].end {
                return TrackVerdict::Drop(DropReason::AckBeyondData);
            }
            syn_ack(conn, seg);
            return TrackVerdict::Accept;
        }
        (SynSent, Class::Rst, Reply) => {
            if seg.flags & flags::ACK != 0 && seg.ack == conn.track[0].end {
                conn.state = Close;
                return TrackVerdict::Accept;
            }
            return TrackVerdict::Drop(DropReason::RstOutOfWindow);
        }
        (SynSent, _, _) => return TrackVerdict::Drop(DropReason::OutOfState),
        (SynRecv, Class::SynAck, Reply) | (SynRecv, Class::Syn, Orig) => {
            return TrackVerdict::Ignore
        }
        (SynRecv, Class::Ack | Class::Fin, Orig) => Established,
        (SynRecv, Class::Ack, Reply) => SynRecv,
        (_, Class::Syn | Class::SynAck, _) => return TrackVerdict::Ignore,
        (_, Class::Bare, _) => return TrackVerdict::Drop(DropReason::OutOfState),
        (Close, Class::Ack | Class::Fin, _) => return TrackVerdict::Ignore,
        (Established | FinWait | CloseWait | LastAck | TimeWait, Class::Ack | Class::Fin, _) => {
            Established
        }
        (_, Class::Rst, _) => Close,
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

fn closing_state(conn: &mut Exact, dir: Direction, seg: &Segment) -> TcpState {
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

fn syn_ack(conn: &mut Exact, seg: &Segment) {
    let end = seg.end();
    match (conn.flags & ConnFlags::WSCALE_OFFERED != 0, seg.syn_wscale) {
        (true, Some(s)) => conn.wscale_in[1] = s,
        _ => conn.wscale_in = [0, 0],
    }
    conn.track[1] = Track {
        end,
        maxend: end,
        maxwin: u32::from(seg.window).max(1),
    };
    let limit = seg.ack.wrapping_add(u32::from(seg.window).max(1));
    conn.track[0].maxend = conn.track[0].maxend.max(limit);
    conn.state = TcpState::SynRecv;
}

fn in_window(
    conn: &mut Exact,
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
    let sack = match seg.sack_max {
        Some(m) if has_ack && m > ack => m,
        _ => ack,
    };
    let seq_ok = seg.seq <= sender.maxend;
    let not_old = receiver.maxwin == 0 || end.diff(sender.end.wrapping_sub(receiver.maxwin)) >= 0;
    let ack_ok = sack <= receiver.end;
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
