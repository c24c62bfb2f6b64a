use super::*;
use common::conn::{TcpState, CONN_BYTES};
use common::wire::Ipv4Addr;
use std::collections::HashMap;

fn key(i: u32) -> FlowKey {
    FlowKey::new(
        Ipv4Addr(0xc612_0000 | (i >> 16)),
        (i & 0xffff) as u16,
        Ipv4Addr::new(198, 19, 0, 2),
        80,
    )
}

/// The connection of `key(i)`, marked `i` in a field the table never reads.
fn conn(i: u32) -> Conn {
    let mut c = Conn::new_pass(&key(i), 0);
    c.delta1 = i;
    c
}

#[test]
fn a_probe_finds_what_a_lookup_finds_at_every_load() {
    // Small tables fill to their maximum load, where runs are long and wrap round the
    // end: every answer of the 16-tag probe must agree with the scalar lookup.
    for cap in [8usize, 64, 1000] {
        let mut t: FlowTable = FlowTable::new(cap);
        let mut n = 0u32;
        while t.insert(conn(n * 7919)).is_ok() {
            n += 1;
            for i in 0..n + 20 {
                for k in [key(i * 7919), key(i * 7919).reversed()] {
                    let h = k.symmetric_hash();
                    let p = t.probe(h);
                    if let Probe::At(at) = p {
                        assert_eq!(t.tags[at], tag_of(h));
                    }
                    assert_eq!(
                        t.lookup_probed(&k, h, p, t.changes()),
                        t.lookup(&k),
                        "cap {cap}, {n} in, key {i}: {p:?}"
                    );
                }
            }
        }
        assert_eq!(t.len(), t.max_load());
        // A probe taken before a change is not trusted after it.
        let k = key(0);
        let h = k.symmetric_hash();
        let (p, before) = (t.probe(h), t.changes());
        t.remove(&k);
        assert_eq!(t.lookup_probed(&k, h, p, before), None);
    }
}

#[test]
fn insert_lookup_both_directions_remove() {
    let mut t = FlowTable::new(1024);
    for i in 0..500 {
        t.insert(conn(i)).unwrap();
    }
    assert_eq!(t.len(), 500);
    for i in 0..500 {
        let (s, d) = t.lookup(&key(i)).unwrap();
        assert_eq!(d, Direction::ClientToServer);
        assert_eq!(t.get(s).delta1, i);
        let (s2, d2) = t.lookup(&key(i).reversed()).unwrap();
        assert_eq!((s2, d2), (s, Direction::ServerToClient));
    }
    assert_eq!(
        t.insert(conn(7)),
        Err(InsertError::Exists(t.lookup(&key(7)).unwrap().0))
    );
    for i in (0..500).step_by(2) {
        assert!(t.remove(&key(i)).is_some());
    }
    for i in 0..500 {
        assert_eq!(t.lookup(&key(i)).is_some(), i % 2 == 1, "key {i}");
    }
    assert_eq!(t.len(), 250);
}

#[test]
fn refuses_at_max_load_and_accepts_again_after_removal() {
    let mut t = FlowTable::new(100);
    let max = t.max_load();
    assert!(max >= 100);
    for i in 0..max as u32 {
        t.insert(conn(i)).unwrap();
    }
    assert_eq!(t.insert(conn(max as u32)), Err(InsertError::Full));
    t.remove(&key(3)).unwrap();
    t.insert(conn(max as u32)).unwrap();
    // lookups of absent keys terminate (there is always a free slot)
    assert!(t.lookup(&key(1_000_000)).is_none());
}

#[test]
fn churn_matches_a_model() {
    // Random inserts and removals against a HashMap model: backward-shift deletion must
    // never lose or duplicate an entry.
    let mut t = FlowTable::new(256);
    let mut model: HashMap<u32, ()> = HashMap::new();
    let mut x: u64 = 0x1234_5678;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % 400) as u32;
        if x & 0x100 != 0 {
            let r = t.insert(conn(i));
            match (r, model.contains_key(&i)) {
                (Ok(_), false) => {
                    model.insert(i, ());
                }
                (Err(InsertError::Exists(_)), true) => {}
                (Err(InsertError::Full), false) => assert!(t.len() >= t.max_load()),
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(t.remove(&key(i)).is_some(), model.remove(&i).is_some());
        }
        assert_eq!(t.len(), model.len());
    }
    for i in 0..400 {
        assert_eq!(t.lookup(&key(i)).is_some(), model.contains_key(&i));
    }
    t.check_tags();
}

#[test]
fn sized_to_the_capacity_not_to_a_power_of_two() {
    for cap in (0..5000).chain([1 << 20, 1_000_000, 1_835_008, 10_000_000, 1 << 28]) {
        let slots = slots_for(cap);
        let max_load = slots - slots / 8;
        assert!(
            max_load >= cap,
            "capacity {cap}: {slots} slots take {max_load}"
        );
        if cap >= 1024 {
            let per_flow = (slots * (CONN_BYTES + 1)) as f64 / cap as f64;
            assert!(per_flow < 56.1, "capacity {cap}: {per_flow} B per flow");
        }
    }
    let t: FlowTable = FlowTable::new(1_000_000);
    assert_eq!(t.memory_bytes() / t.bytes_per_slot(), 1_142_857);
    assert!(t.max_load() >= 1_000_000);
}

/// Keys whose home is `slot` in `t`, from the key space of `key()`.
fn homed_at(t: &FlowTable, slot: usize, n: usize) -> Vec<u32> {
    (0..).filter(|&i| t.home(&key(i)) == slot).take(n).collect()
}

