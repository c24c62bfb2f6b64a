//! The packed tracker beside the exact one ([`super::oracle`]) over random connections:
//! handshakes with and without window scaling, then segments in order, retransmitted, at
//! and around every edge the four bounds draw (as the exact tracker sees them), with SACK,
//! FIN and RST, from sequence numbers anywhere in the space (the wrap and 64 KiB boundaries
//! included). Whatever the exact tracker accepts, the packed one accepts; whatever it
//! forwards (accepts or ignores), the packed one forwards; and whenever the two give the
//! same verdict they hold the same state (the packed one's rounded fields being exactly the
//! exact ones rounded up). Where the packed one is looser, it is put back in step with the
//! exact state and the walk goes on.

use super::oracle::{self, Exact};
use super::*;

/// splitmix64: deterministic, so every run checks the same cases.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }

    pub(super) fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    /// A small signed offset: mostly a few bytes, sometimes up to 64 KiB and a bit.
    pub(super) fn jitter(&mut self) -> u32 {
        let v = if self.chance(70) {
            self.below(4)
        } else {
            self.below(70_000)
        };
        if self.chance(50) {
            v
        } else {
            v.wrapping_neg()
        }
    }

    pub(super) fn window(&mut self) -> u16 {
        match self.below(10) {
            0 => 0,
            1 => u16::MAX,
            2..=4 => self.below(2000) as u16,
            _ => self.next() as u16,
        }
    }

    /// An initial sequence number: anywhere, just below the wrap, or just below a 64 KiB
    /// boundary (where the rounding of `maxend` changes).
    pub(super) fn isn(&mut self) -> u32 {
        match self.below(4) {
            0 => u32::MAX - self.below(200_000),
            1 => (self.next() as u32 & !0xFFFF).wrapping_sub(self.below(3000)),
            _ => self.next() as u32,
        }
    }
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    ignored: u64,
    dropped: u64,
    /// The packed tracker accepted or forwarded what the exact one did not.
    looser: u64,
    /// Of those, what the exact one dropped.
    looser_than_drop: u64,
    /// The same verdict, different states: a number half the sequence space from the one
    /// it was compared with ([`half_way_round`]).
    half_way: u64,
    states: [u64; TcpState::COUNT],
}

/// A segment from the sender of `dir`, its numbers drawn around the exact tracker's state.
fn segment(rng: &mut Rng, e: &Exact, dir: Direction) -> Segment {
    use flags::{ACK, FIN, PSH, RST, SYN};
    let (sender, receiver) = (e.track[dir.index()], e.track[dir.reverse().index()]);
    let flags = match rng.below(100) {
        0..=49 => ACK,
        50..=64 => ACK | PSH,
        65..=74 => ACK | FIN,
        75..=78 => RST,
        79..=82 => RST | ACK,
        83..=85 => SYN,
        86..=88 => SYN | ACK,
        89..=90 => PSH,
        _ => ACK,
    };
    let len = match rng.below(10) {
        0..=3 => 0,
        4..=7 => 1 + rng.below(1460),
        8 => rng.below(65_536),
        _ => rng.below(1 << 20),
    };
    let len = if flags & (SYN | RST) != 0 { 0 } else { len };
    let maxwin_back = |w: u32| sender.end.wrapping_sub(w);
    let seq = match rng.below(20) {
        0..=7 => sender.end,
        8..=9 => sender
            .end
            .wrapping_sub(rng.below(receiver.maxwin.saturating_add(3))),
        // At the window's right edge, and beyond it through the rounding.
        10..=12 => sender.maxend.wrapping_add(rng.jitter()),
        // Ending around one receiver window behind what was sent (too old, or just not).
        13 => maxwin_back(receiver.maxwin)
            .wrapping_sub(len)
            .wrapping_add(rng.jitter()),
        14 => SeqNumber(rng.next() as u32),
        _ => {
            let room = sender.maxend.diff(sender.end).max(1) as u32;
            sender.end.wrapping_add(rng.below(room))
        }
    };
    let ack = match rng.below(10) {
        0..=4 => receiver.end,
        5..=6 => receiver.end.wrapping_sub(rng.below(200_000)),
        // Around the oldest acknowledgement the bounds let through.
        7 => receiver
            .end
            .wrapping_sub(sender.maxwin.max(MAX_ACK_WINDOW))
            .wrapping_add(rng.jitter()),
        8 => receiver.end.wrapping_add(rng.jitter()),
        _ => SeqNumber(rng.next() as u32),
    };
    let sack_max = rng.chance(20).then(|| {
        let room = receiver.end.diff(ack).clamp(0, 1 << 20) as u32;
        ack.wrapping_add(rng.below(room + 3))
    });
    let syn_wscale = (flags & SYN != 0 && rng.chance(70)).then(|| rng.below(15) as u8);
    Segment {
        flags,
        seq,
        ack,
        window: rng.window(),
        payload_len: len,
        sack_max,
        syn_wscale,
    }
}

