//! The splice arithmetic (DESIGN.md §4, patent Figs. 8 and 9): from the two legs' numbers,
//! once both are quiet, the connection object the fast path takes over with.
//!
//! Δ1 = seq1 − ack1 and Δ2 = seq2 − ack2, where ack1 is the next byte the box expects from the
//! client, seq2 the next byte it would send the client, seq1 the next byte it would send the
//! server and ack2 the next byte it expects from the server. Timestamps get two offsets so
//! each endpoint keeps seeing a monotonic clock from its peer (PAWS never fires); window fields
//! are translated between the shifts the two legs announced; the box must never have let one
//! side send segments larger than the other accepts.

use common::conn::{Conn, ConnFlags, TcpState, Track, Xlate, MAX_SPLIT_MSS};
use common::flow::{Direction, FlowKey};
use common::seq::SeqNumber;
use common::wire::tcp::SynOptions;

use super::announce::{DEFAULT_MSS, TS_ROOM};
use super::tap::LegTap;

/// Why a connection cannot be spliced. The first two only mean "not yet" (the drain goes
/// on); every other one keeps the connection fully proxied, counted as a fallback by its
/// [`Fallback`] cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    #[error("a leg has not completed its handshake")]
    NoHandshake,
    #[error("the box still has unacknowledged data on a leg")]
    NotQuiet,
    #[error("{}", .0.describe())]
    Fallback(Fallback),
}

/// Defines [`Fallback`], its names and descriptions, and [`FallbackCounters`] from one list:
/// a cause added here is counted, serialised and listed with no other change.
macro_rules! fallback_causes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $text:literal;)*) => {
        /// What keeps a connection fully proxied instead of spliced.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fallback {
            $($(#[$doc])* $variant,)*
        }

        impl Fallback {
            pub const ALL: &'static [Fallback] = &[$(Fallback::$variant,)*];

            /// The cause's key in the statistics (`connections.fallback_causes`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Fallback::$variant => $name,)*
                }
            }

            /// One line for the log.
            pub fn describe(self) -> &'static str {
                match self {
                    $(Fallback::$variant => $text,)*
                }
            }
        }
    };
}

/// The smallest server MSS the fast path splits segments for: below it a piece would carry
/// too little data beside its options to be worth sending.
const MIN_SPLIT_MSS: u16 = 128;

fallback_causes! {
    /// The box announced to one peer a larger MSS than the other accepts, and the fast path
    /// cannot split that peer's segments: both peers were told too much (the object holds
    /// one MSS to split at), or the smaller MSS is outside 128..=2040 bytes.
    Mss => "mss", "the box announced a larger MSS to one side than the other side accepts";
}

/// Fallbacks by cause: one counter per [`Fallback`], serialised as an object of cause and
/// count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FallbackCounters([u64; Fallback::ALL.len()]);

impl FallbackCounters {
    pub fn count(&mut self, cause: Fallback) {
        self.0[cause as usize] += 1;
    }

