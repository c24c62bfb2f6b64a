//! The connection object: everything the fast path keeps for one tracked or spliced TCP
//! connection, in one 64-byte cache line that is also its flow-table slot.
//!
//! The patent's object is the quad and the two deltas (20 bytes for IPv4). We add what a
//! spliced flow needs to survive real endpoints — the timestamp offsets and window-scale
//! translation of DESIGN.md §4 — and what stateful inspection needs — the TCP state and the
//! per-direction window-tracking fields of conntrack's `tcp_in_window`. A plain `pass` flow is
//! the same object with every delta zero and equal scales.
//!
//! Layout (`repr(C)`, offsets in bytes; asserted below):
//!
//! | off | size | field | meaning |
//! | --- | --- | --- | --- |
//! | 0 | 4 | `client` | client IPv4 address (the SYN's source), host order |
//! | 4 | 4 | `server` | server IPv4 address |
//! | 8 | 2 | `client_port` | |
//! | 10 | 2 | `server_port` | |
//! | 12 | 4 | `delta1` | Δ1 = seq1 − ack1: added to client→server seq, subtracted from server→client ack and SACK |
//! | 16 | 4 | `delta2` | Δ2 = seq2 − ack2: added to server→client seq, subtracted from client→server ack and SACK |
//! | 20 | 4 | `ts_offset[0]` | added to the client's TSval (server's view), subtracted from server→client TSecr (one leg only: see below) |
//! | 24 | 4 | `ts_offset[1]` | added to the server's TSval, subtracted from client→server TSecr |
//! | 28 | 12 | `track[0]` | client→server window tracking: `end`, `maxend`, `maxwin` |
//! | 40 | 12 | `track[1]` | server→client window tracking |
//! | 52 | 4 | `last_seen` | time of the last packet, wrapping milliseconds (idle timeout) |
//! | 56 | 1 | `state` | [`TcpState`]; `Free` (0) marks an empty table slot |
//! | 57 | 1 | `flags` | [`ConnFlags`] bits |
//! | 58 | 2 | `wscale_in` | per direction, the shift the sender announced for its own window |
//! | 60 | 2 | `wscale_out` | per direction, the shift the receiver believes the sender uses |
//! | 62 | 1 | `xlate` | [`Xlate`] bits: options one peer negotiated and the other did not |
//! | 63 | 1 | `split_mss` | the MSS a peer accepts in 8-byte units, when the other was told more: larger segments toward it are split (0: never); the server's unless [`Xlate::SPLIT_TO_CLIENT`] |
//!
//! Timestamps on one leg only ([`Xlate::TS_CLIENT_ONLY`] or [`Xlate::TS_SERVER_ONLY`]): the
//! option is removed (turned into NOPs) on its way to the peer that did not negotiate it, and
//! inserted on every segment to the peer that did (RFC 7323 §3.2 lets it drop segments
//! without). The two offsets then hold what that needs, at no extra cost: `ts_offset` of the
//! direction *from* the peer without timestamps is the box's clock offset (the inserted TSval
//! is `now_ms + offset`, continuing the values the box's leg sent, so PAWS holds), and
//! `ts_offset` of the direction from the peer with timestamps is the latest TSval it sent
//! (echoed as the inserted TSecr).
//!
//! The key is stored in the client→server orientation; the table looks a packet up under its
//! own key and under the reverse, which also tells the packet's [`Direction`].

use crate::flow::{Direction, FlowKey};
use crate::seq::SeqNumber;
use crate::wire::Ipv4Addr;

/// conntrack's per-direction window state (`ip_ct_tcp_state`), for the sender of one
/// direction, in that sender's own sequence space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Track {
    /// Highest sequence number sent plus its length (`td_end`).
    pub end: SeqNumber,
    /// Highest sequence number the sender may send: the peer's ack plus its window
    /// (`td_maxend`).
    pub maxend: SeqNumber,
    /// Largest window (scaled) this sender advertised to its peer (`td_maxwin`).
    pub maxwin: u32,
}