/// The first segments of a connection: the client's SYN, then mostly a SYN-ACK that
/// acknowledges it (the walk does the rest).
fn opening(rng: &mut Rng, e: &Exact, n: usize) -> Option<(Direction, Segment)> {
    let wscale = |rng: &mut Rng| rng.chance(70).then(|| rng.below(15) as u8);
    match n {
        0 => Some((
            C2S,
            Segment {
                flags: flags::SYN,
                seq: SeqNumber(rng.isn()),
                window: rng.window(),
                syn_wscale: wscale(rng),
                ..Segment::default()
            },
        )),
        1 if rng.chance(90) => Some((
            S2C,
            Segment {
                flags: flags::SYN | flags::ACK,
                seq: SeqNumber(rng.isn()),
                ack: e.track[0].end,
                window: rng.window(),
                syn_wscale: wscale(rng),
                ..Segment::default()
            },
        )),
        _ => None,
    }
}

/// Why the two trackers gave a segment the same verdict but hold different states, if it is
/// one of the two ways this can happen, both where two sequence numbers are about 2³¹
/// apart, where modular order is ambiguous and rounding a bound up can flip it:
///
/// - both ignored the segment, the exact tracker as too old (its data ends more than
///   `maxwin` behind), the packed one, to which data ending "after" what was sent is never
///   old, for its stale acknowledgement after recording that end: the data ends just under
///   2³¹ ahead of, and so also more than `maxwin` behind, what was sent;
/// - both accepted it, and the receiver's new bound (acknowledgement plus window) lies
///   within 64 KiB of 2³¹ from its `maxend`: the exact `maxend` and the rounded-up one take
///   it for earlier and later respectively (or the other way round).
fn half_way_round(
    before: &Exact,
    exact: &Exact,
    conn: &Conn,
    dir: Direction,
    seg: &Segment,
    v: TrackVerdict,
) -> Option<&'static str> {
    let (s, r) = (dir.index(), dir.reverse().index());
    let mut fixed = *conn;
    match v {
        TrackVerdict::Ignore => {
            let ahead = seg.end().0.wrapping_sub(before.track[s].end.0);
            let behind = (1u32 << 31) - before.track[r].maxwin.min(1 << 31);
            fixed.set_end(dir, exact.track[s].end);
            (conn.end(dir) == seg.end()
                && (behind..1 << 31).contains(&ahead)
                && exact.encoded_in(&fixed))
            .then_some("recorded")
        }
        TrackVerdict::Accept => {
            let ack = seg.ack;
            let sack = match seg.sack_max {
                Some(m) if m > ack => m,
                _ => ack,
            };
            let win = u32::from(seg.window) << before.wscale_in[s];
            let limit = sack.wrapping_add(win.max(1));
            let apart = limit.0.wrapping_sub(before.track[r].maxend.0);
            let mut t = fixed.track(dir.reverse());
            t.maxend = exact.track[r].maxend;
            fixed.set_track(dir.reverse(), t);
            (apart.abs_diff(1 << 31) <= 1 << 16 && exact.encoded_in(&fixed)).then_some("maxend")
        }
        TrackVerdict::Drop(_) => None,
    }
}

