//! The lossy encodings of [`super::Conn`]. Each one rounds in the direction that makes the
//! tracker accept more, never less, and each is idempotent (a decoded value encodes back to
//! the same code), so re-encoding a value read out of the object never drifts.

use super::{ConnFlags, TcpState};
use crate::seq::SeqNumber;

/// How far the stored `maxend` may lie beyond the exact one: it keeps the high 16 bits,
/// rounded up to the next 64 KiB boundary.
pub const MAXEND_SLACK: u32 = 0xFFFF;

/// `maxend` rounded up to a multiple of 64 KiB (modulo 2³²), as its high 16 bits.
#[inline]
pub fn maxend_encode(x: SeqNumber) -> u16 {
    ((u64::from(x.0) + u64::from(MAXEND_SLACK)) >> 16) as u16
}

#[inline]
pub fn maxend_decode(hi: u16) -> SeqNumber {
    SeqNumber(u32::from(hi) << 16)
}

/// The exponent at which a `maxwin` code stands for "at least 2³²": decoded as `u32::MAX`.
const WIN_SATURATED: u32 = 30;

/// `maxwin` as an 8-bit float rounded up: codes 0..=15 are the values themselves, above
/// that 5 bits of exponent and 3 of mantissa with an implicit leading one, so the decoded
/// value is at most 1/8 above the exact one. Monotone, so the larger of two codes is the
/// code of the larger value.
#[inline]
pub fn win_encode(x: u32) -> u8 {
    if x < 16 {
        return x as u8;
    }
    let shift = 28 - x.leading_zeros(); // x >> shift is in 8..16
    let m = (u64::from(x) + (1 << shift) - 1) >> shift; // rounded up: 8..=16
    let (e, m) = if m == 16 {
        (shift + 2, 8)
    } else {
        (shift + 1, m as u32)
    };
    if e >= WIN_SATURATED {
        (WIN_SATURATED * 8) as u8
    } else {
        (e * 8 + m - 8) as u8
    }
}

#[inline]
pub fn win_decode(c: u8) -> u32 {
    let (e, m) = (u32::from(c >> 3), u32::from(c & 7));
    match e {
        0 => m,
        WIN_SATURATED.. => u32::MAX,
        _ => (8 + m) << (e - 1),
    }
}

/// The state with what the tracker keeps beside it (the four FIN bits of the closing states,
/// and whether a SYN offered window scaling), enumerated in 4 bits: only 14 combinations
/// can occur, because FIN bits only exist once the connection is open, an acknowledged FIN
/// was sent, and the state of an open connection follows from its FIN bits alone.
pub mod phase {
    pub const FREE: u32 = 0;
    pub const SYN_SENT: u32 = 1;
    pub const SYN_SENT_WSCALE: u32 = 2;
    pub const SYN_RECV: u32 = 3;
    pub const ESTABLISHED: u32 = 4;
    pub const FIN_WAIT_C: u32 = 5;
    pub const FIN_WAIT_S: u32 = 6;
    pub const CLOSE_WAIT_C: u32 = 7;
    pub const CLOSE_WAIT_S: u32 = 8;
    pub const LAST_ACK: u32 = 9;
    pub const LAST_ACK_C: u32 = 10;
    pub const LAST_ACK_S: u32 = 11;
    pub const TIME_WAIT: u32 = 12;
    pub const CLOSE: u32 = 13;
}

const CF: u8 = ConnFlags::CLIENT_FIN;
const SF: u8 = ConnFlags::SERVER_FIN;
const CA: u8 = ConnFlags::CLIENT_FIN_ACKED;
const SA: u8 = ConnFlags::SERVER_FIN_ACKED;

/// Each phase's state (the two codes no phase uses read as `Close`).
const STATE: [TcpState; 16] = {
    use TcpState::*;
    [
        Free,
        SynSent,
        SynSent,
        SynRecv,
        Established,
        FinWait,
        FinWait,
        CloseWait,
        CloseWait,
        LastAck,
        LastAck,
        LastAck,
        TimeWait,
        Close,
        Close,
        Close,
    ]
};

/// Each phase's FIN bits.
const FIN_BITS: [u8; 16] = [
    0,
    0,
    0,
    0,
    0,
    CF,
    SF,
    CF | CA,
    SF | SA,
    CF | SF,
    CF | SF | CA,
    CF | SF | SA,
    CF | SF | CA | SA,
    0,
    0,
    0,
];

#[inline]
pub fn state_of(p: u32) -> TcpState {
    STATE[(p & 15) as usize]
}