/// TCP connection states as the tracker sees them (after conntrack's `tcp_conntrack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum TcpState {
    /// An empty table slot.
    #[default]
    Free = 0,
    /// The client's SYN was seen.
    SynSent = 1,
    /// The server's SYN-ACK was seen.
    SynRecv = 2,
    /// The client acknowledged the SYN-ACK (or the object came from a splice).
    Established = 3,
    /// One side sent FIN, not yet acknowledged.
    FinWait = 4,
    /// The first FIN was acknowledged; the other side may still send (half-close).
    CloseWait = 5,
    /// Both sides sent FIN; the last one is not yet acknowledged.
    LastAck = 6,
    /// Both FINs acknowledged.
    TimeWait = 7,
    /// A valid RST was seen.
    Close = 8,
}

/// Bits of [`Conn::flags`].
pub struct ConnFlags;

impl ConnFlags {
    /// The object came from a splice (deltas may be non-zero) rather than a `pass` SYN.
    pub const SPLICED: u8 = 0x01;
    /// Both legs negotiated timestamps: TSval/TSecr are rewritten.
    pub const TIMESTAMPS: u8 = 0x02;
    /// The participating stack owns the connection (proxied, not spliced yet): the worker
    /// hands every packet of it to the control plane.
    pub const PROXIED: u8 = 0x04;
    /// The client sent FIN.
    pub const CLIENT_FIN: u8 = 0x08;
    /// The server sent FIN.
    pub const SERVER_FIN: u8 = 0x10;
    /// The server acknowledged the client's FIN.
    pub const CLIENT_FIN_ACKED: u8 = 0x20;
    /// The client acknowledged the server's FIN.
    pub const SERVER_FIN_ACKED: u8 = 0x40;
    /// The client's SYN offered window scaling (scaling is on only if the SYN-ACK does too).
    pub const WSCALE_OFFERED: u8 = 0x80;
}

/// Bits of [`Conn::xlate`]: options the fast path adds or removes because one peer
/// negotiated them with the box and the other did not (see the module documentation).
pub struct Xlate;

impl Xlate {
    /// Only the client negotiated timestamps: removed client→server, inserted
    /// server→client.
    pub const TS_CLIENT_ONLY: u8 = 0x01;
    /// Only the server negotiated timestamps: inserted client→server, removed
    /// server→client.
    pub const TS_SERVER_ONLY: u8 = 0x02;
    /// The client negotiated SACK with the box, the server did not: SACK options from the
    /// client are removed (NOPs) on their way to the server.
    pub const SACK_CLIENT_ONLY: u8 = 0x04;
    /// [`Conn::split_mss`] is the client's MSS and applies to server→client segments (a
    /// server that turned out to send no timestamps, after the box had left no room for the
    /// option it inserts); otherwise it is the server's, for client→server segments.
    pub const SPLIT_TO_CLIENT: u8 = 0x08;
}

/// The largest MSS [`Conn::split_mss`] can hold.
pub const MAX_SPLIT_MSS: u16 = 255 * 8;

/// What the fast path does to the timestamp option of one packet beyond the offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsEdit {
    #[default]
    None,
    /// Turn the option into NOPs (same length): the receiver did not negotiate it.
    Strip,
    /// Add the option with these values: the receiver negotiated it, the sender did not.
    Insert { tsval: u32, tsecr: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(64))]
pub struct Conn {
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    pub client_port: u16,
    pub server_port: u16,
    pub delta1: u32,
    pub delta2: u32,
    pub ts_offset: [u32; 2],
    pub track: [Track; 2],
    pub last_seen: u32,
    pub state: TcpState,
    pub flags: u8,
    pub wscale_in: [u8; 2],
    pub wscale_out: [u8; 2],
    pub xlate: u8,
    pub split_mss: u8,
}

/// Everything one spliced flow costs in the table: one slot, one cache line.
pub const CONN_BYTES: usize = core::mem::size_of::<Conn>();
const _: () = assert!(CONN_BYTES == 64, "a connection object is one cache line");
const _: () = assert!(core::mem::align_of::<Conn>() == 64);
const _: () = assert!(core::mem::offset_of!(Conn, delta1) == 12);
const _: () = assert!(core::mem::offset_of!(Conn, track) == 28);
const _: () = assert!(core::mem::offset_of!(Conn, last_seen) == 52);
const _: () = assert!(core::mem::offset_of!(Conn, state) == 56);
const _: () = assert!(core::mem::offset_of!(Conn, wscale_out) == 60);
const _: () = assert!(core::mem::offset_of!(Conn, xlate) == 62);

