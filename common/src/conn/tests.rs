use super::*;

fn key() -> FlowKey {
    FlowKey::new(
        Ipv4Addr::new(198, 18, 0, 1),
        40000,
        Ipv4Addr::new(198, 19, 0, 2),
        80,
    )
}

/// splitmix64: deterministic, so every run checks the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    /// Spread over every magnitude: a random number of low bits of a random word.
    fn magnitude(&mut self, max_bits: u32) -> u32 {
        let bits = (self.next() % u64::from(max_bits + 1)) as u32;
        if bits == 0 {
            0
        } else {
            self.u32() >> (32 - bits)
        }
    }
}

#[test]
fn directions() {
    let c = Conn::new_pass(&key(), 7);
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
    let mut c = Conn {
        delta1: 100,
        delta2: 200,
        ts_offset: [7, 9],
        ..Conn::new_pass(&key(), 0)
    };
    c.set_flag(ConnFlags::TIMESTAMPS, true);
    c.set_wscale([7, 9], [6, 8]);
    let cs = c.params(Direction::ClientToServer);
    assert_eq!((cs.seq_add, cs.ack_sub), (100, 200));
    assert_eq!((cs.tsval_add, cs.tsecr_sub), (7, 9));
    assert_eq!((cs.wscale_in, cs.wscale_out), (7, 6));
    let sc = c.params(Direction::ServerToClient);
    assert_eq!((sc.seq_add, sc.ack_sub), (200, 100));
    assert_eq!((sc.tsval_add, sc.tsecr_sub), (9, 7));
    assert_eq!((sc.wscale_in, sc.wscale_out), (9, 8));
    assert!(!cs.is_identity());
    assert!(Conn::new_pass(&key(), 7)
        .params(Direction::ClientToServer)
        .is_identity());
}

#[test]
fn a_free_slot_is_all_zero() {
    let c = Conn::default();
    assert!(c.is_free());
    assert_eq!(c.state(), TcpState::Free);
    assert_eq!(CONN_BYTES, 48);
    assert!(!Conn::new_pass(&key(), 0).is_free());
}

#[test]
fn packed_fields_keep_what_is_set() {
    let mut c = Conn::new_pass(&key(), 14);
    for s in TcpState::ALL {
        c.set_state(s);
        assert_eq!(c.state(), s);
    }
    c.set_state(TcpState::SynSent);
    c.set_wscale_offered(true);
    assert_eq!(c.flags(), ConnFlags::WSCALE_OFFERED);
    for (x, mss) in [(0u8, 0u8), (15, 255), (Xlate::TS_SERVER_ONLY, 180)] {
        c.set_xlate(x);
        c.set_split_mss(mss);
        c.set_flag(ConnFlags::SPLICED | ConnFlags::PROXIED, true);
        c.set_flag(ConnFlags::TIMESTAMPS, x == 0);
        assert_eq!((c.xlate(), c.split_mss()), (x, mss));
        let ts = if x == 0 { ConnFlags::TIMESTAMPS } else { 0 };
        let kind = ConnFlags::SPLICED | ConnFlags::PROXIED | ts;
        assert_eq!(c.flags(), kind | ConnFlags::WSCALE_OFFERED);
        assert_eq!(c.state(), TcpState::SynSent);
        c.set_flag(ConnFlags::PROXIED, false);
        assert_eq!(c.flags() & ConnFlags::PROXIED, 0);
    }
    c.set_wscale([14, 0], [3, 9]);
    assert_eq!((c.wscale_in(), c.wscale_out()), ([14, 0], [3, 9]));
    assert_eq!(c.split_at(Direction::ServerToClient), None);
    c.set_xlate(Xlate::SPLIT_TO_CLIENT);
    assert_eq!(c.split_at(Direction::ServerToClient), Some(180 * 8));
}