#[inline]
pub fn fins_of(p: u32) -> u8 {
    FIN_BITS[(p & 15) as usize]
}

/// The phase of an open connection with FIN bits `f`: no FIN → ESTABLISHED; one FIN →
/// FIN-WAIT, acknowledged → CLOSE-WAIT; both FINs → LAST-ACK, both acknowledged →
/// TIME-WAIT. An acknowledgement bit without its FIN counts for nothing.
#[inline]
pub fn of_fins(f: u8) -> u32 {
    let (c, s) = (f & CF != 0, f & SF != 0);
    let (ca, sa) = (c && f & CA != 0, s && f & SA != 0);
    match (c, s, ca, sa) {
        (false, false, _, _) => phase::ESTABLISHED,
        (true, false, false, _) => phase::FIN_WAIT_C,
        (true, false, true, _) => phase::CLOSE_WAIT_C,
        (false, true, _, false) => phase::FIN_WAIT_S,
        (false, true, _, true) => phase::CLOSE_WAIT_S,
        (true, true, false, false) => phase::LAST_ACK,
        (true, true, true, false) => phase::LAST_ACK_C,
        (true, true, false, true) => phase::LAST_ACK_S,
        (true, true, true, true) => phase::TIME_WAIT,
    }
}

/// The phase [`super::Conn::set_state`] gives a state: the closing states as if the client
/// had closed first (the tracker reaches them through their FIN bits instead).
#[inline]
pub fn of_state(s: TcpState) -> u32 {
    match s {
        TcpState::Free => phase::FREE,
        TcpState::SynSent => phase::SYN_SENT,
        TcpState::SynRecv => phase::SYN_RECV,
        TcpState::Established => phase::ESTABLISHED,
        TcpState::FinWait => phase::FIN_WAIT_C,
        TcpState::CloseWait => phase::CLOSE_WAIT_C,
        TcpState::LastAck => phase::LAST_ACK,
        TcpState::TimeWait => phase::TIME_WAIT,
        TcpState::Close => phase::CLOSE,
    }
}

/// Bits of the idle stamp.
pub const IDLE_BITS: u32 = 13;
/// A state's timeout is less than 2^this of its stamp's units: the unit, all a flow can
/// outlive its timeout by, is at most a 512th of the timeout (or the smallest unit).
const IDLE_STEPS_LOG2: u32 = 10;
/// The smallest unit, 2^this ms: the stamp of even the shortest timeout goes round no sooner
/// than once a minute (8 ms × 2^13), which the ageing sweep always beats.
const IDLE_MIN_SHIFT: u32 = 3;

/// The stamp's unit for a state whose timeout is `timeout_ms`, as a power of two of
/// milliseconds (a power of two so that the wrapping millisecond clock, shifted, still wraps
/// cleanly).
#[inline]
pub fn idle_shift(timeout_ms: u32) -> u32 {
    (32 - (timeout_ms >> IDLE_STEPS_LOG2).leading_zeros()).max(IDLE_MIN_SHIFT)
}

/// The stamp of a packet seen at `now_ms` by a state with this timeout.
#[inline]
pub fn idle_stamp(now_ms: u32, timeout_ms: u32) -> u32 {
    (now_ms >> idle_shift(timeout_ms)) & ((1 << IDLE_BITS) - 1)
}

/// An upper bound of the time since the stamped packet, `now_ms − stamp × unit` (the packet
/// came within one unit after `stamp × unit`), valid while that is below the stamp's range
/// (2^13 units, or the 2³² ms of the clock for the longest timeouts).
#[inline]
pub fn idle_upper_ms(stamp: u32, now_ms: u32, timeout_ms: u32) -> u64 {
    let k = idle_shift(timeout_ms);
    let bits = IDLE_BITS.min(32 - k);
    let age = (now_ms >> k).wrapping_sub(stamp) & ((1 << bits) - 1);
    (u64::from(age) << k) + u64::from(now_ms & ((1 << k) - 1))
}

/// Whether the flow has certainly been idle longer than `timeout_ms`: the lower bound of its
/// idle time, the upper bound less one unit, exceeds it. So it expires after more than
/// `timeout_ms` (like the exact millisecond stamp) and by `timeout_ms` + one unit at the
/// latest.
#[inline]
pub fn idle_expired(stamp: u32, now_ms: u32, timeout_ms: u32) -> bool {
    let unit = 1u64 << idle_shift(timeout_ms);
    idle_upper_ms(stamp, now_ms, timeout_ms) >= u64::from(timeout_ms) + unit
}