#[test]
fn probe_runs_wrap_round_a_non_power_of_two_table() {
    let mut t = FlowTable::new(100);
    let n = t.memory_bytes() / t.bytes_per_slot();
    assert!(!n.is_power_of_two());
    let last = homed_at(&t, n - 1, 3);
    let first = homed_at(&t, 0, 1)[0];
    for &i in &last {
        t.insert(conn(i)).unwrap();
    }
    t.insert(conn(first)).unwrap();
    let at = |t: &FlowTable, i: u32| t.lookup(&key(i)).map(|(s, _)| s);
    assert_eq!(at(&t, last[0]), Some(n - 1));
    assert_eq!(at(&t, last[1]), Some(0), "the run wraps to slot 0");
    assert_eq!(at(&t, last[2]), Some(1));
    assert_eq!(at(&t, first), Some(2));

    // Deleting the run's head shifts every member back across the wrap, the key homed
    // at 0 included, and leaves no hole a lookup would stop at.
    t.remove(&key(last[0])).unwrap();
    assert_eq!(at(&t, last[1]), Some(n - 1));
    assert_eq!(at(&t, last[2]), Some(0));
    assert_eq!(at(&t, first), Some(1));
    assert!(t.get(2).is_free());

    // Deleting across the wrap the other way: the member at 0 leaves, the one homed at
    // 0 moves in, the one homed at n - 1 stays.
    t.remove(&key(last[2])).unwrap();
    assert_eq!(at(&t, last[1]), Some(n - 1));
    assert_eq!(at(&t, first), Some(0));
    assert!(t.get(1).is_free());
    assert_eq!(t.len(), 2);

    // The ageing cursor goes round all n slots and counts one sweep.
    let mut seen = 0;
    while t.sweeps() == 0 {
        t.expire(7, |_| false, |_| {});
        seen += 7;
    }
    assert!((n..n + 7).contains(&seen));
}

#[test]
fn expire_in_slices() {
    let mut t = FlowTable::new(1024);
    for i in 0..300 {
        t.insert(conn(i)).unwrap();
    }
    let slots = t.memory_bytes() / t.bytes_per_slot();
    let mut gone = Vec::new();
    // Expire the even ones, 64 slots per call.
    let mut calls = 0;
    while gone.len() < 150 && calls < 10 * slots / 64 {
        t.expire(64, |c| c.delta1 % 2 == 0, |c| gone.push(c.delta1));
        calls += 1;
    }
    assert_eq!(gone.len(), 150);
    assert!(gone.iter().all(|v| v % 2 == 0));
    assert_eq!(t.len(), 150);
    assert!(t
        .iter()
        .all(|(_, c)| c.state() == TcpState::SynSent && c.delta1 % 2 == 1));
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        /// Age out every flow whose stamp is `0 (mod m)`, `budget` slots at a time.
        Expire {
            m: u32,
            budget: usize,
        },
    }

    fn op(keys: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..keys).prop_map(Op::Insert),
            3 => (0..keys).prop_map(Op::Remove),
            1 => (2u32..5, 1usize..40).prop_map(|(m, budget)| Op::Expire { m, budget }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any capacity (so slot counts that are not powers of two), loads up to the
        /// maximum, inserts, removals and ageing against a HashMap: nothing is lost or
        /// duplicated, whatever wraps round the end of the table.
        #[test]
        fn matches_a_hashmap(
            (cap, ops) in (8usize..120).prop_flat_map(|cap| {
                let keys = (cap + cap / 2) as u32;
                (Just(cap), proptest::collection::vec(op(keys), 1..600))
            })
        ) {
            let mut t = FlowTable::new(cap);
            let mut model: HashMap<u32, u32> = HashMap::new();
            let keys = (cap + cap / 2) as u32;
            for (stamp, op) in ops.into_iter().enumerate() {
                let stamp = stamp as u32;
                match op {
                    Op::Insert(i) => {
                        let mut c = conn(i);
                        c.delta1 = stamp;
                        match (t.insert(c), model.contains_key(&i)) {
                            (Ok(_), false) => {
                                model.insert(i, stamp);
                            }
                            (Err(InsertError::Exists(s)), true) => {
                                prop_assert_eq!(t.get(s).delta1, model[&i]);
                            }
                            (Err(InsertError::Full), false) => {
                                prop_assert_eq!(t.len(), t.max_load());
                            }
                            other => prop_assert!(false, "{:?}", other),
                        }
                    }
                    Op::Remove(i) => {
                        let got = t.remove(&key(i)).map(|c| c.delta1);
                        prop_assert_eq!(got, model.remove(&i));
                    }
                    Op::Expire { m, budget } => {
                        let mut gone = Vec::new();
                        // Two passes of the cursor: an entry shifted behind it during the
                        // first is caught by the second.
                        let until = t.sweeps() + 2;
                        while t.sweeps() < until {
                            t.expire(budget, |c| c.delta1 % m == 0, |c| gone.push(c.delta1));
                        }
                        model.retain(|_, s| *s % m != 0);
                        prop_assert!(gone.iter().all(|s| s % m == 0));
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            prop_assert!(t.max_load() >= cap);
            for i in 0..keys {
                let got = t.lookup(&key(i)).map(|(s, d)| (t.get(s).delta1, d));
                prop_assert_eq!(got, model.get(&i).map(|&s| (s, Direction::ClientToServer)));
                let back = t.lookup(&key(i).reversed()).map(|(_, d)| d);
                prop_assert_eq!(back, model.get(&i).map(|_| Direction::ServerToClient));
            }
            prop_assert_eq!(t.iter().count(), model.len());
        }
    }
}
