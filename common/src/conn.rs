//! The connection object: everything the fast path keeps for one tracked or spliced TCP
//! connection, in 48 bytes that are also its flow-table slot.
//!
//! The patent's object is the quad and the two deltas (20 bytes for IPv4). We add what a
//! spliced flow needs to survive real endpoints — the timestamp offsets and window-scale
//! translation of DESIGN.md §4 — and what stateful inspection needs — the TCP state and the
//! per-direction window-tracking fields of conntrack's `tcp_in_window`. A plain `pass` flow is
//! the same object with every delta zero and equal scales.
//!
//! Layout (`repr(C, align(16))`, offsets in bytes; asserted below):
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
//! | 28 | 8 | `end` | per direction, [`Track::end`]: exact |
//! | 36 | 4 | `maxend_hi` | per direction, [`Track::maxend`] rounded **up** to a multiple of 64 KiB: its high 16 bits |
//! | 40 | 2 | `wscale` | four nibbles: per direction the shift the sender announced for its own window (`wscale_in`), and the shift its receiver believes it uses (`wscale_out`) |
//! | 42 | 2 | `maxwin` | per direction, [`Track::maxwin`] as an 8-bit float rounded **up** (at most 1/8 over) |
//! | 44 | 4 | `word` | bits 0–3 the phase: [`TcpState`] with the FIN bits and `WSCALE_OFFERED` of [`ConnFlags`] (0: an empty slot); 4–6 `SPLICED`, `TIMESTAMPS`, `PROXIED`; 7–10 [`Xlate`]; 11–18 `split_mss`; 19–31 the idle stamp |
//!
//! `split_mss` is the MSS a peer accepts in 8-byte units, when the other was told more:
//! larger segments toward it are split (0: never); the server's unless
//! [`Xlate::SPLIT_TO_CLIENT`].
//!
//! What is rounded is rounded only the way that makes the tracker accept more, never less
//! (the tracker's tests run it beside the exact one to show it):
//!
//! - `maxend`, the highest sequence number the sender may send, is stored up to 64 KiB − 1
//!   later, and the bound is tested by distance so the modular comparison cannot flip
//!   ([`Conn::seq_below_maxend`]). A segment up to 64 KiB beyond the receiver's window may
//!   pass; conntrack's own slack is of the same order (it never shrinks `maxend`).
//! - `maxwin`, the largest window the sender advertised, bounds how old data and
//!   acknowledgements may be: stored up to 1/8 larger, it only lets older ones through.
//! - The phase enumerates the 14 combinations of state, FIN bits and `WSCALE_OFFERED` that
//!   can occur (an open connection's state follows from its FIN bits), so nothing is lost;
//!   only after a RST (CLOSE) are the FIN bits forgotten, which nothing reads any more.
//! - The idle stamp is 13 bits of the millisecond clock shifted right by a state-dependent
//!   amount: each state's unit is the power of two of milliseconds that makes its timeout
//!   less than 1024 units (at least 8 ms), so a flow expires after more than its timeout, by
//!   its timeout plus one unit at the latest, and the stamp wraps only after 2^13 units,
//!   eight times the timeout or a minute, whichever is longer (the ageing sweep visits every
//!   flow many times a second). The unit changes with the state, so the worker re-stamps
//!   ([`Conn::touch`]) after every accepted segment. Timeouts are fixed for the life of the
//!   box (a reload keeps them), so a unit never changes under a stamp.
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

use core::fmt;

use crate::flow::{Direction, FlowKey};
use crate::seq::SeqNumber;
use crate::wire::Ipv4Addr;

mod pack;
pub use pack::MAXEND_SLACK;

/// conntrack's per-direction window state (`ip_ct_tcp_state`), for the sender of one
/// direction, in that sender's own sequence space. [`Conn`] stores it packed ([`Conn::track`]
/// decodes it, [`Conn::set_track`] rounds it up); this is also the exact form.
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