/// The per-direction numbers [`crate::rewrite::rewrite_frame`] applies to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpliceParams {
    /// Added to the sequence number.
    pub seq_add: u32,
    /// Subtracted from the acknowledgement number and from every SACK edge.
    pub ack_sub: u32,
    /// Added to TSval.
    pub tsval_add: u32,
    /// Subtracted from TSecr.
    pub tsecr_sub: u32,
    /// The sender's own window shift, and the shift its receiver believes it uses.
    pub wscale_in: u8,
    pub wscale_out: u8,
    /// Rewrite the timestamp option (both legs negotiated it).
    pub timestamps: bool,
    /// Remove or insert the option (one leg negotiated it).
    pub ts_edit: TsEdit,
    /// Turn SACK options into NOPs (the receiver did not negotiate SACK).
    pub sack_strip: bool,
}

impl SpliceParams {
    /// True when the packet's TCP header would come out unchanged.
    #[inline]
    pub fn is_identity(&self) -> bool {
        self.seq_add == 0
            && self.ack_sub == 0
            && (!self.timestamps || (self.tsval_add == 0 && self.tsecr_sub == 0))
            && self.wscale_in == self.wscale_out
            && self.ts_edit == TsEdit::None
            && !self.sack_strip
    }

    /// The parameters that undo these (window rescaling is exact only for equal shifts).
    pub fn inverse(&self) -> SpliceParams {
        SpliceParams {
            seq_add: self.seq_add.wrapping_neg(),
            ack_sub: self.ack_sub.wrapping_neg(),
            tsval_add: self.tsval_add.wrapping_neg(),
            tsecr_sub: self.tsecr_sub.wrapping_neg(),
            wscale_in: self.wscale_out,
            wscale_out: self.wscale_in,
            timestamps: self.timestamps,
            ts_edit: TsEdit::None,
            sack_strip: false,
        }
    }
}

impl TcpState {
    pub const COUNT: usize = 9;

    /// Every state, in discriminant order.
    pub const ALL: [TcpState; TcpState::COUNT] = [
        TcpState::Free,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
    ];

    /// The state's name in statistics and flow listings (conntrack's, in snake case).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Free => "free",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait => "fin_wait",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "close",
        }
    }

    /// A new SYN for this quad starts a new connection instead of being judged by this one
    /// (DESIGN.md §4 "Quad reuse").
    #[inline]
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            TcpState::LastAck | TcpState::TimeWait | TcpState::Close
        )
    }
}

impl Conn {
    /// A freshly tracked `pass` flow from its SYN: Δ = 0, no translation.
    pub fn new_pass(key: &FlowKey, wscale: u8, now_ms: u32) -> Conn {
        Conn {
            client: key.src,
            server: key.dst,
            client_port: key.sport,
            server_port: key.dport,
            last_seen: now_ms,
            state: TcpState::SynSent,
            wscale_in: [wscale, 0],
            wscale_out: [wscale, 0],
            ..Conn::default()
        }
    }