#[test]
fn every_fin_combination_has_its_phase() {
    use ConnFlags as F;
    // The exact derivation the tracker used when the FIN bits were flags of their own.
    let exact = |f: u8| {
        let fins = u8::from(f & F::CLIENT_FIN != 0) + u8::from(f & F::SERVER_FIN != 0);
        let acked = u8::from(f & F::CLIENT_FIN_ACKED != 0 && f & F::CLIENT_FIN != 0)
            + u8::from(f & F::SERVER_FIN_ACKED != 0 && f & F::SERVER_FIN != 0);
        match (fins, acked) {
            (0, _) => TcpState::Established,
            (1, 0) => TcpState::FinWait,
            (1, _) => TcpState::CloseWait,
            (_, 2) => TcpState::TimeWait,
            _ => TcpState::LastAck,
        }
    };
    let mut c = Conn::new_pass(&key(), 0);
    for f in 0..16u8 {
        let fins = f << 3;
        let state = c.set_fins(fins);
        assert_eq!(state, exact(fins), "fins {fins:#x}");
        assert_eq!(c.state(), state);
        // What is kept is every FIN and every acknowledgement of a FIN that was sent.
        let meaningful =
            fins & !(if fins & F::CLIENT_FIN == 0 {
                F::CLIENT_FIN_ACKED
            } else {
                0
            }) & !(if fins & F::SERVER_FIN == 0 {
                F::SERVER_FIN_ACKED
            } else {
                0
            });
        assert_eq!(c.fins(), meaningful, "fins {fins:#x}");
        assert_eq!(c.flags(), meaningful);
    }
}

#[test]
fn maxwin_rounds_up_by_at_most_an_eighth_and_is_idempotent() {
    let mut r = Rng(1);
    let samples = (0..200_000)
        .map(|_| r.magnitude(32))
        .chain((0..70).map(|i| 1u32 << (i % 32)))
        .chain([
            0,
            1,
            15,
            16,
            17,
            u32::MAX,
            u32::MAX - 1,
            15 << 28,
            (15 << 28) + 1,
        ]);
    let mut last = None;
    for x in samples {
        let c = pack::win_encode(x);
        let d = pack::win_decode(c);
        assert!(d >= x, "{x} decodes as {d}");
        if x <= 15 << 28 {
            assert!(u64::from(d) * 8 <= u64::from(x) * 9, "{x} decodes as {d}");
        }
        assert_eq!(pack::win_encode(d), c, "{x}: code {c} is not stable");
        if let Some((lx, lc)) = last {
            if x >= lx {
                assert!(c >= lc, "not monotone at {lx}, {x}");
            }
        }
        last = Some((x, c));
    }
}

#[test]
fn maxend_rounds_up_to_64_kib_and_is_idempotent() {
    let mut r = Rng(2);
    for x in (0..100_000).map(|_| r.u32()).chain([
        0,
        1,
        0xFFFF,
        0x1_0000,
        0x1_0001,
        u32::MAX,
        0xFFFF_0000,
        0xFFFF_0001,
    ]) {
        let hi = pack::maxend_encode(SeqNumber(x));
        let d = pack::maxend_decode(hi);
        assert!(d.0.wrapping_sub(x) <= MAXEND_SLACK, "{x} → {}", d.0);
        assert_eq!(d.0 & 0xFFFF, 0);
        assert_eq!(pack::maxend_encode(d), hi);
    }
}

/// The rounded-up bound admits every sequence number the exact one admits, wherever the
/// bound and the number lie.
#[test]
fn the_rounded_maxend_admits_all_the_exact_one_does() {
    let mut r = Rng(3);
    let mut c = Conn::new_pass(&key(), 0);
    for i in 0..300_000 {
        let maxend = SeqNumber(r.u32());
        // Close to the bound on either side, close to 2^31 behind it, or anywhere.
        let off = match i % 4 {
            0 => r.magnitude(18),
            1 => r.magnitude(18).wrapping_neg(),
            2 => (1u32 << 31)
                .wrapping_add(r.magnitude(17))
                .wrapping_sub(1 << 16),
            _ => r.u32(),
        };
        let seq = maxend.wrapping_sub(off);
        c.set_track(
            Direction::ServerToClient,
            Track {
                end: seq,
                maxend,
                maxwin: 1,
            },
        );
        if seq <= maxend {
            assert!(
                c.seq_below_maxend(Direction::ServerToClient, seq),
                "{seq:?} against {maxend:?}"
            );
        }
    }
}