/// The object. The key, the deltas and the timestamp offsets are public fields; the rest is
/// packed (see the module documentation) and reached through methods.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, align(16))]
pub struct Conn {
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    pub client_port: u16,
    pub server_port: u16,
    pub delta1: u32,
    pub delta2: u32,
    pub ts_offset: [u32; 2],
    /// Per direction, [`Track::end`], exact.
    end: [SeqNumber; 2],
    /// Per direction, [`Track::maxend`] rounded up to 64 KiB: its high 16 bits.
    maxend_hi: [u16; 2],
    /// The four window shifts, a nibble each: `wscale_in` (bits 0..8), `wscale_out` (8..16).
    wscale: u16,
    /// Per direction, [`Track::maxwin`] as an 8-bit float rounded up.
    maxwin: [u8; 2],
    /// The phase (state and FIN bits), the kind flags, `xlate`, `split_mss`, the idle stamp.
    word: u32,
}

/// Everything one flow costs in the table besides its tag byte: one slot.
pub const CONN_BYTES: usize = core::mem::size_of::<Conn>();
const _: () = assert!(
    CONN_BYTES == 48,
    "a connection object is three quarters of a line"
);
// 16: the size is a multiple of it, so no object ever splits a 16-byte quarter of a line
// (the key and Δ1 are one aligned vector load), and an object spans at most two lines.
const _: () = assert!(core::mem::align_of::<Conn>() == 16);
const _: () = assert!(core::mem::offset_of!(Conn, delta1) == 12);
const _: () = assert!(core::mem::offset_of!(Conn, ts_offset) == 20);
const _: () = assert!(core::mem::offset_of!(Conn, end) == 28);
const _: () = assert!(core::mem::offset_of!(Conn, maxend_hi) == 36);
const _: () = assert!(core::mem::offset_of!(Conn, wscale) == 40);
const _: () = assert!(core::mem::offset_of!(Conn, maxwin) == 42);
const _: () = assert!(core::mem::offset_of!(Conn, word) == 44);

/// The fields of `Conn::word`: (shift, width).
mod word {
    pub const PHASE: (u32, u32) = (0, 4);
    pub const KIND: (u32, u32) = (4, 3);
    pub const XLATE: (u32, u32) = (7, 4);
    pub const SPLIT_MSS: (u32, u32) = (11, 8);
    pub const IDLE: (u32, u32) = (19, super::pack::IDLE_BITS);
    const _: () = assert!(IDLE.0 + IDLE.1 == 32);
}

/// The [`ConnFlags`] stored as themselves (the others follow from the phase).
const KIND_FLAGS: u8 = ConnFlags::SPLICED | ConnFlags::TIMESTAMPS | ConnFlags::PROXIED;

/// The idle stamp [`Conn::touch`] gives an ESTABLISHED flow at one instant: the same for
/// every packet of a burst, so the vector path works it out once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstablishedStamp(u32);

