//! Flow-table microbenchmark: nanoseconds per lookup at 1 k, 64 k and 1 M connections, for
//! hits and misses, looked up one by one or a burst at a time with the burst's home slots
//! prefetched first (what the worker does, l3fwd's bulk lookup).
//!
//! `cargo bench -p dataplane --bench flow_table [-- --quick] [-- --runs R]` prints a table and
//! one `RESULT` line per figure (median of R runs, with min and max) for `scripts/bench.sh`.
//! Without `--bench` on its command line (that is, under `cargo test --benches`) it runs a
//! token amount, so it only proves it works.
//!
//! The table is filled to the capacity it was made for (`FlowTable::new(n)`, then `n`
//! inserts), as the box's is when it holds as many connections as it was configured for:
//! since the table is sized to its capacity that is 7/8 of its slots (it was about half when
//! slot counts were rounded up to a power of two), so these are full-load probe lengths. The
//! keys looked up are a fixed pseudo-random permutation of the inserted ones (hits) or keys of
//! a port no flow uses (misses), read sequentially from an array, so the only random accesses
//! are the table's.
use std::hint::black_box;
use std::time::Instant;

use common::conn::{Conn, ConnFlags, TcpState};
use common::flow::FlowKey;
use common::wire::Ipv4Addr;
use dataplane::flow_table::FlowTable;
use dataplane::hint::{prefetch, prefetch_all};
use dataplane::packet::BURST;

/// The `i`-th client→server key: 198.18.0.0/15 clients, 60 000 ports each, one server.
fn key(i: u32, server_port: u16) -> FlowKey {
    FlowKey::new(
        Ipv4Addr(Ipv4Addr::new(198, 18, 0, 1).0 + i / 60_000),
        1024 + (i % 60_000) as u16,
        Ipv4Addr::new(198, 19, 0, 2),
        server_port,
    )
}

fn conn(k: &FlowKey) -> Conn {
    let mut c = Conn::new_pass(k, 7);
    c.set_state(TcpState::Established);
    c.set_flag(ConnFlags::SPLICED | ConnFlags::TIMESTAMPS, true);
    c.delta1 = 0x1234_5678;
    c.delta2 = 0x9abc_def0;
    c
}

/// xorshift64*: a deterministic shuffle without a dependency.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// Looks every key up once, one at a time. Returns how many were found.
fn lookup_plain(t: &FlowTable, keys: &[FlowKey]) -> usize {
    let mut found = 0;
    for k in keys {
        found += usize::from(black_box(t.lookup(black_box(k))).is_some());
    }
    found
}

/// Looks every key up once, a burst at a time, as the worker does: the burst's tag lines
/// prefetched first, then its candidate slots, then the lookups with the hashes computed.
fn lookup_prefetch(t: &FlowTable, keys: &[FlowKey]) -> usize {
    let mut found = 0;
    let mut hashes = [0u32; BURST];
    for burst in keys.chunks(BURST) {
        for (h, k) in hashes.iter_mut().zip(burst) {
            *h = black_box(k).symmetric_hash();
            prefetch(t.tag_line(*h));
        }
        for h in &hashes[..burst.len()] {
            if let Some(c) = t.candidate(*h) {
                prefetch_all(c);
            }
        }
        for (k, h) in burst.iter().zip(hashes) {
            found += usize::from(black_box(t.lookup_hashed(black_box(k), h)).is_some());
        }
    }
    found
}

fn median_min_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let real = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 3 } else { 7 });
    let (sizes, lookups, runs): (&[(u32, &str)], usize, usize) = if real {
        (
            &[(1 << 10, "1k"), (1 << 16, "64k"), (1 << 20, "1M")],
            if quick { 1 << 21 } else { 1 << 23 },
            runs.max(1),
        )
    } else {
        (&[(1 << 10, "1k")], 1 << 12, 1)
    };

    println!(
        "flow table: ns per lookup, median of {runs} runs of {lookups} lookups (min-max); \
         burst of {BURST} with prefetch vs one by one"
    );
    println!(
        "{:>6} {:>7} {:>12} | {:>22} {:>22} | {:>22} {:>22}",
        "flows", "slots", "table MiB", "hit", "hit, prefetch", "miss", "miss, prefetch"
    );
    let mut results = Vec::new();
    for &(n, label) in sizes {
        let mut t = FlowTable::new(n as usize);
        for i in 0..n {
            t.insert(conn(&key(i, 9000))).expect("insert");
        }
        // The queries: half of each direction, so both orientations of the key are probed.
        let q = lookups.min(1 << 22);
        let mut hits: Vec<FlowKey> = (0..q as u32)
            .map(|j| {
                let k = key(j % n, 9000);
                if j & 1 == 0 {
                    k
                } else {
                    k.reversed()
                }
            })
            .collect();
        shuffle(&mut hits, 0x9e37_79b9_7f4a_7c15 ^ u64::from(n));
        let misses: Vec<FlowKey> = (0..q as u32).map(|j| key(j % n, 9999)).collect();
        let rounds = lookups.div_ceil(q);

        let mut cells = Vec::new();
        for (name, keys, expect) in [("hit", &hits, true), ("miss", &misses, false)] {
            for (pf, f) in [
                (false, lookup_plain as fn(&FlowTable, &[FlowKey]) -> usize),
                (true, lookup_prefetch),
            ] {
                // One untimed pass warms the caches and the TLB as a running worker's are.
                assert_eq!(f(&t, keys) == keys.len(), expect);
                let mut ns = Vec::new();
                for _ in 0..runs {
                    let t0 = Instant::now();
                    let mut found = 0;
                    for _ in 0..rounds {
                        found += f(&t, keys);
                    }
                    let dt = t0.elapsed();
                    black_box(found);
                    ns.push(dt.as_nanos() as f64 / (rounds * keys.len()) as f64);
                }
                let (med, min, max) = median_min_max(ns);
                results.push(format!(
                    "RESULT impl=flowtable flows={n} case={name} prefetch={} ns={med:.2} min={min:.2} max={max:.2}",
                    u8::from(pf)
                ));
                cells.push(format!("{med:>6.1} ({min:.1}-{max:.1})"));
            }
        }
        println!(
            "{label:>6} {:>7} {:>12.1} | {:>22} {:>22} | {:>22} {:>22}",
            t.memory_bytes() / t.bytes_per_slot(),
            t.memory_bytes() as f64 / (1 << 20) as f64,
            cells[0],
            cells[1],
            cells[2],
            cells[3]
        );
    }
    for r in results {
        println!("{r}");
    }
}