/// The idle stamp against the exact millisecond one: a flow expires only once it has been
/// idle longer than its timeout, and always by its timeout plus one unit, for timeouts from
/// 1 ms to the longest configurable, across the wrap of the clock.
#[test]
fn idle_stamp_expires_neither_early_nor_late() {
    let max = crate::config::MAX_DURATION.as_millis() as u32;
    let mut r = Rng(4);
    let mut timeouts = [0u32; TcpState::COUNT];
    let mut c = Conn::new_pass(&key(), 0);
    for i in 0..200_000u32 {
        let t = (r.magnitude(31) % max).max(1);
        let state = TcpState::ALL[1 + (i as usize % (TcpState::COUNT - 1))];
        timeouts[state as usize] = t;
        c.set_state(state);
        let unit = 1u64 << pack::idle_shift(t);
        assert!(unit <= (u64::from(t) / 512).max(8), "unit {unit} for {t}");
        let seen = r.u32();
        c.touch(seen, &timeouts);
        // Just before and after the timeout and the timeout plus one unit, then anywhere
        // up to 4 times the timeout (well inside the stamp's range).
        let idle = match i % 6 {
            0 => u64::from(t),
            1 => u64::from(t) + 1,
            2 => u64::from(t) + unit - 1,
            3 => u64::from(t) + unit,
            4 => u64::from(t) + unit + 1,
            _ => r.next() % (u64::from(t) * 4 + 2 * unit),
        };
        let horizon = (unit << pack::IDLE_BITS).min(1 << 32) - unit;
        if idle >= horizon {
            continue;
        }
        let now = seen.wrapping_add(idle as u32);
        let expired = c.idle_expired(now, &timeouts);
        assert!(
            !expired || idle > u64::from(t),
            "expired after {idle} ms of {t} (unit {unit}, seen at {seen})"
        );
        assert!(
            expired || idle < u64::from(t) + unit,
            "alive after {idle} ms of {t} (unit {unit}, seen at {seen})"
        );
        let shown = c.idle_ms(now, &timeouts);
        assert!(shown >= idle && shown < idle + unit, "{shown} for {idle}");
    }
}

/// The default timeouts: the 5-day ones get units of a few minutes, the short ones of a
/// fraction of a second.
#[test]
fn default_timeouts_get_fine_units() {
    for (t, unit) in [
        (5 * 24 * 3600 * 1000, 1 << 19),
        (120_000, 128),
        (10_000, 16),
        (1, 8),
    ] {
        assert_eq!(1u32 << pack::idle_shift(t), unit, "timeout {t}");
    }
}

/// A state change changes the unit: the stamp made afterwards counts in the new one.
#[test]
fn touching_after_a_state_change_restamps() {
    let mut timeouts = [0u32; TcpState::COUNT];
    timeouts[TcpState::SynRecv as usize] = 60_000;
    timeouts[TcpState::Established as usize] = 432_000_000;
    let mut c = Conn::new_pass(&key(), 0);
    c.set_state(TcpState::SynRecv);
    c.touch(1_000, &timeouts);
    assert!(!c.idle_expired(61_000, &timeouts));
    assert!(c.idle_expired(61_100, &timeouts));
    c.set_state(TcpState::Established);
    c.touch(61_000, &timeouts);
    assert!(!c.idle_expired(61_000 + 3_600_000, &timeouts));
    assert!(!c.idle_expired(61_000 + 432_000_000, &timeouts));
    assert!(c.idle_expired(61_000 + 432_000_000 + (1 << 19), &timeouts));
}