    /// The key in client→server orientation.
    #[inline]
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.client, self.client_port, self.server, self.server_port)
    }

    #[inline]
    pub fn is_free(&self) -> bool {
        self.state == TcpState::Free
    }

    /// Which way `key` (a packet's own key) travels on this connection, if it belongs to it.
    #[inline]
    pub fn direction_of(&self, key: &FlowKey) -> Option<Direction> {
        self.key().direction_of(key)
    }

    /// The rewrite for packets travelling in `dir` (DESIGN.md §4 table).
    #[inline]
    pub fn params(&self, dir: Direction) -> SpliceParams {
        let d = dir.index();
        let o = dir.reverse().index();
        let (seq_add, ack_sub) = match dir {
            Direction::ClientToServer => (self.delta1, self.delta2),
            Direction::ServerToClient => (self.delta2, self.delta1),
        };
        SpliceParams {
            seq_add,
            ack_sub,
            tsval_add: self.ts_offset[d],
            tsecr_sub: self.ts_offset[o],
            wscale_in: self.wscale_in[d],
            wscale_out: self.wscale_out[d],
            timestamps: self.flags & ConnFlags::TIMESTAMPS != 0,
            ts_edit: TsEdit::None,
            sack_strip: dir == Direction::ClientToServer
                && self.xlate & Xlate::SACK_CLIENT_ONLY != 0,
        }
    }

    /// The most data and options a segment travelling in `dir` may carry before it is split
    /// (only toward a peer that accepts less than the other was told).
    #[inline]
    pub fn split_at(&self, dir: Direction) -> Option<u16> {
        let toward = if self.xlate & Xlate::SPLIT_TO_CLIENT != 0 {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        (dir == toward && self.split_mss != 0).then(|| u16::from(self.split_mss) * 8)
    }

    /// Whether packets travelling in `dir` lose their timestamp option (their receiver did
    /// not negotiate it) or gain one (their sender did not).
    #[inline]
    fn ts_one_leg(&self, dir: Direction) -> Option<bool> {
        let (strip, insert) = match dir {
            Direction::ClientToServer => (Xlate::TS_CLIENT_ONLY, Xlate::TS_SERVER_ONLY),
            Direction::ServerToClient => (Xlate::TS_SERVER_ONLY, Xlate::TS_CLIENT_ONLY),
        };
        if self.xlate & strip != 0 {
            Some(false)
        } else if self.xlate & insert != 0 {
            Some(true)
        } else {
            None
        }
    }

    /// The timestamp edit for a packet travelling in `dir` at `now_ms`, with `tsval` the
    /// TSval it carries (if any). Records that TSval when it is the one to echo later, so
    /// call it once per forwarded packet.
    #[inline]
    pub fn ts_edit(&mut self, dir: Direction, now_ms: u32, tsval: Option<u32>) -> TsEdit {
        let d = dir.index();
        match self.ts_one_leg(dir) {
            None => TsEdit::None,
            Some(false) => {
                // The latest TSval of the peer with timestamps, echoed toward it later;
                // a reordered older one does not move it back.
                if let Some(v) = tsval {
                    if (v.wrapping_sub(self.ts_offset[d]) as i32) > 0 || self.ts_offset[d] == 0 {
                        self.ts_offset[d] = v;
                    }
                }
                TsEdit::Strip
            }
            Some(true) => TsEdit::Insert {
                tsval: now_ms.wrapping_add(self.ts_offset[d]),
                tsecr: self.ts_offset[dir.reverse().index()],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FlowKey {
        FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            40000,
            Ipv4Addr::new(198, 19, 0, 2),
            80,
        )
    }

    #[test]
    fn directions() {
        let c = Conn::new_pass(&key(), 7, 0);
        assert_eq!(c.direction_of(&key()), Some(Direction::ClientToServer));
        assert_eq!(
            c.direction_of(&key().reversed()),
            Some(Direction::ServerToClient)
        );
        let mut other = key();
        other.sport += 1;
        assert_eq!(c.direction_of(&other), None);
    }

    #[test]
    fn params_follow_the_design_table() {
        let c = Conn {
            delta1: 100,
            delta2: 200,
            ts_offset: [7, 9],
            flags: ConnFlags::TIMESTAMPS,
            wscale_in: [7, 9],
            wscale_out: [6, 8],
            ..Conn::new_pass(&key(), 0, 0)
        };
        let cs = c.params(Direction::ClientToServer);
        assert_eq!((cs.seq_add, cs.ack_sub), (100, 200));
        assert_eq!((cs.tsval_add, cs.tsecr_sub), (7, 9));
        assert_eq!((cs.wscale_in, cs.wscale_out), (7, 6));
        let sc = c.params(Direction::ServerToClient);
        assert_eq!((sc.seq_add, sc.ack_sub), (200, 100));
        assert_eq!((sc.tsval_add, sc.tsecr_sub), (9, 7));
        assert_eq!((sc.wscale_in, sc.wscale_out), (9, 8));
        assert!(!cs.is_identity());
        assert!(Conn::new_pass(&key(), 7, 0)
            .params(Direction::ClientToServer)
            .is_identity());
    }

    #[test]
    fn a_free_slot_is_all_zero() {
        let c = Conn::default();
        assert!(c.is_free());
        assert_eq!(CONN_BYTES, 64);
    }
}