/// One segment through both trackers, with the checks of the module documentation.
fn step(
    exact: &mut Exact,
    conn: &mut Conn,
    dir: Direction,
    seg: &Segment,
    cfg: &TrackConfig,
    tally: &mut Tally,
) {
    let before = (*exact, *conn);
    let ve = oracle::track(exact, dir, seg, cfg);
    let vp = track(conn, dir, seg, cfg);
    let class = |v: TrackVerdict| match v {
        TrackVerdict::Accept => 0,
        TrackVerdict::Ignore => 1,
        TrackVerdict::Drop(_) => 2,
    };
    let context = || format!("{dir:?} {seg:?} from {:?} / {:?}", before.0, before.1);
    assert!(
        class(vp) <= class(ve),
        "exact {ve:?}, packed {vp:?}: stricter on {}",
        context()
    );
    match ve {
        TrackVerdict::Accept => tally.accepted += 1,
        TrackVerdict::Ignore => tally.ignored += 1,
        TrackVerdict::Drop(_) => tally.dropped += 1,
    }
    if class(vp) == class(ve) && !exact.encoded_in(conn) {
        let why = half_way_round(&before.0, exact, conn, dir, seg, ve);
        assert!(
            why.is_some(),
            "both {ve:?} but the states differ: exact {exact:?}, packed {conn:?}, after {}",
            context()
        );
        tally.half_way += 1;
        exact.encode_into(conn);
    } else if class(vp) != class(ve) {
        tally.looser += 1;
        tally.looser_than_drop += u64::from(class(ve) == 2);
        exact.encode_into(conn);
    }
    tally.states[exact.state as usize] += 1;
}

#[test]
fn the_packed_tracker_accepts_whatever_the_exact_one_accepts() {
    let mut rng = Rng(0x5eed);
    let mut tally = Tally::default();
    let key = FlowKey::new(
        Ipv4Addr::new(198, 18, 0, 1),
        40000,
        Ipv4Addr::new(198, 19, 0, 2),
        80,
    );
    for _ in 0..20_000 {
        let cfg = TrackConfig {
            strict_rst: rng.chance(30),
        };
        let mut conn = Conn::new_pass(&key, 0);
        let mut exact = Exact {
            state: TcpState::SynSent,
            flags: 0,
            track: [Track::default(); 2],
            wscale_in: [0, 0],
        };
        for n in 0..300 {
            let (dir, seg) = opening(&mut rng, &exact, n).unwrap_or_else(|| {
                let dir = if rng.chance(50) { C2S } else { S2C };
                (dir, segment(&mut rng, &exact, dir))
            });
            step(&mut exact, &mut conn, dir, &seg, &cfg, &mut tally);
            // A RST ends most walks; a few go on to see the stragglers.
            if exact.state == TcpState::Close && rng.chance(80) {
                break;
            }
        }
    }
    let total = tally.accepted + tally.ignored + tally.dropped;
    eprintln!(
        "{total} segments: {} accepted, {} ignored, {} dropped by the exact tracker; the packed \
         one looser on {} ({} of them dropped by the exact one); the same verdict but a \
         different state half the sequence space away {} times; by state {:?}",
        tally.accepted,
        tally.ignored,
        tally.dropped,
        tally.looser,
        tally.looser_than_drop,
        tally.half_way,
        tally.states
    );
    assert!(
        tally.accepted > total / 4 && tally.ignored > 1000 && tally.dropped > total / 10,
        "verdicts: {} accepted, {} ignored, {} dropped",
        tally.accepted,
        tally.ignored,
        tally.dropped
    );
    assert!(
        tally.looser > 100 && tally.looser < total / 5,
        "looser on {} of {total}",
        tally.looser
    );
    assert!(
        tally.half_way < total / 1000,
        "{} half way round",
        tally.half_way
    );
    for s in &TcpState::ALL[1..] {
        assert!(tally.states[*s as usize] > 100, "{s:?} seldom reached");
    }
}