impl EstablishedStamp {
    #[inline]
    pub fn new(now_ms: u32, timeouts: &[u32; TcpState::COUNT]) -> EstablishedStamp {
        let t = timeouts[TcpState::Established as usize];
        EstablishedStamp(pack::idle_stamp(now_ms, t))
    }
}

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
    /// A freshly tracked `pass` flow from its SYN: Δ = 0, no translation, in SYN-SENT. Its
    /// idle stamp is 0 until [`Conn::touch`].
    pub fn new_pass(key: &FlowKey, wscale: u8) -> Conn {
        let mut c = Conn {
            client: key.src,
            server: key.dst,
            client_port: key.sport,
            server_port: key.dport,
            ..Conn::default()
        };
        c.set_state(TcpState::SynSent);
        c.set_wscale([wscale, 0], [wscale, 0]);
        c
    }

    #[inline]
    fn field(&self, (shift, width): (u32, u32)) -> u32 {
        (self.word >> shift) & ((1 << width) - 1)
    }

    #[inline]
    fn set_field(&mut self, (shift, width): (u32, u32), v: u32) {
        let mask = ((1u32 << width) - 1) << shift;
        debug_assert!(v < 1 << width, "{v} does not fit {width} bits");
        self.word = (self.word & !mask) | ((v << shift) & mask);
    }

    /// The key in client→server orientation.
    #[inline]
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.client, self.client_port, self.server, self.server_port)
    }

    #[inline]
    pub fn is_free(&self) -> bool {
        self.field(word::PHASE) == pack::phase::FREE
    }

    #[inline]
    pub fn state(&self) -> TcpState {
        pack::state_of(self.field(word::PHASE))
    }

    /// Sets the state. FIN-WAIT, CLOSE-WAIT and LAST-ACK are set as if the client had closed
    /// first; the tracker reaches the closing states through [`Conn::set_fins`] instead. The
    /// idle stamp's unit depends on the state: [`Conn::touch`] after a change.
    #[inline]
    pub fn set_state(&mut self, s: TcpState) {
        self.set_field(word::PHASE, pack::of_state(s));
    }

    /// The [`ConnFlags`]: the kind bits as set, the FIN bits of an open connection and
    /// `WSCALE_OFFERED` of one in SYN-SENT as its phase says.
    #[inline]
    pub fn flags(&self) -> u8 {
        let p = self.field(word::PHASE);
        let offered = if p == pack::phase::SYN_SENT_WSCALE {
            ConnFlags::WSCALE_OFFERED
        } else {
            0
        };
        self.field(word::KIND) as u8 | pack::fins_of(p) | offered
    }

    /// Sets or clears one of [`ConnFlags::SPLICED`], [`ConnFlags::TIMESTAMPS`] and
    /// [`ConnFlags::PROXIED`] (the others belong to the state).
    #[inline]
    pub fn set_flag(&mut self, flag: u8, on: bool) {
        debug_assert!(flag & !KIND_FLAGS == 0, "flag {flag:#x} is not a kind flag");
        let f = self.field(word::KIND) as u8;
        let f = if on { f | flag } else { f & !flag } & KIND_FLAGS;
        self.set_field(word::KIND, u32::from(f));
    }

    /// The FIN bits of [`ConnFlags`] (none unless the connection is open).
    #[inline]
    pub fn fins(&self) -> u8 {
        pack::fins_of(self.field(word::PHASE))
    }

    /// Records the FIN bits of an open connection, which decide its state (ESTABLISHED
    /// through TIME-WAIT); returns that state.
    #[inline]
    pub fn set_fins(&mut self, fins: u8) -> TcpState {
        let p = pack::of_fins(fins);
        self.set_field(word::PHASE, p);
        pack::state_of(p)
    }

    /// Whether the SYN of a connection in SYN-SENT offered window scaling.
    #[inline]
    pub fn wscale_offered(&self) -> bool {
        self.field(word::PHASE) == pack::phase::SYN_SENT_WSCALE
    }

    /// Records whether the SYN offered window scaling (only in SYN-SENT, where it matters).
    #[inline]
    pub fn set_wscale_offered(&mut self, offered: bool) {
        debug_assert_eq!(self.state(), TcpState::SynSent);
        let p = if offered {
            pack::phase::SYN_SENT_WSCALE
        } else {
            pack::phase::SYN_SENT
        };
        self.set_field(word::PHASE, p);
    }

    /// Per direction, the shift the sender announced for its own window.
    #[inline]
    pub fn wscale_in(&self) -> [u8; 2] {
        [(self.wscale & 15) as u8, (self.wscale >> 4 & 15) as u8]
    }

    /// Per direction, the shift the receiver believes the sender uses.
    #[inline]
    pub fn wscale_out(&self) -> [u8; 2] {
        [
            (self.wscale >> 8 & 15) as u8,
            (self.wscale >> 12 & 15) as u8,
        ]
    }

    /// Sets both pairs of shifts (each at most 14, RFC 7323 §2.3).
    #[inline]
    pub fn set_wscale(&mut self, wscale_in: [u8; 2], wscale_out: [u8; 2]) {
        let n = |v: u8| {
            debug_assert!(v <= 14, "window shift {v}");
            u16::from(v.min(15))
        };
        self.wscale =
            n(wscale_in[0]) | n(wscale_in[1]) << 4 | n(wscale_out[0]) << 8 | n(wscale_out[1]) << 12;
    }

    /// The [`Xlate`] bits.
    #[inline]
    pub fn xlate(&self) -> u8 {
        self.field(word::XLATE) as u8
    }

    #[inline]
    pub fn set_xlate(&mut self, xlate: u8) {
        self.set_field(word::XLATE, u32::from(xlate));
    }

    /// The MSS a peer accepts in 8-byte units, when the other was told more: larger segments
    /// toward it are split (0: never); the server's unless [`Xlate::SPLIT_TO_CLIENT`].
    #[inline]
    pub fn split_mss(&self) -> u8 {
        self.field(word::SPLIT_MSS) as u8
    }

    #[inline]
    pub fn set_split_mss(&mut self, units: u8) {
        self.set_field(word::SPLIT_MSS, u32::from(units));
    }

    /// Stamps the flow as seen at `now_ms`, in the unit of its current state's timeout
    /// (`timeouts` by state, in milliseconds, as in the workers' context). Call it for
    /// every packet that keeps the flow alive, after the tracker has moved the state.
    #[inline]
    pub fn touch(&mut self, now_ms: u32, timeouts: &[u32; TcpState::COUNT]) {
        let t = timeouts[self.state() as usize];
        self.set_field(word::IDLE, pack::idle_stamp(now_ms, t));
    }

    /// Whether the flow is ESTABLISHED with no FIN either way: the vector path's state.
    #[inline]
    pub fn is_established(&self) -> bool {
        self.field(word::PHASE) == pack::phase::ESTABLISHED
    }

    /// [`Conn::touch`] of an ESTABLISHED flow, with the stamp worked out once for a burst.
    #[inline]
    pub fn touch_established(&mut self, stamp: EstablishedStamp) {
        debug_assert!(self.is_established());
        self.set_field(word::IDLE, stamp.0);
    }

    /// Whether a packet travelling in `dir` needs nothing but the fixed rewrite: the flow is
    /// not proxied, translates no option and splits no segment travelling in `dir` (with no
    /// [`Xlate`] bit, what is split is client→server).
    #[inline]
    pub fn rewrite_is_fixed(&self, dir: Direction) -> bool {
        let mask = |(shift, width): (u32, u32)| ((1u32 << width) - 1) << shift;
        let split = match dir {
            Direction::ClientToServer => mask(word::SPLIT_MSS),
            Direction::ServerToClient => 0,
        };
        let proxied = u32::from(ConnFlags::PROXIED) << word::KIND.0;
        self.word & (proxied | mask(word::XLATE) | split) == 0
    }

    /// Whether the flow has been idle longer than its state's timeout at `now_ms`: never
    /// before the timeout, and by the timeout plus one unit of the stamp (at most a 512th
    /// of the timeout, or 8 ms) at the latest, provided the ageing sweep looks at the flow
    /// within 2^13 units of its last packet (a minute for the shortest timeouts).
    #[inline]
    pub fn idle_expired(&self, now_ms: u32, timeouts: &[u32; TcpState::COUNT]) -> bool {
        let t = timeouts[self.state() as usize];
        pack::idle_expired(self.field(word::IDLE), now_ms, t)
    }

    /// How long the flow has been idle at `now_ms`, rounded up to its stamp's unit (for
    /// listings).
    pub fn idle_ms(&self, now_ms: u32, timeouts: &[u32; TcpState::COUNT]) -> u64 {
        let t = timeouts[self.state() as usize];
        pack::idle_upper_ms(self.field(word::IDLE), now_ms, t)
    }

    /// The window tracking of the sender of `dir`, decoded: `end` exact, `maxend` and
    /// `maxwin` as stored (rounded up).
    #[inline]
    pub fn track(&self, dir: Direction) -> Track {
        let d = dir.index();
        Track {
            end: self.end[d],
            maxend: pack::maxend_decode(self.maxend_hi[d]),
            maxwin: pack::win_decode(self.maxwin[d]),
        }
    }

    /// Both directions' [`Conn::track`].
    #[inline]
    pub fn tracks(&self) -> [Track; 2] {
        [
            self.track(Direction::ClientToServer),
            self.track(Direction::ServerToClient),
        ]
    }

    /// Sets the window tracking of the sender of `dir`, rounding `maxend` and `maxwin` up.
    #[inline]
    pub fn set_track(&mut self, dir: Direction, t: Track) {
        let d = dir.index();
        self.end[d] = t.end;
        self.maxend_hi[d] = pack::maxend_encode(t.maxend);
        self.maxwin[d] = pack::win_encode(t.maxwin);
    }

    /// Both directions' [`Conn::set_track`].
    #[inline]
    pub fn set_tracks(&mut self, [to_server, to_client]: [Track; 2]) {
        self.set_track(Direction::ClientToServer, to_server);
        self.set_track(Direction::ServerToClient, to_client);
    }

    /// The end of what the sender of `dir` sent ([`Track::end`], exact).
    #[inline]
    pub fn end(&self, dir: Direction) -> SeqNumber {
        self.end[dir.index()]
    }

    #[inline]
    pub fn set_end(&mut self, dir: Direction, end: SeqNumber) {
        self.end[dir.index()] = end;
    }

    /// Raises the sender of `dir`'s `maxend` to `limit` if that is later, rounded up.
    #[inline]
    pub fn raise_maxend(&mut self, dir: Direction, limit: SeqNumber) {
        let d = dir.index();
        let raised = pack::maxend_decode(self.maxend_hi[d]).max(limit);
        self.maxend_hi[d] = pack::maxend_encode(raised);
    }

    /// Raises the sender of `dir`'s `maxwin` to `win` if that is larger, rounded up.
    #[inline]
    pub fn raise_maxwin(&mut self, dir: Direction, win: u32) {
        let d = dir.index();
        // Mostly the window is no larger than before: a decode is cheaper than an encode.
        // A larger window encodes to a larger code (rounded up, so never the same one).
        if win > pack::win_decode(self.maxwin[d]) {
            self.maxwin[d] = pack::win_encode(win);
        }
    }

    /// conntrack's first bound, `seq` no later than the sender of `dir`'s `maxend`, against
    /// the rounded-up bound: true for every `seq` the exact bound admits. The exact test is
    /// `maxend − seq < 2³¹` (modulo 2³²); the stored bound is up to [`MAXEND_SLACK`]
    /// later, so the same distance from it is allowed that much more.
    #[inline]
    pub fn seq_below_maxend(&self, dir: Direction, seq: SeqNumber) -> bool {
        let bound = pack::maxend_decode(self.maxend_hi[dir.index()]);
        bound.0.wrapping_sub(seq.0) < (1 << 31) + pack::MAXEND_SLACK
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
        // The nibbles of `wscale` and the kind bit read directly: this runs for every
        // forwarded packet.
        let shift = |base: usize| ((self.wscale >> (base + 4 * d)) & 15) as u8;
        SpliceParams {
            seq_add,
            ack_sub,
            tsval_add: self.ts_offset[d],
            tsecr_sub: self.ts_offset[o],
            wscale_in: shift(0),
            wscale_out: shift(8),
            timestamps: self.field(word::KIND) as u8 & ConnFlags::TIMESTAMPS != 0,
            ts_edit: TsEdit::None,
            sack_strip: dir == Direction::ClientToServer
                && self.xlate() & Xlate::SACK_CLIENT_ONLY != 0,
        }
    }

    /// The most data and options a segment travelling in `dir` may carry before it is split
    /// (only toward a peer that accepts less than the other was told).
    #[inline]
    pub fn split_at(&self, dir: Direction) -> Option<u16> {
        let toward = if self.xlate() & Xlate::SPLIT_TO_CLIENT != 0 {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        let mss = self.split_mss();
        (dir == toward && mss != 0).then(|| u16::from(mss) * 8)
    }

    /// Whether packets travelling in `dir` lose their timestamp option (their receiver did
    /// not negotiate it) or gain one (their sender did not).
    #[inline]
    fn ts_one_leg(&self, dir: Direction) -> Option<bool> {
        let (strip, insert) = match dir {
            Direction::ClientToServer => (Xlate::TS_CLIENT_ONLY, Xlate::TS_SERVER_ONLY),
            Direction::ServerToClient => (Xlate::TS_SERVER_ONLY, Xlate::TS_CLIENT_ONLY),
        };
        let x = self.xlate();
        if x & strip != 0 {
            Some(false)
        } else if x & insert != 0 {
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

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("key", &self.key())
            .field("delta1", &self.delta1)
            .field("delta2", &self.delta2)
            .field("ts_offset", &self.ts_offset)
            .field("track", &self.tracks())
            .field("state", &self.state())
            .field("flags", &format_args!("{:#04x}", self.flags()))
            .field("wscale_in", &self.wscale_in())
            .field("wscale_out", &self.wscale_out())
            .field("xlate", &format_args!("{:#x}", self.xlate()))
            .field("split_mss", &self.split_mss())
            .field("idle_stamp", &self.field(word::IDLE))
            .finish()
    }
}

#[cfg(test)]
mod tests;