    pub fn get(&self, cause: Fallback) -> u64 {
        self.0[cause as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// (name, count) of every cause, in the list's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Fallback::ALL.iter().map(|c| (c.name(), self.get(*c)))
    }
}

impl serde::Serialize for FallbackCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(Fallback::ALL.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// Computes the connection object for `key` (client → server) from the client leg's and the
/// server leg's taps.
///
/// `held_tsval` is the oldest TSval among the segments the drain held back from the client
/// and from the server (sent on through the fast path right after the splice): the
/// timestamp offsets are taken from them, so that even those arrive with a TSval no lower
/// than the last one the box's leg sent (PAWS would drop them).
pub fn compute(
    key: &FlowKey,
    c: &LegTap,
    s: &LegTap,
    now_ms: u32,
    held_tsval: [Option<u32>; 2],
) -> Result<Conn, SpliceError> {
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
    let (client_ts, server_ts) = (c.timestamps(), s.timestamps());
    let ts = client_ts && server_ts;
    let syns = [c_box, c_peer, s_box, s_peer];
    let (split_mss, split_to_client) = split(syns, client_ts, server_ts)?;

    let (delta1, delta2) = deltas(seq1, ack1, seq2, ack2);
    let (ts_offset, ts_xlate) = timestamp_offsets(c, s, now_ms, held_tsval);
    let xlate = ts_xlate | option_xlate(c, s, split_to_client);
    let (client_shift, box_to_client) = c.shifts();
    let (server_shift, box_to_server) = s.shifts();
    let [to_server, to_client] = track(c, s, ack1, ack2);
    let mut conn = Conn::new_pass(key, 0);
    (conn.delta1, conn.delta2, conn.ts_offset) = (delta1, delta2, ts_offset);
    conn.set_track(Direction::ClientToServer, to_server);
    conn.set_track(Direction::ServerToClient, to_client);
    conn.set_state(TcpState::Established);
    conn.set_flag(ConnFlags::SPLICED, true);
    conn.set_flag(ConnFlags::TIMESTAMPS, ts);
    // direction 0: the client's own shift in, the shift the server believes (the box's on
    // the server leg) out; direction 1 the other way round.
    conn.set_wscale([client_shift, server_shift], [box_to_server, box_to_client]);
    conn.set_xlate(xlate);
    conn.set_split_mss(split_mss);
    // The worker stamps it for the idle timeout when it installs it.
    Ok(conn)
}

/// Where the fast path splits segments, from the four SYNs (the box's and the peer's on the
/// client leg, then on the server leg): `split_mss` (the MSS in units of 8 bytes, 0 for no
/// split) and whether it splits toward the client; a fallback when it cannot.
fn split(
    [c_box, c_peer, s_box, s_peer]: [SynOptions; 4],
    client_ts: bool,
    server_ts: bool,
) -> Result<(u8, bool), SpliceError> {
    // The box's MSS to the client bounds what the client sends the server, and vice versa;
    // a timestamp option the fast path inserts adds to it.
    let mss = |o: Option<SynOptions>| {
        o.and_then(|o| o.mss)
            .filter(|&m| m != 0)
            .unwrap_or(DEFAULT_MSS)
    };
    let room = |inserted: bool| if inserted { TS_ROOM } else { 0 };
    // A peer told more than the other accepts gets its larger segments split by the fast
    // path: a client answered before the box knew the server, or a server that turned out
    // to send no timestamps after the box had left no room for inserting them (it was
    // remembered with them). The object has room for one direction.
    let to_server = mss(Some(c_box)) + room(server_ts && !client_ts) > mss(Some(s_peer));
    let to_client = mss(Some(s_box)) + room(client_ts && !server_ts) > mss(Some(c_peer));
    let (mut split_mss, mut split_to_client) = (0, false);
    if to_server || to_client {
        let accepts = mss(Some(if to_client { c_peer } else { s_peer }));
        if (to_server && to_client) || !(MIN_SPLIT_MSS..=MAX_SPLIT_MSS).contains(&accepts) {
            return Err(SpliceError::Fallback(Fallback::Mss));
        }
        split_mss = (accepts / 8) as u8;
        split_to_client = to_client;
    }
    Ok((split_mss, split_to_client))
}

/// Δ1 = seq1 − ack1 and Δ2 = seq2 − ack2 (see the module docs), modulo 2^32.
fn deltas(seq1: SeqNumber, ack1: SeqNumber, seq2: SeqNumber, ack2: SeqNumber) -> (u32, u32) {
    let delta1 = seq1.0.wrapping_sub(ack1.0);
    let delta2 = seq2.0.wrapping_sub(ack2.0);
    (delta1, delta2)
}

/// The timestamp offsets of both directions, and the `xlate` bit when only one leg
/// negotiated timestamps.
fn timestamp_offsets(
    c: &LegTap,
    s: &LegTap,
    now_ms: u32,
    held_tsval: [Option<u32>; 2],
) -> ([u32; 2], u8) {
    let mut ts_offset = [0u32; 2];
    let mut xlate = 0;
    let now = now_ms;
    // The inserted TSval is the fast path's clock plus this: it continues the values the
    // box's leg sent that peer (one more, so a worker whose clock lags control's by a
    // moment still sends none below them; PAWS never fires).
    let clock_offset = |leg: &LegTap| {
        leg.box_tsval
            .unwrap_or(now)
            .wrapping_sub(now)
            .wrapping_add(1)
    };
    match (c.timestamps(), s.timestamps()) {
        (true, true) => {
            // The client's clock moved into the clock the server has seen from the box, and
            // back.
            let client = oldest(c.peer_tsval, held_tsval[0]).unwrap_or(0);
            let server = oldest(s.peer_tsval, held_tsval[1]).unwrap_or(0);
            ts_offset[0] = s.box_tsval.unwrap_or(client).wrapping_sub(client);
            ts_offset[1] = c.box_tsval.unwrap_or(server).wrapping_sub(server);
        }
        (true, false) => {
            // Removed on the way to the server; inserted toward the client, echoing the
            // client's latest TSval (kept in the client's direction).
            xlate = Xlate::TS_CLIENT_ONLY;
            ts_offset[0] = c.peer_tsval.unwrap_or(0);
            ts_offset[1] = clock_offset(c);
        }
        (false, true) => {
            xlate = Xlate::TS_SERVER_ONLY;
            ts_offset[0] = clock_offset(s);
            ts_offset[1] = s.peer_tsval.unwrap_or(0);
        }
        (false, false) => {}
    }
    (ts_offset, xlate)
}

/// The `xlate` bits of the other options the legs did not agree on, and of the split's
/// direction.
fn option_xlate(c: &LegTap, s: &LegTap, split_to_client: bool) -> u8 {
    let mut xlate = 0;
    // SACK the client may use that the server never agreed to.
    let sack = |l: &LegTap| {
        l.box_syn.is_some_and(|o| o.sack_permitted) && l.peer_syn.is_some_and(|o| o.sack_permitted)
    };
    if sack(c) && !sack(s) {
        xlate |= Xlate::SACK_CLIENT_ONLY;
    }
    if split_to_client {
        xlate |= Xlate::SPLIT_TO_CLIENT;
    }
    xlate
}

/// Where the window tracking of each direction starts, from ack1 and ack2.
fn track(c: &LegTap, s: &LegTap, ack1: SeqNumber, ack2: SeqNumber) -> [Track; 2] {
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
    [
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
    ]
}

/// The older of two TSvals (modulo 2^32, RFC 7323 §5.2), or the one there is.
pub fn oldest(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if (x.wrapping_sub(y) as i32) < 0 { x } else { y }),
        (x, None) | (None, x) => x,
    }
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
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        // Δ1 = seq1 − ack1, Δ2 = seq2 − ack2, modulo 2^32 (ack2 is just below the wrap).
        assert_eq!(conn.delta1, 90_101u32.wrapping_sub(1101));
        assert_eq!(conn.delta2, 5051u32.wrapping_sub(u32::MAX - 10));
        // The client's next byte lands exactly on the server's expected sequence.
        assert_eq!(SeqNumber(1101).wrapping_add(conn.delta1), SeqNumber(90_101));
        assert_eq!(
            SeqNumber(u32::MAX - 10).wrapping_add(conn.delta2),
            SeqNumber(5051)
        );
        assert_eq!(conn.state(), TcpState::Established);
        assert_eq!(conn.key(), key());
    }

    #[test]
    fn timestamp_offsets_keep_each_peer_clock_monotonic() {
        let (c, s) = legs();
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_ne!(conn.flags() & ConnFlags::TIMESTAMPS, 0);
        // The client's last TSval, moved, equals the last TSval the server saw from the box.
        assert_eq!(100u32.wrapping_add(conn.ts_offset[0]), 710);
        assert_eq!(3_000_000u32.wrapping_add(conn.ts_offset[1]), 700);
    }

    #[test]
    fn held_segments_are_not_mapped_below_what_the_leg_sent() {
        let (c, s) = legs();
        // A segment the server sent before its latest (TSval 2_999_990) was held back.
        let conn = compute(&key(), &c, &s, 0, [None, Some(2_999_990)]).unwrap();
        assert_eq!(2_999_990u32.wrapping_add(conn.ts_offset[1]), 700);
        assert_eq!(
            oldest(Some(u32::MAX), Some(3)),
            Some(u32::MAX),
            "across the wrap"
        );
        assert_eq!(oldest(None, Some(3)), Some(3));
    }

    #[test]
    fn window_shifts_cross_over() {
        let (c, s) = legs();
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_eq!(conn.wscale_in(), [7, 8]);
        assert_eq!(conn.wscale_out(), [9, 7]);
    }

    #[test]
    fn timestamps_of_the_client_only_are_removed_and_inserted() {
        let (mut c, mut s) = legs();
        s.peer_syn = syn(1460, 8, false);
        s.box_syn = syn(1448, 9, true); // room left for the option inserted toward the client
        c.box_tsval = Some(700);
        let conn = compute(&key(), &c, &s, 650, [None; 2]).unwrap();
        assert_eq!(conn.flags() & ConnFlags::TIMESTAMPS, 0);
        assert_eq!(conn.xlate(), Xlate::TS_CLIENT_ONLY);
        // Echoed toward the client: its latest TSval.
        assert_eq!(conn.ts_offset[0], 100);
        // Inserted toward the client: the box's clock, continuing past the leg's last TSval.
        assert_eq!(650u32.wrapping_add(conn.ts_offset[1]), 701);
    }

    #[test]
    fn timestamps_of_the_server_only_are_removed_and_inserted() {
        let (mut c, mut s) = legs();
        c.peer_syn = syn(1460, 7, false);
        c.box_syn = syn(1448, 7, true);
        s.box_tsval = Some(710);
        let conn = compute(&key(), &c, &s, 10_000, [None; 2]).unwrap();
        assert_eq!(conn.xlate(), Xlate::TS_SERVER_ONLY);
        assert_eq!(conn.ts_offset[1], 3_000_000);
        // The leg's clock was behind: the inserted TSval still never goes below what it sent.
        assert_eq!(10_000u32.wrapping_add(conn.ts_offset[0]), 711);
    }

    #[test]
    fn sack_the_server_did_not_negotiate_is_removed_toward_it() {
        let (c, mut s) = legs();
        assert_eq!(compute(&key(), &c, &s, 0, [None; 2]).unwrap().xlate(), 0);
        s.peer_syn = s.peer_syn.map(|o| SynOptions {
            sack_permitted: false,
            ..o
        });
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_eq!(conn.xlate(), Xlate::SACK_CLIENT_ONLY);
        assert!(
            conn.params(common::flow::Direction::ClientToServer)
                .sack_strip
        );
        assert!(
            !conn
                .params(common::flow::Direction::ServerToClient)
                .sack_strip
        );
    }

    #[test]
    fn timestamps_inserted_without_room_in_the_mss_are_split_for() {
        let (c, mut s) = legs();
        s.peer_syn = syn(1460, 8, false);
        // The server was told 1460 (it was remembered with timestamps) and will send 1460
        // bytes; with 12 inserted the client (which accepts 1460) would get too much.
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_eq!(
            conn.xlate(),
            Xlate::TS_CLIENT_ONLY | Xlate::SPLIT_TO_CLIENT,
            "{conn:?}"
        );
        assert_eq!(conn.split_mss(), (1460 / 8) as u8);
    }

    #[test]
    fn a_server_accepting_less_than_the_client_was_told_gets_split_segments() {
        let (c, mut s) = legs();
        s.peer_syn = syn(1220, 8, true); // the box told the client 1460
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_eq!(conn.split_mss(), (1220 / 8) as u8);
        assert_eq!(
            conn.split_at(common::flow::Direction::ClientToServer),
            Some(1216)
        );
        assert_eq!(conn.split_at(common::flow::Direction::ServerToClient), None);
        s.peer_syn = syn(100, 8, true);
        assert_eq!(
            compute(&key(), &c, &s, 0, [None; 2]),
            Err(SpliceError::Fallback(Fallback::Mss)),
            "too small to split for"
        );
    }

    #[test]
    fn a_client_accepting_less_than_the_server_was_told_gets_split_segments() {
        let (mut c, s) = legs();
        c.peer_syn = syn(1200, 7, true); // the box told the server 1460
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        assert_eq!(conn.xlate(), Xlate::SPLIT_TO_CLIENT);
        assert_eq!(
            conn.split_at(common::flow::Direction::ServerToClient),
            Some(1200)
        );
        assert_eq!(conn.split_at(common::flow::Direction::ClientToServer), None);
    }

    #[test]
    fn both_peers_told_too_much_cannot_be_spliced() {
        let (mut c, mut s) = legs();
        c.peer_syn = syn(1200, 7, true);
        s.peer_syn = syn(1220, 8, true);
        assert_eq!(
            compute(&key(), &c, &s, 0, [None; 2]),
            Err(SpliceError::Fallback(Fallback::Mss))
        );
    }

    #[test]
    fn unacknowledged_data_is_not_quiet() {
        let (mut c, s) = legs();
        c.peer_acked = Some(SeqNumber(5040));
        assert_eq!(
            compute(&key(), &c, &s, 0, [None; 2]),
            Err(SpliceError::NotQuiet)
        );
    }

    #[test]
    fn tracking_allows_what_the_box_let_each_peer_send() {
        let (mut c, mut s) = legs();
        // The box once gave the client 2048 << 7 = 256 KiB, more than the server's window
        // (250 << 8 = 62.5 KiB); it gave the server 1024 << 9 = 512 KiB.
        c.box_window_max = 2048;
        s.box_window_max = 1024;
        let conn = compute(&key(), &c, &s, 0, [None; 2]).unwrap();
        let [client, server] = conn.tracks();
        // `maxend` is kept rounded up to the next 64 KiB boundary.
        let up = |x: SeqNumber| SeqNumber(x.0.wrapping_add(0xFFFF) & !0xFFFF);
        assert_eq!(client.maxend, up(SeqNumber(1101).wrapping_add(2048 << 7)));
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
            up(SeqNumber(u32::MAX - 10).wrapping_add(1024 << 9))
        );
    }
}
