//! [`track_established`], the vector path's step, beside [`track`] over random established
//! connections and template segments: when the step takes a segment, `track` accepts it and
//! leaves the very same object; when it declines, it has changed nothing (so `track` then
//! decides from the same state). The connections reach every corner the step's bounds
//! draw: windows from none to a saturated `maxwin`, every shift, ends anywhere in the space.

use super::property::Rng;
use super::*;

/// An ESTABLISHED object with tracking anchored at random places.
fn connection(rng: &mut Rng) -> Conn {
    let mut conn = Conn::new_pass(&key(), 0);
    let c_end = rng.isn();
    let s_end = rng.isn();
    let track = |rng: &mut Rng, end: u32, peer_end: u32| Track {
        end: SeqNumber(end),
        maxend: SeqNumber(peer_end.wrapping_add(rng.below(1 << 20))),
        maxwin: match rng.below(4) {
            0 => u32::MAX,
            1 => rng.below(70_000),
            _ => rng.next() as u32 >> rng.below(32),
        },
    };
    let tracks = [track(rng, c_end, s_end), track(rng, s_end, c_end)];
    conn.set_tracks(tracks);
    let shifts = [rng.below(15) as u8, rng.below(15) as u8];
    conn.set_wscale(shifts, shifts);
    conn.set_state(if rng.chance(90) {
        TcpState::Established
    } else {
        TcpState::FinWait
    });
    conn
}

/// A segment the template admits (no SYN, FIN, RST, URG or SACK) near the edges of `conn`.
fn template_segment(rng: &mut Rng, conn: &Conn, dir: Direction) -> Segment {
    let near = |rng: &mut Rng, x: SeqNumber| match rng.below(10) {
        0 => SeqNumber(rng.next() as u32),
        1 => x.wrapping_add(rng.below(1 << 20)),
        _ => x.wrapping_add(rng.jitter()),
    };
    let sender = conn.track(dir);
    let receiver = conn.track(dir.reverse());
    let from = if rng.chance(80) {
        sender.end
    } else {
        receiver.maxend
    };
    Segment {
        flags: [ACK, ACK | PSH, PSH, 0][rng.below(4) as usize],
        seq: near(rng, from),
        ack: near(rng, receiver.end),
        window: rng.window(),
        payload_len: [0, 1, 1448, 65_000][rng.below(4) as usize],
        sack_max: None,
        syn_wscale: None,
    }
}

#[test]
fn the_fast_step_takes_only_what_the_tracker_accepts_and_does_the_same() {
    let mut rng = Rng(0xfa57_57e9);
    let (mut taken, mut declined, mut declined_but_accepted) = (0u32, 0u32, 0u32);
    for _ in 0..400_000 {
        let conn = connection(&mut rng);
        let dir = if rng.chance(50) { C2S } else { S2C };
        let seg = template_segment(&mut rng, &conn, dir);
        let mut fast = conn;
        let mut slow = conn;
        let verdict = track(&mut slow, dir, &seg, &LAX);
        if track_established(&mut fast, dir, &seg) {
            taken += 1;
            assert_eq!(verdict, TrackVerdict::Accept, "{conn:?} {dir:?} {seg:?}");
            assert_eq!(fast, slow, "{conn:?} {dir:?} {seg:?}");
        } else {
            declined += 1;
            assert_eq!(fast, conn, "declined, yet changed: {dir:?} {seg:?}");
            declined_but_accepted += u32::from(verdict == TrackVerdict::Accept);
        }
    }
    // Both outcomes are common, and the step leaves some of what `track` accepts to it
    // (older data within the window, closing flows): it is a shortcut, not the tracker.
    assert!(
        taken > 20_000 && declined > 20_000,
        "{taken} taken, {declined} declined"
    );
    assert!(declined_but_accepted > 1_000, "{declined_but_accepted}");
}
